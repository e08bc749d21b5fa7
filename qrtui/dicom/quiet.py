"""pynetdicom without busy polling.

Each association has two threads that look for work every millisecond: the DUL reactor
(socket and outgoing primitives) and the association reactor (decoded messages). A dozen
associations at once are some 20,000 wake-ups a second fighting for the GIL on a two-core
server; profiled, they took most of a parallel retrieve's CPU. Here both threads sleep until
something arrives (a byte on the socket, a queued primitive or message) or 20 ms pass, which
still serves pynetdicom's timers and kill flags.

Installed on import, for pynetdicom 3 only: it replaces the `time` those two modules see, and
only `sleep` calls of a millisecond or less made on those threads change.
"""

from __future__ import annotations

import contextlib
import queue
import select
import socket
import ssl
import sys
import threading
import time as _time
import weakref
from typing import Any

from pynetdicom import association as _association
from pynetdicom import dul as _dul
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dul import DULServiceProvider

IDLE_WAIT = 0.02  # seconds; bounds how late a timer or a kill flag is noticed
_POLL = 0.001  # pynetdicom's loop delay: sleeps this short are polls


class _Wake:
    """A socket pair to make `select` return when a queue gets work."""

    def __init__(self) -> None:
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.writer.setblocking(False)

    def ring(self) -> None:
        with contextlib.suppress(OSError):  # full (it will be read) or closed (nobody waits)
            self.writer.send(b"\0")

    def drain(self) -> None:
        try:
            while self.reader.recv(4096):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


class _RingingQueue(queue.Queue[Any]):
    def __init__(self, ring: Any) -> None:
        super().__init__()
        self._ring = ring

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._ring()


def _dul_wait(dul: Any) -> None:
    wake: _Wake = dul._qrtui_wake
    raw = getattr(dul.socket, "socket", None)
    if isinstance(raw, ssl.SSLSocket) and raw.pending():
        return
    watched = [wake.reader] if raw is None else [wake.reader, raw]
    try:
        select.select(watched, [], [], IDLE_WAIT)
    except (OSError, ValueError):  # the socket closed under us: pynetdicom will notice
        _time.sleep(_POLL)
    wake.drain()


def _association_wait(assoc: Any) -> None:
    assoc._qrtui_work.wait(IDLE_WAIT)
    assoc._qrtui_work.clear()


class _Time:
    """The `time` module, except for the reactor threads' polling sleeps."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        if seconds <= _POLL:
            thread = threading.current_thread()
            caller = sys._getframe(1).f_code.co_name
            if caller == "run_reactor" and isinstance(thread, DULServiceProvider):
                _dul_wait(thread)
                return
            if caller == "_run_reactor" and isinstance(thread, Association):
                _association_wait(thread)
                return
        _time.sleep(seconds)


_dul_init = DULServiceProvider.__init__
_dul_run = DULServiceProvider.run_reactor
_association_init = Association.__init__


def _init_dul(self: DULServiceProvider, assoc: Any) -> None:
    _dul_init(self, assoc)
    wake = _Wake()
    weakref.finalize(self, wake.close)  # for a provider that never ran
    self._qrtui_wake = wake  # type: ignore[attr-defined]
    self.event_queue = _RingingQueue(wake.ring)
    self.to_provider_queue = _RingingQueue(wake.ring)


def _run_dul(self: DULServiceProvider) -> None:
    try:
        _dul_run(self)
    finally:
        self._qrtui_wake.close()  # type: ignore[attr-defined]


def _kill_then_ring(self: DULServiceProvider) -> None:
    self._kill_thread = True
    self._qrtui_wake.ring()  # type: ignore[attr-defined]


_dul_stop = DULServiceProvider.stop_dul


def _stop_dul(self: DULServiceProvider) -> bool:
    if self.state_machine.current_state == "Sta1":
        _kill_then_ring(self)
    return _dul_stop(self)


def _init_association(self: Association, ae: Any, mode: str) -> None:
    _association_init(self, ae, mode)
    work = threading.Event()
    self._qrtui_work = work  # type: ignore[attr-defined]
    self.dimse.msg_queue = _RingingQueue(work.set)
    self.dul.to_user_queue = _RingingQueue(work.set)


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
DULServiceProvider.__init__ = _init_dul  # type: ignore[method-assign]
DULServiceProvider.run_reactor = _run_dul  # type: ignore[method-assign]
DULServiceProvider.kill_dul = _kill_then_ring  # type: ignore[method-assign]
DULServiceProvider.stop_dul = _stop_dul  # type: ignore[method-assign]
Association.__init__ = _init_association  # type: ignore[method-assign]
_dul.time = _association.time = _Time()  # type: ignore[assignment,attr-defined]
