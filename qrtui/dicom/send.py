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
        meta = read_file_meta_info(path)
        return str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID)
    except (OSError, InvalidDicomError, AttributeError) as exc:
        return f"the stored file cannot be read ({getattr(exc, 'strerror', None) or exc})"


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
    contexts: set[tuple[str, str]] = set()
    todo: queue.SimpleQueue[tuple[Outgoing, tuple[str, str]]] = queue.SimpleQueue()
    for item in files:
        context = _context_of(item.path)
        if isinstance(context, str):
            hand(Answer(item.key, None, context))
            continue
        contexts.add(context)
        todo.put((item, context))
    proposed = sorted(contexts)[:MAX_CONTEXTS]
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
    for worker in workers:
        worker.join()
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
