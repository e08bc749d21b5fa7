"""DICOM networking: associations, echo, find. Blocking code; callers run it in threads."""

import threading
from io import BytesIO
from typing import Any

from pynetdicom import _config as _pynetdicom_config
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.transport import AssociationSocket

from qrtui.dicom import speed  # noqa: F401  (patches pynetdicom on import)

# pynetdicom logs whole identifiers (patient names and IDs) unless told not to.
_pynetdicom_config.LOG_REQUEST_IDENTIFIERS = False
_pynetdicom_config.LOG_RESPONSE_IDENTIFIERS = False
_pynetdicom_config.LOG_HANDLER_LEVEL = "none"
# Received datasets go to a temporary file as they arrive, not into memory: a breast
# tomosynthesis object of some hundred MB must not need that much RAM.
_pynetdicom_config.STORE_RECV_CHUNKED_DATASET = True

# pynetdicom reads a whole PDU of whatever length the peer announces (up to 4 GiB) into
# memory. Refuse more than this: the read fails as a broken connection and the association
# is aborted. Our peers are told a maximum PDU of 128 KiB (assoc.RECEIVE_PDU_BYTES).
MAX_PDU_BYTES = 16 * 1024 * 1024
_unbounded_recv = AssociationSocket.recv


def _bounded_recv(self: AssociationSocket, nr_bytes: int) -> bytearray:
    if nr_bytes > MAX_PDU_BYTES:
        raise OSError(f"the peer announced a PDU of {nr_bytes} bytes; at most {MAX_PDU_BYTES}")
    return _unbounded_recv(self, nr_bytes)


AssociationSocket.recv = _bounded_recv  # type: ignore[method-assign]

# A DIMSE message other than a C-STORE (those go to a file) is gathered in memory until its
# last fragment. A peer that never sends that fragment would fill memory: past this size,
# drop the message, abort the association and wake whoever waits for a response.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # a C-FIND identifier is a few kB
_unbounded_receive_primitive = DIMSEServiceProvider.receive_primitive


def _bounded_receive_primitive(self: DIMSEServiceProvider, primitive: P_DATA) -> None:
    _unbounded_receive_primitive(self, primitive)
    message = self.message
    if message is None:
        return
    held = message.encoded_command_set.tell()
    if isinstance(message.data_set, BytesIO):
        held += message.data_set.tell()
    if held > MAX_MESSAGE_BYTES:
        self.message = None
        # An invalid PDU, as pynetdicom itself reports one: it sends an A-ABORT at once. A
        # second abort from the waiting thread would be an invalid event from here on.
        self.assoc._sent_abort = True
        self.dul.event_queue.put("Evt19")
        self.msg_queue.put((None, None))


DIMSEServiceProvider.receive_primitive = _bounded_receive_primitive  # type: ignore[method-assign]


# pynetdicom's socket reader decodes and queues every PDU as it comes, however far behind the
# association thread is that takes them: a peer sending faster than we process would fill
# memory before the size check above sees the message. Past this many waiting PDUs, the reader
# leaves the socket alone for a turn; TCP then holds the peer back.
MAX_PDU_BACKLOG = 64
_transport_event = DULServiceProvider._is_transport_event


def _transport_event_held_back(self: DULServiceProvider) -> bool:
    if (
        self.to_user_queue.qsize() >= MAX_PDU_BACKLOG
        and self.state_machine.current_state != "Sta13"
    ):
        return False
    return bool(_transport_event(self))


DULServiceProvider._is_transport_event = _transport_event_held_back  # type: ignore[method-assign]

_get_msg = DIMSEServiceProvider.get_msg


def _get_msg_unless_paused(self: DIMSEServiceProvider, block: bool = False) -> Any:
    """pynetdicom's association reactor may take a response meant for a request just sent:
    the requesting thread pauses the reactor, but can read a stale "paused" flag while the
    reactor is on its way to this call. Checked here, after the flag is cleared, the pause
    cannot be missed. Seen as a C-FIND that lost its first answer, in 1 or 2 of 600 series
    queries on four associations against Orthanc."""
    assoc = self.assoc
    reactor = not block and threading.current_thread() is assoc
    if reactor and not assoc._reactor_checkpoint.is_set():
        return None, None
    return _get_msg(self, block)


DIMSEServiceProvider.get_msg = _get_msg_unless_paused  # type: ignore[method-assign]
