"""Requests on one association, re-opened once when the peer drops it, aborted on cancel."""

from __future__ import annotations

import threading
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
