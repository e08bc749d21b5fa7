"""A second process that takes a share of a run's queries and retrieves
(`retrieve_processes`).

Reading answers and receiving objects is CPU-bound in one process: pynetdicom's threads and
the handler of each object share one interpreter lock. The helper is another Python,
started with the run, that keeps one association of a pool at a time.
- The funnel's pool: its C-FINDs are sent there, and their answers come back as received,
  to be read and checked here.
- The retrieve's pool: the parent's Retriever hands it requests like any session and
  decides everything as before. The helper writes what it receives into the same store
  (the parent holds the store's lock; both write its index, which takes turns) and tells
  the parent each object, each Pending count and each final status. For this it needs
  C-GET into an embedded store (under "auto" a request asked again with C-MOVE is sent by
  the helper too; the objects then come to the parent's storage SCP).

It is not used where the node sets `max_queries_per_second` (each process would keep its
own rate) or allows fewer than two associations. Wire: one JSON object a line, each way.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import IO, Any

import qrtui
from qrtui.config import RemoteNode, StoreNode

START = "from qrtui.helping import main; main()"  # not the worker package: a lighter start
STOP_SECONDS = 10.0  # for the helper to answer a cancel or a close, before it is killed


def wanted(remote: RemoteNode) -> int:
    """How many helper processes a run of `remote` starts (dry or not: they take a share of
    the funnel's queries too)."""
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


class Helper:
    """One helper process, for the whole run; each retrieve (a window) opens its association
    and closes it again. Its messages are read by a thread and handed to the waiting
    request. A helper that dies is not asked again: its session does its work itself."""

    def __init__(self, calling_aet: str, remote: RemoteNode, store_node: StoreNode) -> None:
        self.remote = remote
        self.store = store_node.directory
        self.alive = False
        self.ready = threading.Event()  # its Python started: it can take a retrieve
        self._answers: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._write = threading.Lock()
        self._claimed = threading.Lock()  # held by the one session that uses it
        self._process: subprocess.Popen[bytes] | None = None
        # -P: not the working directory's modules; this qrtui, installed or not
        root = str(Path(qrtui.__file__).resolve().parent.parent)
        paths = [root, *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-P", "-c", START],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        except OSError:  # no process to be had (a task limit): the run works without one
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
        assert self._process is not None and self._process.stdout is not None
        stdout: IO[bytes] = self._process.stdout
        with contextlib.suppress(Exception):
            for line in stdout:
                answer = json.loads(line)
                if answer["op"] == "ready":
                    self.ready.set()
                    continue
                self._answers.put(answer)
        self.kill()  # what it says can no longer be read: it is not asked again
        self._answers.put(None)  # whoever waits learns it is gone

    def _send(self, **message: Any) -> bool:
        if self._process is None or self._process.stdin is None:
            return False
        try:
            with self._write:
                self._process.stdin.write(json.dumps(message).encode() + b"\n")
                self._process.stdin.flush()
        except (OSError, ValueError):
            self.kill()
            return False
        return True

    def ask(self, timeout: float | None = None, **message: Any) -> Iterator[dict[str, Any]]:
        """Send a message; the answers that follow (a "waiting" each `timeout` s without
        one), until the helper is gone."""
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

    @property
    def taken(self) -> bool:
        """A session uses it."""
        return self._claimed.locked()

    def claim(self) -> bool:
        """For one session at a time (a find pool's or a retrieve pool's); False where it is
        taken, or gone."""
        return self.alive and self._claimed.acquire(blocking=False)

    def unclaim(self) -> None:
        if self._claimed.locked():
            self._claimed.release()

    def send(self, **message: Any) -> None:
        if self.alive:
            self._send(**message)

    def kill(self) -> None:
        self.alive = False
        if self._process is not None:
            with contextlib.suppress(OSError):
                self._process.kill()

    def stop(self) -> None:
        """End of the run: the helper reads the end of its input and leaves."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(OSError, ValueError):
            assert process.stdin is not None
            process.stdin.close()
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_started: list[Helper] = []  # by prestart(), for the run about to start


def prestart(calling_aet: str, remote: RemoteNode, store_node: StoreNode) -> None:
    """Start the run's helpers before the run has loaded pydicom and pynetdicom, so that
    their Python starts beside it (the scripted mode; the run takes them)."""
    for _ in range(wanted(remote)):
        helper = Helper(calling_aet, remote, store_node)
        if helper.alive:
            _started.append(helper)


def taken(remote: RemoteNode, store_node: StoreNode) -> list[Helper]:
    """The helpers prestarted for this run; any others stopped."""
    found = []
    for helper in _started:
        if helper.remote == remote and helper.store == store_node.directory:
            found.append(helper)
        else:
            helper.stop()
    _started.clear()
    return found


def discard() -> None:
    """Helpers prestarted for a run that did not take them (it ended first)."""
    for helper in _started:
        helper.stop()
    _started.clear()
