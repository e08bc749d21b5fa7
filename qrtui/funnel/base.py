"""The funnel's plumbing: what it asks through (Finder), what the store holds (Holdings),
what it produces (FunnelResult), counting, notices, and reading answers into studies,
series and instances."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Protocol

from pydicom.dataset import Dataset

from qrtui import clock
from qrtui.config import RemoteNode
from qrtui.dicom.find import FindOutcome, identifier, number, text, values
from qrtui.events import Emit, FunnelProgress, Notice
from qrtui.funnel import counts
from qrtui.funnel.counts import (
    BY_DESCRIPTION,
    BY_STATION,
    DUPLICATES,
    EXCLUDED,
    FOREIGN,
    INCOMPLETE,
    NOT_ASKED,
    STUDY_RESPONSES,
    TO_RETRIEVE,
    UNDECIDED,
    UNDECODABLE,
)
from qrtui.learned import Findings
from qrtui.query import QueryParams
from qrtui.selection import (
    GROUP_MODALITIES,
    GROUP_ORDER,
    SR_ONLY,
    Decision,
    Instance,
    Known,
    Pick,
    Series,
    Study,
    StudyPlan,
    forced_plan,
    study_group,
)
from qrtui.windows import (
    window_days,
)


class Finder(Protocol):
    def find(self, identifier: Dataset) -> FindOutcome: ...

    def find_each(
        self, identifiers: Sequence[Dataset], limit: int | None = None
    ) -> Iterator[FindOutcome]:
        """Answers in request order; they may be asked in parallel. Past `limit` matches a
        request is abandoned, as not complete."""
        ...


class Holdings(Protocol):
    """What the store already has (qrtui.store.Store)."""

    def held(self, study_uid: str) -> frozenset[str]: ...

    def known(self, study_uid: str) -> Mapping[str, Known]: ...

    def inspected(self, study_uid: str) -> frozenset[str]: ...


@dataclass
class FunnelResult:
    plans: list[StudyPlan] = field(default_factory=list)
    dropped: list[tuple[Study, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # answers known to be cut short
    owed_gone: list[str] = field(default_factory=list)  # owed studies the PACS no longer has
    find_requests: int = 0  # C-FIND requests the funnel sent
    find_requests_by_helpers: int = 0  # ...of which a helper process sent (qrtui/helpers.py)
    passed_on: int = 0  # plans to fetch handed to the face window by window, then let go
    modalities_in_study_ignored: bool = False

    @property
    def to_fetch(self) -> list[StudyPlan]:
        return [p for p in self.plans if p.decision is not Decision.DROP]

    def chosen(self, excluded: set[str], forced: set[str]) -> FunnelResult:
        """The plan as the user chose it: studies excluded, dropped ones forced in."""
        plans = [p for p in self.plans if p.study.study_instance_uid not in excluded]
        dropped = [
            (p.study, "excluded by the user")
            for p in self.plans
            if p.study.study_instance_uid in excluded
        ]
        for study, reason in self.dropped:
            if study.study_instance_uid in forced:
                group = study_group(study.modalities, GROUP_ORDER) or "-"
                plans.append(forced_plan(study, group, reason))
            else:
                dropped.append((study, reason))
        counts = dict(self.counts)
        counts[TO_RETRIEVE] = sum(p.decision is Decision.RETRIEVE for p in plans)
        counts[UNDECIDED] = sum(p.decision is Decision.UNDECIDED for p in plans)
        if excluded:
            counts[EXCLUDED] = counts.get(EXCLUDED, 0) + len(excluded & {
                p.study.study_instance_uid for p in self.plans
            })  # fmt: skip
        return replace(self, plans=plans, dropped=dropped, counts=counts)

    def per_group(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for plan in self.to_fetch:
            out[plan.group] = out.get(plan.group, 0) + 1
        return out


def query_modalities(groups: tuple[str, ...]) -> list[str]:
    if groups == (SR_ONLY,):
        return ["SR"]
    return [m for g in groups for m in GROUP_MODALITIES[g]]


class FunnelBase:
    def __init__(
        self,
        finder: Finder,
        node: RemoteNode,
        params: QueryParams,
        emit: Emit = lambda event: None,
        holdings: Holdings | None = None,
        knowledge: Findings | None = None,
        today: date | None = None,
        also_studies: tuple[str, ...] = (),
    ) -> None:
        self.finder = finder
        self.node = node
        self.params = params
        self.emit = emit
        self.holdings = holdings
        self.knowledge = knowledge or Findings()  # what a probe or earlier runs learned
        self.learned_cap = self.knowledge.result_cap  # updated when this run meets a cap
        self.cap_forgotten = False  # a complete answer held more than the learned cap
        self._cut_at: dict[int, int] = {}  # answers cut short by a failure, by their size
        # a stage run in parts (Funnel.run's head): (done before this part, whole total)
        self.stage_parts: dict[str, tuple[int, int | None]] = {}
        self._round_accepted: list[tuple[str, str, int]] = []  # unsplittable, taken as whole
        self.today = today or clock.today()
        self.split_budget = max(
            counts.SPLIT_QUERIES_AT_LEAST,
            counts.SPLIT_QUERIES_PER_DAY * window_days(params, self.today),
        )
        self._budget_told = False
        self.also_studies = also_studies  # owed by earlier runs: asked whatever their date
        self.result = FunnelResult()
        self.counts = self.result.counts
        for key in (STUDY_RESPONSES, DUPLICATES, NOT_ASKED, BY_DESCRIPTION, BY_STATION):
            self.counts[key] = 0

    def _find(self, ds: Dataset, what: str) -> list[Dataset]:
        return self._matches(self.finder.find(ds), what)

    def _matches(self, outcome: FindOutcome, what: str) -> list[Dataset]:
        self._undecodable(outcome, what)
        if not outcome.complete:
            self._incomplete(f"{what}: {outcome.problem()}")
        return outcome.matches

    def _undecodable(self, outcome: FindOutcome, what: str) -> None:
        if outcome.undecodable:
            self._count(UNDECODABLE, outcome.undecodable)
            self._notice(f"{what}: {outcome.undecodable} response(s) could not be decoded")

    def _incomplete(self, line: str) -> None:
        self._count(INCOMPLETE)
        self.result.incomplete.append(f"{self.node.name}: {line}")
        self._notice(f"{self.node.name}: {line}; results may be incomplete")

    def _count(self, counter: str, n: int = 1) -> None:
        self.counts[counter] = self.counts.get(counter, 0) + n

    def _notice(self, line: str) -> None:
        self.result.notices.append(line)
        self.emit(Notice(line))

    def _progress(self, stage: str, done: int, total: int | None) -> None:
        before, whole = self.stage_parts.get(stage, (0, None))
        if total is not None:
            total = whole if whole is not None else before + total
        self.emit(FunnelProgress(stage, before + done, total, dict(self.counts)))

    def _drop(self, study: Study, counter: str, reason: str) -> None:
        self._count(counter)
        self.result.dropped.append((study, reason))

    def _of_asked(
        self, matches: list[Dataset], study_uid: str, series_uid: str | None, what: str
    ) -> list[Dataset]:
        """Answers that name another study (or series) than the one asked are dropped: an
        object of another study must never be fetched, or filed, as this one's."""
        kept = [
            m
            for m in matches
            if _study_uid(m) in ("", study_uid)
            and (series_uid is None or text(m, "SeriesInstanceUID") in (None, "", series_uid))
        ]
        if len(kept) < len(matches):
            foreign = len(matches) - len(kept)
            self._count(FOREIGN, foreign)
            self._notice(
                f"{what} for study {study_uid}: {self.node.name} answered {foreign} for another "
                "study or series; dropped"
            )
        return kept

    def _in_group(self, modalities: tuple[str, ...]) -> bool:
        return study_group(modalities, self.params.groups) is not None


def _listed(plan: StudyPlan) -> set[str]:
    """Instance UIDs the plan would fetch, where the PACS listed them."""
    out: set[str] = set()
    picks: tuple[Pick, ...] = plan.picks + plan.probe + plan.fallback
    for pick in picks:
        if pick.sop_instance_uids:
            out.update(pick.sop_instance_uids)
        elif pick.series.instances is not None:
            out.update(i.sop_instance_uid for i in pick.series.instances)
    return out


def _study(match: Dataset, uid: str) -> Study:
    return Study(
        study_instance_uid=uid,
        study_date=text(match, "StudyDate") or "",
        study_time=text(match, "StudyTime") or "",
        description=text(match, "StudyDescription") or "",
        modalities=values(match, "ModalitiesInStudy"),
        station_name=text(match, "StationName") or None,
        sop_classes=tuple(v for v in (text(match, "SOPClassesInStudy") or "").split("\\") if v)
        or None,
        series_count=number(match, "NumberOfStudyRelatedSeries"),
    )


def _series_query(study_uids: str) -> Dataset:
    return identifier(
        "SERIES",
        StudyInstanceUID=study_uids,
        SeriesInstanceUID="",
        Modality="",
        SeriesDescription="",
        SeriesNumber="",
        NumberOfSeriesRelatedInstances="",
        StationName="",
        SeriesTime="",
    )


def _study_uid(ds: Dataset) -> str:
    return text(ds, "StudyInstanceUID") or ""


def _series(ds: Dataset) -> Series | None:
    uid = text(ds, "SeriesInstanceUID")
    if not uid:
        return None
    return Series(
        series_instance_uid=uid,
        modality=(text(ds, "Modality") or "").upper(),
        # None when the PACS left the key out or sent it empty: not told, so inspect
        description=text(ds, "SeriesDescription") or None,
        number=number(ds, "SeriesNumber"),
        instance_count=number(ds, "NumberOfSeriesRelatedInstances"),
        station_name=text(ds, "StationName") or None,
    )


def _instance(ds: Dataset) -> Instance | None:
    uid = text(ds, "SOPInstanceUID")
    if not uid:
        return None
    return Instance(uid, text(ds, "SOPClassUID") or None, number(ds, "InstanceNumber"))
