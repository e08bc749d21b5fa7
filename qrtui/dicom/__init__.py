"""DICOM networking: associations, echo, find. Blocking code; callers run it in threads."""

from pynetdicom import _config as _pynetdicom_config
from pynetdicom.transport import AssociationSocket

# pynetdicom logs whole identifiers (patient names and IDs) unless told not to.
_pynetdicom_config.LOG_REQUEST_IDENTIFIERS = False
_pynetdicom_config.LOG_RESPONSE_IDENTIFIERS = False
_pynetdicom_config.LOG_HANDLER_LEVEL = "none"
# Received datasets go to a temporary file as they arrive, not into memory: a breast
# tomosynthesis object of some hundred MB must not need that much RAM.
_pynetdicom_config.STORE_RECV_CHUNKED_DATASET = True

# pynetdicom reads a whole PDU of whatever length the peer announces (up to 4 GiB) into
# memory. Refuse more than this: the read fails as a broken connection and the association
# is aborted. Our peers are told a maximum PDU of 16 KiB to 128 KiB.
MAX_PDU_BYTES = 16 * 1024 * 1024
_unbounded_recv = AssociationSocket.recv


def _bounded_recv(self: AssociationSocket, nr_bytes: int) -> bytearray:
    if nr_bytes > MAX_PDU_BYTES:
        raise OSError(f"the peer announced a PDU of {nr_bytes} bytes; at most {MAX_PDU_BYTES}")
    return _unbounded_recv(self, nr_bytes)


AssociationSocket.recv = _bounded_recv  # type: ignore[method-assign]
