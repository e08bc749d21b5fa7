"""A second process that takes a share of a retrieve's requests (`retrieve_processes`).

Receiving is CPU-bound in one process: pynetdicom's threads and the handler of each object
share one interpreter lock. The helper is another Python, started with the run, that keeps
one association of the retrieve's pool: the parent's Retriever hands it requests like any
session of the pool and decides everything as before. The helper writes what it receives
into the same store (the parent holds the store's lock; both write its index, which takes
turns) and tells the parent each object, each Pending count and each final status.

What it needs: C-GET into an embedded store (under "auto" a request asked again with C-MOVE
is sent by the helper too; the objects then come to the parent's storage SCP). It is not
used where the node sets `max_queries_per_second` (each process would keep its own rate)
or allows fewer than two associations. Wire: one JSON object a line, each way.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import IO, Any

from pydicom.dataset import Dataset

import qrtui
from qrtui import clock
from qrtui.config import RemoteNode, StoreNode
from qrtui.dicom.assoc import AssociationFailed, Outcome
from qrtui.dicom.retrieve import RetrieveFailed, RetrieveOutcome, RetrieveSession, SubOps
from qrtui.dicom.session import Cancelled
from qrtui.dicom.storescp import Received
from qrtui.store.files import StoredInstance

START = "from qrtui.worker.helping import main; main()"
STOP_SECONDS = 10.0  # for the helper to answer a cancel or a close, before it is killed
READY_SECONDS = 0.0  # a pool does not wait for a helper still starting (tests do)


def wanted(remote: RemoteNode, store_node: StoreNode, dry_run: bool) -> int:
    """How many helper processes a run of `remote` into `store_node` starts."""
    if dry_run or not store_node.embedded or remote.retrieve == "move":
        return 0
    if remote.max_queries_per_second is not None or remote.max_associations < 2:
        return 0
    return max(0, min(remote.retrieve_processes - 1, remote.max_associations - 1))


# ------------------------------------------------------------------ the wire


def node_to_wire(node: RemoteNode) -> dict[str, Any]:
    found = asdict(node)
    found["set_keys"] = sorted(node.set_keys)
    return found


def node_from_wire(found: dict[str, Any]) -> RemoteNode:
    known = {f.name for f in fields(RemoteNode)}
    values = {k: v for k, v in found.items() if k in known}
    values["set_keys"] = frozenset(values.get("set_keys", ()))
    return RemoteNode(**values)


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


# ------------------------------------------------------------------ the parent's side


class Helper:
    """One helper process, for the whole run; each retrieve (a window) opens its association
    and closes it again. Its messages are read by a thread and handed to the waiting
    request. A helper that dies is not asked again: its session does its work itself."""

    def __init__(self, calling_aet: str, remote: RemoteNode, store_node: StoreNode) -> None:
        self.remote = remote
        self.alive = False
        self.ready = threading.Event()  # its Python started and the store open
        self._answers: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._write = threading.Lock()
        root = str(Path(qrtui.__file__).resolve().parent.parent)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
        }
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", START],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        except OSError:
            return
        self.alive = True
        self._send(
            op="init",
            aet=calling_aet,
            node=node_to_wire(remote),
            store=str(store_node.directory),
            destination=store_node.aet,
        )
        threading.Thread(target=self._read, name="qrtui-helper-read", daemon=True).start()

    def _read(self) -> None:
        stdout: IO[bytes] = self._process.stdout  # type: ignore[assignment]
        with contextlib.suppress(Exception):
            for line in stdout:
                answer = json.loads(line)
                if answer["op"] == "ready":
                    self.ready.set()
                    continue
                self._answers.put(answer)
        self.alive = False
        self._answers.put(None)  # whoever waits learns it is gone

    def _send(self, **message: Any) -> bool:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            with self._write:
                stdin.write(json.dumps(message).encode() + b"\n")
                stdin.flush()
        except (OSError, ValueError):
            self.alive = False
            return False
        return True

    def ask(self, timeout: float | None = None, **message: Any) -> Iterator[dict[str, Any]]:
        """Send a message; the answers that follow, until the helper is gone (nothing more)."""
        if not self.alive or not self._send(**message):
            return
        while True:
            try:
                answer = self._answers.get(timeout=timeout)
            except queue.Empty:
                yield {"op": "waiting"}
                continue
            if answer is None:
                self._answers.put(None)  # for the next one too
                return
            yield answer

    def send(self, **message: Any) -> None:
        if self.alive:
            self._send(**message)

    def kill(self) -> None:
        self.alive = False
        self._process.kill()

    def stop(self) -> None:
        """End of the run: the helper reads the end of its input and leaves."""
        with contextlib.suppress(OSError, ValueError):
            assert self._process.stdin is not None
            self._process.stdin.close()
        try:
            self._process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


@contextlib.contextmanager
def helpers(
    calling_aet: str, remote: RemoteNode, store_node: StoreNode, count: int
) -> Iterator[list[Helper]]:
    """`count` helpers, started now (their Python starts while the run plans), stopped at
    the end."""
    started = [Helper(calling_aet, remote, store_node) for _ in range(count)]
    try:
        yield [h for h in started if h.alive]
    finally:
        for helper in started:
            helper.stop()


class HelperSession(RetrieveSession):
    """A session of the retrieve's pool whose requests the helper sends. The objects it
    reports go into the parent's Receiver, as if they had arrived here. Where the helper
    is gone, the session works here, as any other (a request cut short is asked again:
    what the helper stored stays stored)."""

    def __init__(self, helper: Helper, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = helper
        self.sent = 0  # requests the helper answered
        self._expected_sent: object = None
        self._request = 0

    def __enter__(self) -> HelperSession:
        if self.helper.alive and not self.helper.ready.wait(READY_SECONDS):
            raise AssociationFailed(self.peer, Outcome.REJECTED, "the helper is starting")
        store = self.receiver.store if self.receiver is not None else None
        for answer in self.helper.ask(
            op="open",
            sop_classes=self.sop_classes,
            forward_to=list(store.forward_to) if store is not None else [],
        ):
            if answer["op"] != "opened":
                continue
            if not answer["ok"]:
                detail = str(answer.get("error", "the helper could not associate"))
                raise AssociationFailed(self.peer, Outcome.REJECTED, detail)
            return self
        super().__enter__()  # the helper is gone
        return self

    def retrieve(
        self,
        identifier: Dataset,
        on_pending: Callable[[SubOps], None] = lambda s: None,
        use_get: bool | None = None,
    ) -> RetrieveOutcome:
        receiver = self.receiver
        get = self.use_get if use_get is None else use_get
        if not self.helper.alive or receiver is None:
            return super().retrieve(identifier, on_pending, get)
        if receiver.expected is not self._expected_sent:
            self._expected_sent = expected = receiver.expected
            plain = None if expected is None else {k: v and sorted(v) for k, v in expected.items()}
            self.helper.send(op="expected", expected=plain)
        if not get and self.before_move is not None:
            self.before_move()
        self._request += 1
        told_cancel: float | None = None
        for answer in self.helper.ask(
            timeout=0.1,
            op="retrieve",
            id=self._request,
            identifier=identifier.to_json_dict(),
            get=get,
            probe=sorted(receiver.probe_series),
        ):
            kind = answer["op"]
            if self.cancel.is_set() and told_cancel is None:
                told_cancel = clock.monotonic()
                self.helper.send(op="cancel")
            if told_cancel is not None and clock.monotonic() - told_cancel > STOP_SECONDS:
                self.helper.kill()  # it does not answer: bounded all the same
                raise Cancelled
            if kind == "received":
                receiver.took(received_from_wire(answer))
            if answer.get("id") != self._request:
                continue  # waiting, or the end of a request given up on
            if kind == "pending":
                on_pending(counts_from_wire(answer["counts"]))
            elif kind == "done":
                receiver.merge(answer["receiver"])
                self.sent += 1
                return RetrieveOutcome(
                    answer["status"],
                    counts_from_wire(answer["counts"]),
                    tuple(answer["failed_uids"]),
                    cancelled=answer["cancelled"],
                )
            elif kind == "error":
                receiver.merge(answer["receiver"])
                if answer["kind"] == "cancelled":
                    raise Cancelled
                raise RetrieveFailed(answer["message"])
        if self.cancel.is_set():
            raise Cancelled
        return super().retrieve(identifier, on_pending, get)  # the helper is gone

    def close(self) -> None:
        super().close()
        if self.cancel.is_set():
            self.helper.send(op="cancel")
        for answer in self.helper.ask(timeout=STOP_SECONDS, op="close"):
            if answer["op"] == "received" and self.receiver is not None:  # stored all the same
                self.receiver.took(received_from_wire(answer))
            if answer["op"] in ("closed", "waiting"):
                break
