"""Study Root C-FIND on one association at a time, tolerant of what PACS send back."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pynetdicom.association import Association
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
)

from qrtui.config import RemoteNode
from qrtui.dicom.assoc import associate, associate_patiently, make_ae
from qrtui.dicom.pool import SessionPool
from qrtui.dicom.pynetdicom_reading import find_responses, find_syntax
from qrtui.dicom.session import Cancelled, Lost, Session, SessionFailed
from qrtui.politeness import before_request


class FindFailed(SessionFailed):
    """The association failed during a query; worded for the user."""


CANCELLED_BY_US = 0xFE00  # Cancel: the answer outgrew what was asked for


@dataclass
class FindOutcome:
    matches: list[Dataset] = field(default_factory=list)
    status: int = 0
    undecodable: int = 0
    raw: list[bytes] = field(default_factory=list)  # RawFindSession's answers, undecoded
    syntax: str = ""  # ...and their transfer syntax

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


class FindSession(Session):
    """Sequential C-FINDs on one association, re-opened once if the peer dropped it."""

    failure = FindFailed
    raw = False  # answers kept as received (a helper process's, for its parent to decode)

    def __init__(
        self,
        calling_aet: str,
        node: RemoteNode,
        cancel: threading.Event | None = None,
        *,
        patient: bool = True,
    ) -> None:
        super().__init__(calling_aet, node, cancel)
        self.requests = 0
        self.answers = 0  # Pending answers received, on every request
        self.patient = patient  # asks again after a transient rejection

    def _associate(self) -> Association:
        ae = make_ae(self.calling_aet, self.peer)
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        connect = associate_patiently if self.patient else associate
        return connect(ae, self.peer)

    def find(self, identifier: Dataset, limit: int | None = None) -> FindOutcome:
        """Past `limit` matches the request is abandoned (the association aborted, status
        CANCELLED_BY_US): for a question whose answer has a known size."""
        return self._reopening(lambda: self._find_once(identifier, limit))

    def find_each(
        self, identifiers: Sequence[Dataset], limit: int | None = None
    ) -> Iterator[FindOutcome]:
        return (self.find(i, limit) for i in identifiers)

    def _find_once(self, identifier: Dataset, limit: int | None = None) -> FindOutcome:
        before_request(self.node, self.cancel)  # the node's rate, if it sets one
        if self.cancel.is_set():
            raise Cancelled
        assoc = self._open()
        self.requests += 1
        outcome = FindOutcome()
        model = StudyRootQueryRetrieveInformationModelFind
        if self.raw:
            outcome.syntax = str(find_syntax(assoc, model))
        for code, match in find_responses(assoc, identifier, model, self.raw):
            if self.cancel.is_set():
                assoc.abort()
                self._assoc = None
                raise Cancelled
            if code is None:
                raise Lost("the association was lost or timed out during C-FIND")
            if code in (0xFF00, 0xFF01):
                self.answers += 1
                if match is None:
                    outcome.undecodable += 1
                elif isinstance(match, bytes):
                    outcome.raw.append(match)
                else:
                    outcome.matches.append(match)
                if limit is not None and len(outcome.matches) + len(outcome.raw) > limit:
                    assoc.abort()
                    self._assoc = None
                    outcome.status = CANCELLED_BY_US
                    return outcome
                continue
            outcome.status = code
            if code == 0xB001:  # the response limit: a PACS may still send more, or not
                assoc.abort()  # what may follow must not be read as the next answer
                self._assoc = None
            return outcome
        assoc.abort()  # not reached: find_responses ends with a final status or None
        self._assoc = None
        raise Lost("the association ended without a final C-FIND status")


class PooledFinder:
    """C-FINDs spread over up to `node.max_associations` sessions; answers in request order."""

    def __init__(self, first: FindSession, extra: Callable[[], FindSession] | None = None) -> None:
        """`extra`: the pool's next session, where it is not one more of this process's."""

        def make() -> FindSession:  # one more, if the node takes it now
            if extra is not None:
                return extra()
            return FindSession(first.calling_aet, first.node, first.cancel, patient=False)

        self.pool = SessionPool(first, make, first.node.max_associations)

    @property
    def requests(self) -> int:
        """C-FIND requests sent so far, on every association of the pool."""
        return sum(session.requests for session in self.pool.sessions)

    def find(self, identifier: Dataset) -> FindOutcome:
        return self.pool.run(FindSession.find, identifier)

    def find_each(
        self, identifiers: Sequence[Dataset], limit: int | None = None
    ) -> Iterator[FindOutcome]:
        return self.pool.map(lambda session, ds: session.find(ds, limit), identifiers)

    def close(self, interrupted: bool = False) -> None:
        self.pool.close(interrupted)


def text(ds: Dataset, keyword: str) -> str | None:
    """A value as text, or None when absent; malformed values never raise."""
    quick = _plain_text(ds, keyword)
    if quick is not None:
        return quick
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


# Most answers hold single ASCII values not yet decoded: read their bytes directly, which
# costs a tenth of pydicom's conversion (the funnel reads thousands). The rest goes to pydicom.
_PLAIN_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "IS", "LO", "SH", "TM", "UI"})
_CODES = frozenset({"CS", "UI"})


@functools.lru_cache(maxsize=256)
def _tag_and_vr(keyword: str) -> tuple[int, str] | None:
    tag = tag_for_keyword(keyword)
    if tag is None:
        return None
    try:
        return tag, dictionary_VR(tag)
    except KeyError:
        return None


def _plain_text(ds: Dataset, keyword: str) -> str | None:
    known = _tag_and_vr(keyword)
    if known is None:
        return None
    tag, vr = known
    try:
        element = ds.get_item(tag)
    except Exception:
        return None
    if element is None or not element.is_raw:
        return None
    vr = element.VR or vr
    if vr not in _PLAIN_VRS:
        return None
    raw = element.value
    if not isinstance(raw, bytes) or not raw.isascii() or b"\x1b" in raw:
        return None
    plain = raw.decode("ascii")
    if "\\" in plain:  # several values: pydicom strips the padding at the end only
        plain = plain.rstrip(" \x00")
        return plain if vr in _CODES and "\x00" not in plain else None
    plain = plain.strip(" \x00").strip()
    if vr == "IS" and not plain.isdigit():
        return None
    return plain


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
