"""The helper process's side (qrtui/worker/helper.py has the parent's): requests read from
standard input, one at a time, on one association (a retrieve's, or a find's); what happens
written to standard output.
It ignores Ctrl-C and SIGTERM, which reach the whole process group: the parent stops it, by
closing its input. Its input closed mid-request, it cancels and leaves."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from qrtui.dicom.assoc import AssociationFailed
from qrtui.dicom.find import FindSession
from qrtui.dicom.retrieve import RetrieveSession, SubOps
from qrtui.dicom.session import Cancelled, SessionFailed
from qrtui.dicom.storescp import Received, Receiver
from qrtui.helpers import node_from_wire
from qrtui.store import Store
from qrtui.store.files import StoredInstance


def received_to_wire(received: Received) -> dict[str, Any]:
    instance = asdict(received.instance)
    instance["path"] = str(received.instance.path)
    return {"instance": instance, "probe": received.probe}


def received_from_wire(found: dict[str, Any]) -> Received:
    instance = dict(found["instance"])
    instance["path"] = Path(instance["path"])
    return Received(StoredInstance(**instance), bool(found["probe"]))


def counts_to_wire(counts: SubOps) -> list[int | None]:
    return [counts.remaining, counts.completed, counts.failed, counts.warning]


def counts_from_wire(found: list[int | None]) -> SubOps:
    return SubOps(*found)


BEAT_SECONDS = 1.0  # a find in flight says how many answers it has, this often


class RawFindSession(FindSession):
    raw = True  # the parent reads the answers


def _sent(finder: FindSession | None, before: int) -> int:
    return finder.requests - before if finder else 0


class _Child:
    def __init__(self, init: dict[str, Any]) -> None:
        self.aet = init["aet"]
        self.node = node_from_wire(init["node"])
        self.destination = init["destination"]
        self.directory = Path(init["store"])
        self._receiver: Receiver | None = None
        self.session: RetrieveSession | None = None
        self.cancel = threading.Event()
        self.request: int | None = None
        self._write = threading.Lock()
        self._reported = (0, 0, 0, 0, 0)
        self.finder: FindSession | None = None
        self._finds = threading.Lock()
        self._find: tuple[int, threading.Event] | None = None  # the find in flight
        self._find_cancels: set[int] = set()  # finds cancelled before they began
        self._finds_stopped = False  # the parent is gone

    @property
    def receiver(self) -> Receiver:
        """Opened at the first retrieve: by then the parent holds the store's lock."""
        if self._receiver is None:
            store = Store(self.directory, lock=False)
            self._receiver = Receiver(store, on_received=self._received)
        return self._receiver

    def say(self, **message: Any) -> None:
        try:
            with self._write:
                sys.stdout.write(json.dumps(message) + "\n")
                sys.stdout.flush()
        except (OSError, ValueError):  # the parent is gone: stop what is in flight
            self.stop()

    def stop(self) -> None:
        """Whatever is in flight, and whatever comes, cancelled: the parent is gone."""
        self.cancel.set()
        with self._finds:
            self._finds_stopped = True
            if self._find is not None:
                self._find[1].set()

    def cancel_find(self, request: int) -> None:
        with self._finds:
            if self._find is not None and self._find[0] == request:
                self._find[1].set()
            else:  # asked before the find began
                self._find_cancels.add(request)

    def _received(self, received: Received) -> None:
        self.say(op="received", id=self.request, **received_to_wire(received))

    def _pending(self, counts: SubOps) -> None:
        self.say(op="pending", id=self.request, counts=counts_to_wire(counts))

    def _receiver_news(self) -> dict[str, Any]:
        """What the receiver noted since the last report: refusals, write errors, objects
        set aside, notes on the sender."""
        r = self.receiver
        a, b, c, d, e = self._reported
        news = {
            "refused": r.refused - a,
            "refusals": r.refusals[b:],
            "write_errors": r.write_errors[c:],
            "unasked": r.unasked[d:],
            "notes": r.sender_notes[e:],
        }
        self._reported = (
            r.refused, len(r.refusals), len(r.write_errors), len(r.unasked), len(r.sender_notes)
        )  # fmt: skip
        return news

    def open(self, message: dict[str, Any]) -> None:
        self.close()
        self.cancel = threading.Event()
        try:
            self.receiver.store.forward_to = tuple(message["forward_to"])
            self.session = RetrieveSession(
                self.aet,
                self.node,
                destination=self.destination,
                receiver=self.receiver,
                sop_classes=message["sop_classes"],
                cancel=self.cancel,
            ).__enter__()
        except Exception as exc:
            self.session = None
            self.say(op="opened", ok=False, error=str(exc))
            return
        self.say(op="opened", ok=True)

    def retrieve(self, message: dict[str, Any]) -> None:
        self.request = message["id"]
        self.receiver.probe_series = set(message["probe"])
        try:
            if self.session is None:
                raise SessionFailed("the helper has no association")
            outcome = self.session.retrieve(
                Dataset.from_json(message["identifier"]), self._pending, message["get"]
            )
        except Cancelled:
            self.say(op="error", id=self.request, kind="cancelled", receiver=self._receiver_news())
            return
        except Exception as exc:  # the node's failure, or one of the helper's own
            kind = "failed" if isinstance(exc, SessionFailed) else "fault"
            self.say(
                op="error", id=self.request, kind=kind, message=str(exc),
                receiver=self._receiver_news(),
            )  # fmt: skip
            return
        self.say(
            op="done", id=self.request, status=outcome.status,
            counts=counts_to_wire(outcome.counts), failed_uids=list(outcome.failed_uids),
            cancelled=outcome.cancelled, receiver=self._receiver_news(),
        )  # fmt: skip

    def find_open(self) -> None:
        self.find_close()
        with self._finds:  # a new session's queries are numbered from 1 again
            self._find_cancels.clear()
        try:
            session = RawFindSession(self.aet, self.node, threading.Event(), patient=False)
            self.finder = session.__enter__()
        except Exception as exc:
            self.say(op="find_opened", ok=False, error=str(exc))
            return
        self.say(op="find_opened", ok=True)

    def find(self, message: dict[str, Any]) -> None:
        """One query, with a cancel of its own (the parent names the query it cancels)."""
        request, finder = message["id"], self.finder
        done, cancel = threading.Event(), threading.Event()
        with self._finds:
            if self._finds_stopped or request in self._find_cancels:
                cancel.set()
            self._find = (request, cancel)
        asked = finder.requests if finder else 0

        def beat() -> None:  # the parent bounds a find by its progress
            while not done.wait(BEAT_SECONDS):
                self.say(op="finding", id=request, answers=finder.answers if finder else 0)

        threading.Thread(target=beat, daemon=True).start()
        try:
            if finder is None:
                raise SessionFailed("the helper has no association")
            finder.cancel = cancel
            outcome = finder.find(Dataset.from_json(message["identifier"]), message["limit"])
        except Cancelled:
            self.say(op="error", id=request, kind="cancelled", requests=_sent(finder, asked))
            return
        except Exception as exc:  # the node's failure, or one of the helper's own
            node = isinstance(exc, SessionFailed | AssociationFailed)
            self.say(
                op="error", id=request, kind="failed" if node else "fault", message=str(exc),
                requests=_sent(finder, asked),
            )  # fmt: skip
            return
        finally:
            done.set()
            with self._finds:
                self._find = None
                self._find_cancels.discard(request)
        self.say(
            op="found", id=request, status=outcome.status, undecodable=outcome.undecodable,
            syntax=outcome.syntax, raw=[base64.b64encode(r).decode("ascii") for r in outcome.raw],
            requests=_sent(finder, asked),
        )  # fmt: skip

    def find_close(self, abort: bool = False) -> None:
        """Released; aborted where the parent's pool was cancelled, or the last find."""
        finder, self.finder = self.finder, None
        if finder is not None:
            if abort:
                finder.cancel = threading.Event()
                finder.cancel.set()
            with contextlib.suppress(Exception):  # a lost association: nothing more to do
                finder.close()

    def close(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            with contextlib.suppress(Exception):  # a lost association: nothing more to do
                session.close()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = os.getppid()
    import qrtui.dicom  # noqa: F401  (the patches, before any association)

    lines = iter(sys.stdin.readline, "")
    try:
        child = _Child(json.loads(next(lines)))
    except Exception:
        os._exit(0)
    child.say(op="ready")
    work: list[dict[str, Any]] = []
    ready = threading.Condition()

    def read() -> None:  # cancel must reach a request in flight
        try:
            for line in lines:
                message = json.loads(line)  # a line cut short: the parent died writing it
                if message["op"] == "cancel":  # a find's names it; a retrieve's does not
                    if "id" in message:
                        child.cancel_find(message["id"])
                    else:
                        child.cancel.set()
                    continue
                with ready:
                    work.append(message)
                    ready.notify()
        finally:  # the parent is gone, or closed its side: stop and leave
            child.stop()
            with ready:
                work.append({"op": "end"})
                ready.notify()

    threading.Thread(target=read, daemon=True).start()
    try:
        while True:
            with ready:
                while not work:
                    if not ready.wait(1.0) and os.getppid() != parent:
                        work.append({"op": "end"})  # the parent died without a word
                message = work.pop(0)
            op = message["op"]
            if op == "end":
                break
            if op == "open":
                child.open(message)
            elif op == "expected":
                expected = message["expected"]
                child.receiver.expected = (
                    None
                    if expected is None
                    else {k: None if v is None else frozenset(v) for k, v in expected.items()}
                )
            elif op == "retrieve":
                child.retrieve(message)
            elif op == "close":
                child.close()
                child.say(op="closed")
            elif op == "find_open":
                child.find_open()
            elif op == "find":
                child.find(message)
            elif op == "find_close":
                child.find_close(message.get("abort", False))
                child.say(op="find_closed")
    finally:
        child.stop()  # an association still open is aborted, not released
        child.close()
        child.find_close()
        if child._receiver is not None:
            with contextlib.suppress(Exception):
                child.receiver.store.close()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        os._exit(0)  # pynetdicom's threads of a lost association must not keep it alive
