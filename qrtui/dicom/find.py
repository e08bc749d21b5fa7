"""Study Root C-FIND on one association at a time, tolerant of what PACS send back."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom.association import Association
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
)

from qrtui.config import RemoteNode
from qrtui.dicom.assoc import AssociationFailed, Peer, associate, make_ae


class Cancelled(Exception):
    """The user asked to stop."""


class FindFailed(Exception):
    """The association failed during a query; worded for the user."""


@dataclass
class FindOutcome:
    matches: list[Dataset] = field(default_factory=list)
    status: int = 0
    undecodable: int = 0

    @property
    def complete(self) -> bool:
        return self.status == 0x0000

    def problem(self) -> str:
        if self.complete:
            return ""
        return f"C-FIND ended with status 0x{self.status:04X} ({status_text(self.status)})"


def status_text(status: int) -> str:
    if status == 0xFE00:
        return "cancelled: matching terminated"
    if status == 0xA700:
        return "refused: out of resources"
    if status == 0xA900:
        return "identifier does not match SOP class"
    if status == 0xB001:
        return "matching reached the response limit"
    if status & 0xF000 == 0xC000:
        return "unable to process"
    if status & 0xF000 == 0xB000:
        return "warning"
    return "failure"


def node_peer(node: RemoteNode) -> Peer:
    return Peer(node.aet, node.host, node.port, node.timeout, node.dimse_timeout)


class FindSession:
    """Sequential C-FINDs on one association, re-opened once if the peer dropped it."""

    def __init__(
        self, calling_aet: str, node: RemoteNode, cancel: threading.Event | None = None
    ) -> None:
        self.peer = node_peer(node)
        self.calling_aet = calling_aet
        self.cancel = cancel or threading.Event()
        self._assoc: Association | None = None
        self.requests = 0

    def __enter__(self) -> FindSession:
        self._open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _open(self) -> Association:
        if self._assoc is None or not self._assoc.is_established:
            ae = make_ae(self.calling_aet, self.peer)
            ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
            self._assoc = associate(ae, self.peer)
        return self._assoc

    def close(self) -> None:
        assoc, self._assoc = self._assoc, None
        if assoc is not None and assoc.is_established:
            if self.cancel.is_set():
                assoc.abort()
            else:
                assoc.release()

    def find(self, identifier: Dataset) -> FindOutcome:
        for attempt in (1, 2):
            try:
                return self._find_once(identifier)
            except _Lost as lost:
                self._assoc = None
                if attempt == 2:
                    raise FindFailed(f"{self.peer.aet}@{self.peer.host}: {lost}") from None
                try:
                    self._open()
                except AssociationFailed as failed:
                    raise FindFailed(str(failed)) from None
        raise AssertionError("unreachable")

    def _find_once(self, identifier: Dataset) -> FindOutcome:
        if self.cancel.is_set():
            raise Cancelled
        assoc = self._open()
        self.requests += 1
        outcome = FindOutcome()
        responses = assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind)
        for status, match in responses:
            if self.cancel.is_set():
                assoc.abort()
                self._assoc = None
                raise Cancelled
            if not status or "Status" not in status:
                raise _Lost("the association was lost or timed out during C-FIND")
            code = int(status.Status)
            if code in (0xFF00, 0xFF01):
                if match is None:
                    outcome.undecodable += 1
                else:
                    outcome.matches.append(match)
                continue
            if code == 0xB001:  # response limit reached; the final status still follows
                outcome.status = code
                continue
            if outcome.status != 0xB001 or code != 0:
                outcome.status = code
            return outcome
        raise _Lost("the association ended without a final C-FIND status")


class _Lost(Exception):
    pass


def text(ds: Dataset, keyword: str) -> str | None:
    """A value as text, or None when absent; malformed values never raise."""
    try:
        if keyword not in ds:
            return None
        value = ds[keyword].value
    except Exception:
        return None
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def values(ds: Dataset, keyword: str) -> tuple[str, ...]:
    raw = text(ds, keyword)
    return tuple(v.strip().upper() for v in raw.split("\\") if v.strip()) if raw else ()


def number(ds: Dataset, keyword: str) -> int | None:
    raw = text(ds, keyword)
    try:
        return int(float(raw)) if raw else None
    except ValueError:
        return None


def identifier(level: str, **keys: Any) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    ds.SpecificCharacterSet = ""
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds
