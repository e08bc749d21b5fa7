"""Sending stored files to a Storage SCP: C-STORE straight from the file, several associations
at once, each answer handed back as it comes so a crash repeats only what was in flight."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info
from pynetdicom import _config as pynetdicom_config
from pynetdicom.association import Association

from qrtui.dicom.assoc import AssociationFailed, Peer, abort_now, associate, make_ae, release

# From the file, undecoded: 1,000 RDSRs are sent without building 1,000 datasets.
pynetdicom_config.STORE_SEND_CHUNKED_DATASET = True

MAX_CONTEXTS = 128  # what one association may propose (PS3.8 9.3.2.2)


@dataclass(frozen=True)
class Outgoing:
    """A file to send, and the key its answer is handed back under."""

    key: object
    path: Path


@dataclass(frozen=True)
class Answer:
    """What became of one file: a DIMSE status, or none with why (no context, no file,
    the association lost)."""

    key: object
    status: int | None
    reason: str = ""
    never: bool = False  # the destination will never take it as it is


Hand = Callable[[Answer], None]


def _context_of(path: Path) -> tuple[str, str] | str:
    """(SOP class, transfer syntax) from the file meta, or why they cannot be read."""
    try:
        with open(path, "rb") as file:
            head = file.read(META_BYTES)
    except OSError as exc:
        return f"the stored file cannot be read ({exc.strerror or exc})"
    quick = _meta_uids(head)
    if quick is not None:
        return quick
    try:
        meta = read_file_meta_info(path)
        return str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID)
    except (OSError, InvalidDicomError, AttributeError) as exc:
        return f"the stored file cannot be read ({getattr(exc, 'strerror', None) or exc})"


META_BYTES = 2048  # a file meta group is a few hundred bytes
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
             b"UT", b"UV"}  # fmt: skip


def _meta_uids(head: bytes) -> tuple[str, str] | None:
    """(0002,0002) and (0002,0010) read straight from the bytes of a Part 10 file's meta
    group (always explicit VR little endian, PS3.10 7.1): pydicom's reader took ten times
    as long. None where anything is unusual: pydicom reads it then."""
    if head[128:132] != b"DICM":
        return None
    found: dict[int, str] = {}
    at = 132
    while at + 8 <= len(head):
        group = int.from_bytes(head[at : at + 2], "little")
        if group != 0x0002:
            break
        element = int.from_bytes(head[at + 2 : at + 4], "little")
        vr = head[at + 4 : at + 6]
        if vr in _LONG_VRS:
            length, at = int.from_bytes(head[at + 8 : at + 12], "little"), at + 12
        else:
            length, at = int.from_bytes(head[at + 6 : at + 8], "little"), at + 8
        if at + length > len(head):
            return None
        if element in (0x0002, 0x0010):
            found[element] = head[at : at + length].rstrip(b"\0 ").decode("ascii", "replace")
        at += length
    if 0x0002 not in found or 0x0010 not in found:
        return None
    return found[0x0002], found[0x0010]


def send_files(
    calling_aet: str,
    peer: Peer,
    files: Sequence[Outgoing],
    *,
    hand: Hand,
    associations: int = 1,
    cancel: threading.Event | None = None,
) -> str:
    """C-STORE every file on up to `associations` associations; each answer goes to `hand`
    (from the sending threads) as it arrives. Returns '' when every file was tried, else
    why the rest was not (the node cannot be reached, or cancelled); those get no answer."""
    cancel = cancel or threading.Event()
    by_context: dict[tuple[str, str], list[Outgoing]] = {}
    for item in files:
        context = _context_of(item.path)
        if isinstance(context, str):
            hand(Answer(item.key, None, context))
        else:
            by_context.setdefault(context, []).append(item)
    ordered = sorted(by_context)
    for first in range(0, len(ordered), MAX_CONTEXTS):  # more kinds: associations in turn
        proposed = ordered[first : first + MAX_CONTEXTS]
        todo: queue.SimpleQueue[tuple[Outgoing, tuple[str, str]]] = queue.SimpleQueue()
        for context in proposed:
            for item in by_context[context]:
                todo.put((item, context))
        stopped = _on_associations(calling_aet, peer, proposed, todo, hand, associations, cancel)
        if stopped:
            return stopped
    return ""


def _on_associations(
    calling_aet: str,
    peer: Peer,
    proposed: list[tuple[str, str]],
    todo: queue.SimpleQueue[tuple[Outgoing, tuple[str, str]]],
    hand: Hand,
    associations: int,
    cancel: threading.Event,
) -> str:
    stopped: list[str] = []

    def one_association() -> None:
        ae = make_ae(calling_aet, peer)
        for sop_class, syntax in proposed:
            ae.add_requested_context(sop_class, syntax)
        try:
            assoc = associate(ae, peer)
        except AssociationFailed as failed:
            stopped.append(f"{failed.outcome}: {failed.detail}")
            return
        try:
            _send_all(assoc, todo, hand, cancel, stopped)
        finally:
            if cancel.is_set():
                abort_now(assoc)
            else:
                release(assoc)

    workers = [
        threading.Thread(target=one_association, name=f"send-{peer.aet}-{n}", daemon=True)
        for n in range(max(1, min(associations, todo.qsize())))
    ]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.join()
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: the associations are aborted, then we go
        cancel.set()
        for worker in workers:
            worker.join()
        raise
    if todo.empty():
        return ""
    if cancel.is_set():
        return "cancelled"
    return stopped[0] if stopped else "not sent"


def _send_all(
    assoc: Association,
    todo: queue.SimpleQueue[tuple[Outgoing, tuple[str, str]]],
    hand: Hand,
    cancel: threading.Event,
    stopped: list[str],
) -> None:
    accepted = {
        (c.abstract_syntax, c.transfer_syntax[0])
        for c in assoc.accepted_contexts
        if c.abstract_syntax and c.transfer_syntax
    }
    while not cancel.is_set():
        try:
            item, context = todo.get_nowait()
        except queue.Empty:
            return
        if context not in accepted:
            hand(Answer(item.key, None, _not_accepted(context), never=True))
            continue
        try:
            answer = assoc.send_c_store(item.path)
        except (OSError, ValueError, AttributeError, RuntimeError) as exc:
            hand(Answer(item.key, None, f"not sent: {exc}"))
            continue
        status = answer.get("Status") if answer else None
        if status is None:  # no answer: the association was lost; the rest waits
            hand(Answer(item.key, None, "the association ended without an answer"))
            stopped.append("the association ended without an answer")
            return
        comment = str(answer.get("ErrorComment", "") or "")
        hand(Answer(item.key, int(status), comment[:200]))


def _not_accepted(context: tuple[str, str]) -> str:
    from pydicom.uid import UID

    sop_class, syntax = context
    with contextlib.suppress(Exception):
        sop_class = f"{UID(sop_class).name} ({sop_class})"
    return f"the destination does not accept {sop_class} in {UID(syntax).name}"
