"""The private pieces of pynetdicom that qrtui replaces because they are wrong: a leak, a
race, reads without bounds. Installed on import: the package `qrtui.dicom` imports this
module (and pynetdicom_speed.py, pynetdicom_reading.py) before anything opens an
association.

Each patch carries one comment: what it fixes, the figure or test that shows it and the
release it was written against (patching.py keeps the shapes the tests check). The defects
are written up for pynetdicom in docs/upstream.md.
"""

from __future__ import annotations

import itertools
import os
import socket
import tempfile
import threading
from io import BytesIO
from pathlib import Path
from typing import Any, cast

from pynetdicom import dimse_messages
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.transport import AssociationSocket

from qrtui.dicom.patching import install, original

# Fixes: with STORE_RECV_CHUNKED_DATASET, pynetdicom writes each received C-STORE dataset to
# a NamedTemporaryFile(delete=False) in the system's temporary directory and deletes it only
# after a Storage SCP's handler (StorageServiceClass.SCP); objects received within a C-GET
# (Association._c_store_scp) are never deleted: 24,818 files, 6.4 GB in /tmp after a few
# hundred test runs (docs/upstream.md). An association given a directory (INCOMING_ATTRIBUTE)
# has the file written there instead, beside the store's files; the store renames it into
# place, which also ends a copy of every object (second round: 2.42 -> 2.47 s in-process,
# no gain, kept for the leak) and removes whatever is left.
# Fixes: a failed write (a full disk) raised in pynetdicom's reader aborts the association,
# where the store could not answer "out of resources" and the sender would not know why;
# it is kept in `failed` (received_write_error) instead. Written against 3.0.4.
INCOMING_ATTRIBUTE = "qrtui_incoming"
_receiving = threading.local()
_decode_msg = original(dimse_messages.DIMSEMessage, "decode_msg")


def _decode_msg_for(self: dimse_messages.DIMSEMessage, primitive: Any, assoc: Any = None) -> bool:
    _receiving.directory = getattr(assoc, INCOMING_ATTRIBUTE, None)
    return bool(_decode_msg(self, primitive, assoc))


class _IncomingFile:
    """What pynetdicom uses of a NamedTemporaryFile. A failed write (a full disk) is kept in
    `failed` and not raised: raised, it would abort the association in pynetdicom's reader,
    where the store could not answer "out of resources" and the sender would not know why."""

    _names = itertools.count()

    def __init__(self, directory: str | None) -> None:
        self.failed: OSError | None = None
        for folder in dict.fromkeys((directory, tempfile.gettempdir())):
            try:
                self.name, fd = self._create(Path(folder or tempfile.gettempdir()))
                break
            except OSError as exc:  # the store's area could not take a file: as before
                error = exc
        else:
            raise error
        self._file = os.fdopen(fd, "wb", buffering=0)
        self.file = self  # pynetdicom flushes `.file`
        self.tell = self._file.tell

    def _create(self, folder: Path) -> tuple[str, int]:
        while True:
            name = str(folder / f"recv-{os.getpid()}-{next(self._names)}.dcm")
            try:
                return name, os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # left by an earlier process of the same number
                continue

    def write(self, data: bytes) -> int:
        if self.failed is None:
            try:
                return self._file.write(data) or 0
            except OSError as exc:
                self.failed = exc
        return len(data)

    def flush(self) -> None:
        pass  # unbuffered

    def close(self) -> None:
        self._file.close()


def received_write_error(event: Any) -> OSError | None:
    """Why the file of this C-STORE could not be written whole, if it could not."""
    incoming = getattr(getattr(event, "request", None), "_dataset_file", None)
    return getattr(incoming, "failed", None)


def _incoming_file(**kwargs: Any) -> Any:
    return _IncomingFile(getattr(_receiving, "directory", None))


install(dimse_messages.DIMSEMessage, "decode_msg", _decode_msg_for)
install(dimse_messages, "NamedTemporaryFile", _incoming_file)


# Fixes: pynetdicom reads a whole PDU of whatever length the peer announces (up to 4 GiB)
# into memory. More than this is refused: the read fails as a broken connection and the
# association is aborted. Our peers are told a maximum PDU of 128 KiB
# (assoc.RECEIVE_PDU_BYTES). Figure: test_a_peer_announcing_a_huge_pdu_is_cut_off_without_
# reading_it (tests/test_faults.py). Written against 3.0.4.
MAX_PDU_BYTES = 16 * 1024 * 1024
original(AssociationSocket, "recv")


def _bounded_recv(self: AssociationSocket, nr_bytes: int) -> bytearray:
    if nr_bytes > MAX_PDU_BYTES:
        raise OSError(f"the peer announced a PDU of {nr_bytes} bytes; at most {MAX_PDU_BYTES}")
    return _recv_whole(cast(socket.socket, self.socket), nr_bytes)


# Saves: pynetdicom reads a PDU 4,096 bytes at a time, each read a poll, a recv and a
# hand-over of the GIL: 26,000 of each for the 80 MB of bench/run.py. Read into the PDU's
# own buffer instead, as much as the socket holds; a connection that ends returns what came,
# as pynetdicom's does. Figure: issue 26, the whole job's CPU -3%, its time -2% (medians of
# 10 paired runs; near the noise). Written against 3.0.4.
def _recv_whole(sock: socket.socket, nr_bytes: int) -> bytearray:
    received = bytearray(nr_bytes)
    view, got = memoryview(received), 0
    while got < nr_bytes:
        count = sock.recv_into(view[got:], nr_bytes - got)
        if not count:
            del view
            del received[got:]
            return received
        got += count
    return received


install(AssociationSocket, "recv", _bounded_recv)

# Fixes: a DIMSE message other than a C-STORE (those go to a file) is gathered in memory
# until its last fragment; a peer that never sends that fragment would fill memory. Past
# this size the message is dropped, the association aborted and whoever waits for a
# response woken. Figure: test_a_response_that_never_ends_is_cut_off_in_bounded_memory
# (tests/test_faults.py). Written against 3.0.4 (relies on `message.encoded_command_set`,
# `assoc._sent_abort` and the DUL's event "Evt19").
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # a C-FIND identifier is a few kB
_unbounded_receive_primitive = original(DIMSEServiceProvider, "receive_primitive")


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


install(DIMSEServiceProvider, "receive_primitive", _bounded_receive_primitive)


# Fixes: pynetdicom's socket reader decodes and queues every PDU as it comes, however far
# behind the association thread is that takes them: a peer sending faster than we process
# would fill memory before the size check above sees the message. Past this many waiting
# PDUs, the reader leaves the socket alone for a turn; TCP then holds the peer back. Figure:
# test_a_large_object_is_received_in_bounded_memory_and_stored_byte_for_byte
# (tests/test_store.py). Written against 3.0.4.
MAX_PDU_BACKLOG = 64
_transport_event = original(DULServiceProvider, "_is_transport_event")


def _transport_event_held_back(self: DULServiceProvider) -> bool:
    if (
        self.to_user_queue.qsize() >= MAX_PDU_BACKLOG
        and self.state_machine.current_state != "Sta13"
    ):
        return False
    return bool(_transport_event(self))


install(DULServiceProvider, "_is_transport_event", _transport_event_held_back)


# Fixes: pynetdicom's association reactor may take a response meant for a request just sent
# (docs/upstream.md). The requesting thread pauses the reactor (clears _reactor_checkpoint,
# waits for _is_paused), but can read a stale _is_paused left from the reactor's last wait
# while the reactor is on its way to get_msg. Checked here, after the checkpoint is cleared,
# the pause cannot be missed. Figure: a C-FIND that lost its first answer, in 1 or 2 of 600
# series queries on four associations against Orthanc (first round). Written against 3.0.4
# (relies on Association._run_reactor and the pause in every send_c_*).
original(Association, "_run_reactor")
_get_msg = original(DIMSEServiceProvider, "get_msg")


def _get_msg_unless_paused(self: DIMSEServiceProvider, block: bool = False) -> Any:
    assoc = self.assoc
    reactor = not block and threading.current_thread() is assoc
    if reactor and not assoc._reactor_checkpoint.is_set():
        return None, None
    return _get_msg(self, block)


install(DIMSEServiceProvider, "get_msg", _get_msg_unless_paused)
