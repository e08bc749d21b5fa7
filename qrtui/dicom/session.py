"""Requests on one association, re-opened once when the peer drops it, aborted on cancel."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Self, TypeVar

from pynetdicom.association import Association

from qrtui.config import RemoteNode
from qrtui.dicom.assoc import AssociationFailed, Peer
from qrtui.dicom.tls import client_context

T = TypeVar("T")


class Cancelled(Exception):
    """The user asked to stop."""


class SessionFailed(Exception):
    """The association was lost twice, or could not be re-opened; worded for the user."""


class Lost(Exception):
    """The association went away during a request."""


def node_peer(node: RemoteNode) -> Peer:
    return Peer(
        node.aet, node.host, node.port, node.timeout, node.dimse_timeout, client_context(node)
    )


class LinkedCancel(threading.Event):
    """The cancel a pool's sessions share: set by the caller's cancel, or by the pool itself
    when a request fails (its siblings are aborted). Setting it leaves the caller's event
    alone, so a node's failure is never taken for the user's cancel."""

    POLL = 0.05  # seconds between looks at the caller's event while waiting

    def __init__(self, outer: threading.Event | None) -> None:
        super().__init__()
        self.outer = outer

    def is_set(self) -> bool:
        return super().is_set() or (self.outer is not None and self.outer.is_set())

    def wait(self, timeout: float | None = None) -> bool:
        if self.outer is None:  # nothing else to look at: no polling
            return super().wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = self.POLL if deadline is None else min(self.POLL, deadline - time.monotonic())
            if left <= 0:
                return False
            super().wait(left)
        return True


class Session:
    failure: type[SessionFailed] = SessionFailed

    def __init__(
        self, calling_aet: str, node: RemoteNode, cancel: threading.Event | None = None
    ) -> None:
        self.node = node
        self.peer = node_peer(node)
        self.calling_aet = calling_aet
        self.cancel = cancel or threading.Event()
        self._assoc: Association | None = None

    def _associate(self) -> Association:
        raise NotImplementedError

    def _open(self) -> Association:
        if self._assoc is None or not self._assoc.is_established:
            self._assoc = self._associate()
        return self._assoc

    def __enter__(self) -> Self:
        self._open()
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is not None:
            self.cancel.set()  # an interrupted request is aborted, not released
        self.close()

    def close(self) -> None:
        assoc, self._assoc = self._assoc, None
        if assoc is not None and assoc.is_established:
            if self.cancel.is_set():
                assoc.abort()
            else:
                assoc.release()

    def _reopening(self, request: Callable[[], T]) -> T:
        for attempt in (1, 2):
            try:
                return request()
            except Lost as lost:
                self._assoc = None
                if self.cancel.is_set():
                    raise Cancelled from None
                if attempt == 2:
                    raise self.failure(f"{self.peer.aet}@{self.peer.host}: {lost}") from None
                try:
                    self._open()
                except AssociationFailed as failed:
                    raise self.failure(str(failed)) from None
        raise AssertionError("unreachable")
