"""The query funnel: study, series and image C-FIND, then the selection rules -> a plan.

It reports progress as events (qrtui.events) for the TUI and the scripted mode alike.
"""

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
from qrtui.learned import Findings
from qrtui.query import QueryParams
from qrtui.selection import (
    GROUP_MODALITIES,
    GROUP_ORDER,
    SR_ONLY,
    Decision,
    Instance,
    Known,
    Options,
    Pick,
    Series,
    SRKind,
    Study,
    StudyPlan,
    decide,
    dose_classes_possible,
    forced_plan,
    is_dose_info,
    passes_terms,
    sr_all_rdsr,
    study_group,
    with_known,
    without_held,
    without_inspected,
)
from qrtui.windows import (
    in_date_range,
    in_time_range,
    one_day,
    split_range,
    window_days,
    window_text,
)

# Studies owed by earlier runs are asked by UID this many at a time.
OWED_PER_QUERY = 50
# Study queries a run may spend on splitting cut-short answers: per day of the window, and at
# least. A PACS that fails every query must not be asked tens of thousands of times.
SPLIT_QUERIES_PER_DAY = 50
SPLIT_QUERIES_AT_LEAST = 200
SERIES_PER_QUERY = 40  # studies whose series one query asks for (below 2: one each)

# Stage counters, in the order the funnel passes them.
STUDY_RESPONSES = "study responses"
DUPLICATES = "duplicate responses merged"
NOT_ASKED = "removed: modality not asked"
BY_DESCRIPTION = "removed: study description"
BY_STATION = "removed: station name"
SERIES_QUERIES = "series queries"
IMAGE_QUERIES = "image queries"
NO_DOSE = "removed: no dose object"
HELD = "removed: already held"
INSTANCES_HELD = "instances skipped: already held"
UNDECODABLE = "undecodable responses skipped"
INCOMPLETE = "queries possibly incomplete"
SPLIT = "study queries split (truncated answers)"
NO_DOSE_CLASS = "removed: no dose object class (SOPClassesInStudy)"
EXCLUDED = "removed: excluded by the user"
OWED = "owed studies asked again"
OUTSIDE_WINDOW = "removed: answers outside the asked dates or times"
FOREIGN = "answers for another study or series dropped"
TO_RETRIEVE = "studies to retrieve"
UNDECIDED = "studies undecided (inspect first)"


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


class Funnel:
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
        self._round_accepted: list[tuple[str, str, int]] = []  # unsplittable, taken as whole
        self.today = today or clock.today()
        self.split_budget = max(
            SPLIT_QUERIES_AT_LEAST, SPLIT_QUERIES_PER_DAY * window_days(params, self.today)
        )
        self._budget_told = False
        self.also_studies = also_studies  # owed by earlier runs: asked whatever their date
        self.result = FunnelResult()
        self.counts = self.result.counts
        for key in (STUDY_RESPONSES, DUPLICATES, NOT_ASKED, BY_DESCRIPTION, BY_STATION):
            self.counts[key] = 0

    # ------------------------------------------------------------ plumbing

    def _find(self, ds: Dataset, what: str) -> list[Dataset]:
        return self._matches(self.finder.find(ds), what)

    def _matches(self, outcome: FindOutcome, what: str) -> list[Dataset]:
        self._undecodable(outcome, what)
        if not outcome.complete:
            self._incomplete(f"{what}: {outcome.problem()}")
        return outcome.matches

    def _find_studies(
        self, keys: dict[str, str], what: str, *, split: bool = False, again: bool = False
    ) -> list[Dataset]:
        """A study query, asked again in halves of the date range, then of the time window,
        where the answer is cut short. Cut short means evidence: a status other than success
        after some matches, or as many matches as the node's known cap. A round number of
        matches is only a reason to look closer: halves that together hold more studies
        prove a cap, and halves that hold the same studies prove the answer whole. A failure
        with no match at all is no truncation: only the days are split, and a one-day query
        failing twice is the PACS failing. Splitting spends a budget per run."""
        if split and not self._spend(what):
            return []
        outcome = self.finder.find(identifier("STUDY", **keys))
        self._undecodable(outcome, what)
        matches = self._in_window(outcome.matches, keys)
        found = len(outcome.matches)
        window = window_text(keys["StudyDate"], keys["StudyTime"])
        if not outcome.complete and not found:
            return self._failed_without_matches(keys, what, window, outcome, again)
        if not outcome.complete:
            self._cut_short(found)
        else:
            self._check_learned_cap(found, what, window)
        evidence = self._truncation(outcome)
        round_number = not evidence and found >= 100 and found % 100 == 0
        if not (evidence or round_number):
            return matches
        halves = split_range(keys["StudyDate"], keys["StudyTime"], self.today)
        if halves is None or self._budget_spent():
            if evidence:
                why = "this window cannot be split further"
                if halves is not None:
                    why = "the run's split budget is spent"
                self._incomplete(f"{what}, {window}: {found} matches, {evidence}, and {why}")
                return matches
            return self._look_closer(keys, matches, what, window)
        self._count(SPLIT)
        whole = {_study_uid(m): m for m in matches}
        merged: dict[str, Dataset] = {}
        for date_key, time_key in halves:
            part = {**keys, "StudyDate": date_key, "StudyTime": time_key}
            merged.update((_study_uid(m), m) for m in self._find_studies(part, what, split=True))
        beyond = merged.keys() - whole.keys()
        if beyond and round_number:
            self._learn_cap(found)
            self._notice(
                f"{what}, {window}: {self.node.name} stopped at {found} matches; its halves "
                f"found {len(beyond)} more (remembered as the node's cap)"
            )
        missed = whole.keys() - merged.keys()
        if missed and not self._budget_spent():
            self._incomplete(
                f"{what}, {window}: the split windows missed {len(missed)} of the {found} "
                "studies of the whole answer"
            )
        return list({**whole, **merged}.values())

    def _failed_without_matches(
        self, keys: dict[str, str], what: str, window: str, outcome: FindOutcome, again: bool
    ) -> list[Dataset]:
        """Some PACS refuse a query whose answer would be too large: its days are asked
        apart. A single day is asked once more; failing again, it is reported, not split."""
        halves = split_range(keys["StudyDate"], "", self.today)
        if one_day(keys["StudyDate"]) or halves is None:
            if again:
                self._incomplete(f"{what}, {window}: failed twice ({outcome.problem()})")
                return []
            return self._find_studies(keys, what, split=True, again=True)
        if self._budget_spent():
            self._incomplete(f"{what}, {window}: {outcome.problem()}")
            return []
        self._count(SPLIT)
        merged: dict[str, Dataset] = {}
        for date_key, _ in halves:
            part = {**keys, "StudyDate": date_key}
            merged.update((_study_uid(m), m) for m in self._find_studies(part, what, split=True))
        return list(merged.values())

    def _spend(self, what: str) -> bool:
        """One study query of the split budget; False, said once, when none is left."""
        if self.split_budget > 0:
            self.split_budget -= 1
            return True
        if not self._budget_told:
            self._budget_told = True
            self._incomplete(
                f"{what}: the split budget is spent ({SPLIT_QUERIES_PER_DAY} study queries a "
                f"day of the window, at least {SPLIT_QUERIES_AT_LEAST}); stopped splitting"
            )
        return False

    def _budget_spent(self) -> bool:
        return self.split_budget <= 0

    def _in_window(self, matches: list[Dataset], keys: dict[str, str]) -> list[Dataset]:
        """Answers whose date or time lies outside what was asked are not trusted: a PACS
        that ignores the range must not fill the store with other months."""
        kept = [
            m
            for m in matches
            if in_date_range(text(m, "StudyDate") or "", keys.get("StudyDate", ""))
            and in_time_range(text(m, "StudyTime") or "", keys.get("StudyTime", ""))
        ]
        if len(kept) < len(matches):
            outside = len(matches) - len(kept)
            self._count(OUTSIDE_WINDOW, outside)
            window = window_text(keys.get("StudyDate", ""), keys.get("StudyTime", ""))
            self._notice(f"{self.node.name} answered {outside} studies outside {window}: dropped")
        return kept

    def _cut_short(self, found: int) -> None:
        """A failure after `found` matches: a cap only when the same count is cut twice."""
        self._cut_at[found] = self._cut_at.get(found, 0) + 1
        if self._cut_at[found] >= 2:
            self._learn_cap(found)

    def _check_learned_cap(self, found: int, what: str, window: str) -> None:
        """A complete answer larger than the learned cap proves it wrong: forgotten."""
        learned = self.learned_cap
        if self.node.result_cap is not None or learned is None or found <= learned:
            return
        self.learned_cap = None
        self.cap_forgotten = True
        self._notice(
            f"{what}, {window}: {self.node.name} answered {found} studies in full, more than "
            f"the cap learned before ({learned}): that cap is forgotten"
        )

    def _truncation(self, outcome: FindOutcome) -> str:
        """Why this study answer is known to be cut short, or ''."""
        if not outcome.complete:
            return outcome.problem()
        cap = self.cap
        if cap is not None and len(outcome.matches) >= cap:
            return f"as many as {self.node.name} returns at most ({cap})"
        return ""

    @property
    def cap(self) -> int | None:
        """The most study matches the node returns: as configured, else as learned."""
        return self.node.result_cap or self.learned_cap

    def _learn_cap(self, found: int) -> None:
        self.learned_cap = min(found, self.learned_cap or found)
        self.cap_forgotten = False

    def _look_closer(
        self, keys: dict[str, str], matches: list[Dataset], what: str, window: str
    ) -> list[Dataset]:
        """A round number in a window that cannot be split: ask again with only the matching
        keys. The same studies, with success, is no sign of a cap. More studies are a cap on
        the size of the answer: fetch them by UID."""
        if not self._spend(what):
            return matches
        narrow = {k: v for k, v in keys.items() if v} | {"StudyInstanceUID": ""}
        outcome = self.finder.find(identifier("STUDY", **narrow))
        self._undecodable(outcome, what)
        found = len(matches)
        whole = {_study_uid(m): m for m in matches}
        more = [u for u in (_study_uid(m) for m in outcome.matches) if u and u not in whole]
        evidence = self._truncation(outcome)
        if not more and not evidence:
            self._notice(
                f"{what}, {window}: {found} matches, a round number; asked again with fewer "
                "return keys, the same answer: no sign of a cap"
            )
            self._round_accepted.append((what, window, found))
            return matches
        found_more: list[Dataset] = []
        if more:
            by_uid = {**keys, "StudyInstanceUID": "\\".join(more)}
            extra = self.finder.find(identifier("STUDY", **by_uid))
            self._undecodable(extra, what)
            found_more = self._in_window(extra.matches, keys)
            evidence = evidence or self._truncation(extra)
            if len(found_more) < len(more):
                evidence = evidence or f"{len(more) - len(found_more)} could not be fetched by UID"
        if evidence:
            self._incomplete(
                f"{what}, {window}: {found} matches, and asked with fewer return keys "
                f"{len(outcome.matches)}: {evidence}; this window cannot be split further"
            )
        return matches + found_more

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

    def _recheck_round_answers(self) -> None:
        """An unsplittable round answer taken as whole before the run learned a cap of that
        size (in a wider window, later) is, after all, as many as the node returns."""
        cap = self.cap
        for what, window, found in self._round_accepted:
            if cap is not None and found >= cap:
                self._incomplete(
                    f"{what}, {window}: {found} matches, as many as {self.node.name} returns "
                    f"at most ({cap}), and this window cannot be split further"
                )

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
        self.emit(FunnelProgress(stage, done, total, dict(self.counts)))

    def _drop(self, study: Study, counter: str, reason: str) -> None:
        self._count(counter)
        self.result.dropped.append((study, reason))

    # ------------------------------------------------------------ stages

    def run(self) -> FunnelResult:
        studies = self._study_level()
        self._recheck_round_answers()
        studies = self._study_filters(studies)
        studies = self._series_level(studies)
        studies = self._image_level(studies)
        self._select(studies)
        return self.result

    def _study_level(self) -> list[Study]:
        params, node = self.params, self.node
        by_uid: dict[str, Study] = {}
        if params.only_studies:  # a re-run of chosen studies: asked by UID alone
            self._progress("study query", 0, 1)
            found = self._studies_by_uid(list(dict.fromkeys(params.only_studies)), by_uid)
            self.counts[STUDY_RESPONSES] += len(found)
            missing = len(set(params.only_studies) - found)
            if missing:
                self._notice(f"{missing} of the studies asked for are not on {node.name}")
            self._progress("study query", 1, 1)
            self.result.modalities_in_study_ignored = not any(s.modalities for s in by_uid.values())
            return list(by_uid.values())
        asked = query_modalities(params.groups)
        ignored = False
        known_to_ignore = (
            self.knowledge.modalities_in_study_matched is False and not node.use_modality_tag
        )
        if known_to_ignore:  # one query: the node would answer every one with every study
            asked = [""]
            self.result.modalities_in_study_ignored = True
            self._notice(
                f"{node.name} is known to ignore ModalitiesInStudy: one study query; "
                "modalities are learned from the series"
            )
        for index, modality in enumerate(asked):
            self._progress("study query", index, len(asked))
            keys = {
                "StudyInstanceUID": "",
                "StudyDate": params.study_date_key(),
                "StudyTime": params.study_time_key(),
                "StudyDescription": "",
                "ModalitiesInStudy": "",
                "StationName": "",
                "NumberOfStudyRelatedSeries": "",
            }
            # where the node answers it, a study whose SR objects are all RDSRs needs no
            # image-level query (see _sr_known_from_classes); others ignore the key
            keys["SOPClassesInStudy"] = ""
            if known_to_ignore:
                pass
            elif node.use_modality_tag:
                keys["Modality"] = modality
            else:
                keys["ModalitiesInStudy"] = modality
            matches = self._find_studies(keys, f"study query {modality}")
            self.counts[STUDY_RESPONSES] += len(matches)
            for match in matches:
                uid = text(match, "StudyInstanceUID")
                if not uid:
                    self._count(UNDECODABLE)
                    continue
                modalities = values(match, "ModalitiesInStudy")
                if modality and not node.use_modality_tag and modality not in modalities:
                    ignored = True
                if uid in by_uid:
                    self.counts[DUPLICATES] += 1
                    known = by_uid[uid]
                    merged = tuple(dict.fromkeys(known.modalities + modalities))
                    by_uid[uid] = replace(known, modalities=merged)
                    continue
                by_uid[uid] = _study(match, uid)
            if ignored:
                self.result.modalities_in_study_ignored = True
                self._notice(
                    f"{node.name} ignores ModalitiesInStudy: one query returned every study "
                    "in the range; modalities are learned from the series"
                )
                break
        if node.use_modality_tag and not by_uid:
            self._notice(
                f"{node.name}: no study matched Modality at study level; if the node "
                "supports ModalitiesInStudy, set use_modality_tag = false"
            )
        self._owed_studies(by_uid)
        self._progress("study query", len(asked), len(asked))
        return list(by_uid.values())

    def _owed_studies(self, by_uid: dict[str, Study]) -> None:
        """Studies an earlier run did not bring in whole: asked by UID, whatever their date."""
        wanted = [uid for uid in self.also_studies if uid not in by_uid]
        if not wanted:
            return
        found = self._studies_by_uid(wanted, by_uid)
        self._count(OWED, len(found))
        self.result.owed_gone = [uid for uid in wanted if uid not in found]
        if self.result.owed_gone:
            self._notice(
                f"{len(self.result.owed_gone)} studies owed by earlier runs are no longer on "
                f"{self.node.name}: forgotten"
            )

    def _studies_by_uid(self, wanted: list[str], by_uid: dict[str, Study]) -> set[str]:
        """Study queries by UID list, OWED_PER_QUERY at a time; the UIDs found."""
        found: set[str] = set()
        for start in range(0, len(wanted), OWED_PER_QUERY):
            chunk = wanted[start : start + OWED_PER_QUERY]
            keys = {
                "StudyInstanceUID": "\\".join(chunk),
                "StudyDate": "",
                "StudyTime": "",
                "StudyDescription": "",
                "ModalitiesInStudy": "",
                "StationName": "",
                "NumberOfStudyRelatedSeries": "",
            }
            keys["SOPClassesInStudy"] = ""
            outcome = self.finder.find(identifier("STUDY", **keys))
            for match in self._matches(outcome, "study query by UID"):
                uid = text(match, "StudyInstanceUID") or ""
                if uid in chunk and uid not in by_uid:
                    by_uid[uid] = _study(match, uid)
                    found.add(uid)
        return found

    def _in_group(self, modalities: tuple[str, ...]) -> bool:
        return study_group(modalities, self.params.groups) is not None

    def _study_filters(self, studies: list[Study]) -> list[Study]:
        params = self.params
        kept = []
        excluded = set(params.exclude_studies)
        for study in studies:
            if study.study_instance_uid in excluded:
                self._drop(study, EXCLUDED, "excluded by the user")
            elif study.modalities and not self._in_group(study.modalities):
                mods = "\\".join(study.modalities)
                self._drop(study, NOT_ASKED, f"modalities {mods} not asked")
            elif not passes_terms(study.description, params.desc_include, params.desc_exclude):
                self._drop(study, BY_DESCRIPTION, "study description excluded by the terms")
            elif (  # a wrong answer here would miss a study: only for a node probed for it
                self.knowledge.sop_classes_in_study
                and study.sop_classes
                and not self._may_hold_dose(study)
            ):
                self._drop(study, NO_DOSE_CLASS, "no RDSR or Enhanced SR class in the study")
            elif study.station_name is not None and not passes_terms(
                study.station_name, params.station_include, params.station_exclude
            ):
                self._drop(study, BY_STATION, "station name excluded by the terms")
            else:
                kept.append(study)
        return kept

    def _may_hold_dose(self, study: Study) -> bool:
        group = study_group(study.modalities, self.params.groups) if study.modalities else None
        return group is None or dose_classes_possible(study.sop_classes or (), group)

    def _series_level(self, studies: list[Study]) -> list[Study]:
        params = self.params
        self.counts[SERIES_QUERIES] = 0
        series_of = self._series_in_lists(studies)
        alone = [s for s in studies if s.study_instance_uid not in series_of]
        answers = self.finder.find_each([_series_query(s.study_instance_uid) for s in alone])
        for index, (study, outcome) in enumerate(zip(alone, answers, strict=True)):
            self._progress("series query", len(series_of) + index, len(studies))
            matches = self._matches(outcome, "series query")
            self.counts[SERIES_QUERIES] += 1
            matches = self._of_asked(matches, study.study_instance_uid, None, "series query")
            found = (_series(m) for m in matches)
            series_of[study.study_instance_uid] = tuple(s for s in found if s is not None)
        kept = []
        for study in studies:
            series = series_of[study.study_instance_uid]
            study = replace(study, series=series)
            if not study.modalities or self.result.modalities_in_study_ignored:
                learned = tuple(dict.fromkeys(s.modality for s in series if s.modality))
                study = replace(study, modalities=learned or study.modalities)
                if not self._in_group(study.modalities):
                    mods = "\\".join(study.modalities) or "none"
                    self._drop(study, NOT_ASKED, f"series modalities {mods} not asked")
                    continue
            if study.station_name is None and (params.station_include or params.station_exclude):
                stations = [s.station_name for s in series if s.station_name]
                joined = "\\".join(stations)
                if stations and not passes_terms(
                    joined, params.station_include, params.station_exclude
                ):
                    self._drop(study, BY_STATION, "station name excluded by the terms")
                    continue
            kept.append(study)
        self._progress("series query", len(studies), len(studies))
        return kept

    def _series_in_lists(self, studies: list[Study]) -> dict[str, tuple[Series, ...]]:
        """The series of many studies at once: a series query per SERIES_PER_QUERY studies,
        matching a list of their UIDs. A study's series are taken from it only when they
        are exactly as many as its study answer counted (NumberOfStudyRelatedSeries), each
        answered once; every other study, and every study of a list not answered whole, is
        asked alone. So this never loses a series, and never calls a run incomplete."""
        counted = [s for s in studies if s.series_count]
        if SERIES_PER_QUERY < 2 or len(counted) < 2:
            return {}
        lists = [
            counted[i : i + SERIES_PER_QUERY] for i in range(0, len(counted), SERIES_PER_QUERY)
        ]
        queries = [_series_query("\\".join(s.study_instance_uid for s in part)) for part in lists]
        # a node that ignored the list would answer with its whole archive: stop past this
        limit = max(sum(s.series_count or 0 for s in part) for part in lists)
        self._progress("series query", 0, len(studies))
        found: dict[str, tuple[Series, ...]] = {}
        for part, outcome in zip(lists, self.finder.find_each(queries, limit), strict=True):
            self.counts[SERIES_QUERIES] += 1
            if not outcome.complete or outcome.undecodable:
                continue
            answered: dict[str, list[Series]] = {s.study_instance_uid: [] for s in part}
            for match in outcome.matches:
                series = _series(match)
                listed = answered.get(_study_uid(match))
                if series is not None and listed is not None:
                    listed.append(series)
            for study in part:
                series_list = answered[study.study_instance_uid]
                unique = {s.series_instance_uid for s in series_list}
                if len(series_list) == len(unique) == study.series_count:
                    found[study.study_instance_uid] = tuple(series_list)
        return found

    def _wants_instances(self, study: Study, first_pass: bool) -> set[str]:
        """Series whose instance list could change this study's plan."""
        if not first_pass:
            # CT without a known dose SR: the Toshiba rule and Dose Info probing need images.
            group = study_group(study.modalities, self.params.groups)
            has_dose_sr = any(
                s.instances_of(SRKind.RDSR) or s.instances_of(SRKind.ESR) or s.known_kind
                for s in study.series
                if s.is_sr
            )
            needs = self.params.toshiba or any(
                s.description is None for s in study.series if not s.is_sr
            )
            if group != "CT" or has_dose_sr or not needs:
                return set()
            return {
                s.series_instance_uid for s in study.series if not s.is_sr and s.instances is None
            }
        # SR series, and series the PACS gave no modality for: their classes may say SR.
        wanted = {s.series_instance_uid for s in study.series if s.is_sr or not s.modality}
        if self._sr_known_from_classes(study):
            wanted = {s.series_instance_uid for s in study.series if not s.modality}
        if (
            self.holdings
            and self.params.ignore_held
            and self.holdings.held(study.study_instance_uid)
        ):
            wanted |= {
                s.series_instance_uid
                for s in study.series
                if s.modality in ("MG", "DX", "CR") or is_dose_info(s)
            }
        return wanted

    def _sr_known_from_classes(self, study: Study) -> bool:
        """Every SR object of the study is an RDSR (SOPClassesInStudy), and the store holds
        none of it: its SR series are fetched whole, without an image-level query."""
        if not study.sop_classes or not sr_all_rdsr(study.sop_classes):
            return False
        return not (self.holdings and self.holdings.held(study.study_instance_uid))

    def _image_level(self, studies: list[Study]) -> list[Study]:
        studies = [
            replace(
                study,
                series=tuple(
                    replace(s, known_kind=SRKind.RDSR) if s.modality == "SR" else s
                    for s in study.series
                ),
            )
            if self._sr_known_from_classes(study)
            else study
            for study in studies
        ]
        self.counts[IMAGE_QUERIES] = 0
        for first_pass in (True, False):
            todo = [(study, self._wants_instances(study, first_pass)) for study in studies]
            asked = [
                (study, series)
                for study, wanted in todo
                for series in study.series
                if series.series_instance_uid in wanted
            ]
            queries = [
                identifier(
                    "IMAGE",
                    StudyInstanceUID=study.study_instance_uid,
                    SeriesInstanceUID=series.series_instance_uid,
                    SOPInstanceUID="",
                    SOPClassUID="",
                    InstanceNumber="",
                )
                for study, series in asked
            ]
            listed: dict[str, Series] = {}
            self._progress("image query", 0, len(asked))
            answers = self.finder.find_each(queries)
            for done, ((study, series), outcome) in enumerate(zip(asked, answers, strict=True)):
                self._progress("image query", done, len(asked))
                matches = self._matches(outcome, "image query")
                self.counts[IMAGE_QUERIES] += 1
                matches = self._of_asked(
                    matches, study.study_instance_uid, series.series_instance_uid, "image query"
                )
                instances = tuple(i for i in (_instance(m) for m in matches) if i)
                listed[series.series_instance_uid] = replace(series, instances=instances)
            self._progress("image query", len(asked), len(asked))
            studies = [
                self._with_known(
                    replace(
                        study,
                        series=tuple(listed.get(s.series_instance_uid, s) for s in study.series),
                    )
                )
                for study in studies
            ]
        return studies

    def _with_known(self, study: Study) -> Study:
        """What the store learned of the study's instances before (classes, titles)."""
        if not self.holdings:
            return study
        return with_known(study, self.holdings.known(study.study_instance_uid))

    def _select(self, studies: list[Study]) -> None:
        options = Options(toshiba=self.params.toshiba, emptysr=self.params.emptysr)
        self.counts[NO_DOSE] = 0
        self.counts[HELD] = 0
        self.counts[INSTANCES_HELD] = 0
        for study in studies:
            group = study_group(study.modalities, self.params.groups)
            assert group is not None
            plan = decide(study, group, options)
            if self.holdings and self.params.ignore_held and plan.decision is not Decision.DROP:
                held = self.holdings.held(study.study_instance_uid)
                before = _listed(plan)
                plan = without_held(plan, held)
                self._count(INSTANCES_HELD, len(before - _listed(plan)))
                inspected = self.holdings.inspected(study.study_instance_uid)
                plan = without_inspected(plan, inspected, bool(held))
                if plan.decision is Decision.DROP:
                    self._drop(study, HELD, plan.reason)
                    continue
            if plan.decision is Decision.DROP:
                self._drop(study, NO_DOSE, plan.reason)
                continue
            self.result.plans.append(plan)
        self.counts[TO_RETRIEVE] = sum(p.decision is Decision.RETRIEVE for p in self.result.plans)
        self.counts[UNDECIDED] = sum(p.decision is Decision.UNDECIDED for p in self.result.plans)
        self._progress("selection", 1, 1)


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
