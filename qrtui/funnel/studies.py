"""Study level: one query per modality, cut-short answers split by date and time within a
budget, caps learned only from evidence that repeats, answers outside the window dropped;
owed studies asked by UID; the study filters."""

from __future__ import annotations

from dataclasses import replace

from pydicom.dataset import Dataset

from qrtui.dicom.find import FindOutcome, identifier, text, values
from qrtui.funnel import counts
from qrtui.funnel.base import FunnelBase, _study, _study_uid, query_modalities
from qrtui.funnel.counts import (
    ASKED_AGAIN,
    BY_DESCRIPTION,
    BY_STATION,
    DUPLICATES,
    EXCLUDED,
    NO_DOSE_CLASS,
    NOT_ASKED,
    OUTSIDE_WINDOW,
    OWED,
    OWED_PER_QUERY,
    SPLIT,
    STUDY_RESPONSES,
    UNDECODABLE,
)
from qrtui.selection import (
    Study,
    dose_classes_possible,
    passes_terms,
    study_group,
)
from qrtui.windows import (
    around_second,
    common_second,
    in_date_range,
    in_time_range,
    one_day,
    split_range,
    window_text,
)


class StudyQueries(FunnelBase):
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
        around = self._around_one_second(keys, matches)
        for date_key, time_key in halves if around is None else around[0]:
            part = {**keys, "StudyDate": date_key, "StudyTime": time_key}
            merged.update((_study_uid(m), m) for m in self._find_studies(part, what, split=True))
        if around is not None:  # the second that holds the whole answer
            part = {**keys, "StudyDate": around[1][0], "StudyTime": around[1][1]}
            if round_number:  # asked whole, it would answer the same: re-ask it narrower
                narrower = self._look_closer(part, matches, what, window_text(*around[1]))
            else:
                narrower = self._find_studies(part, what, split=True)
            merged.update((_study_uid(m), m) for m in narrower)
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

    def _around_one_second(
        self, keys: dict[str, str], matches: list[Dataset]
    ) -> tuple[list[tuple[str, str]], tuple[str, str]] | None:
        """Where every answer lies in one day and second, halving would only narrow down to
        it, a query or two at each of up to 17 levels a day. Instead the window is cut around
        that second: the rest (for studies a cap hid) and the second itself."""
        dates = [text(m, "StudyDate") or "" for m in matches]
        common = common_second(dates, [text(m, "StudyTime") or "" for m in matches])
        if common is None:
            return None
        return around_second(keys["StudyDate"], keys["StudyTime"], *common, self.today)

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
            self._count(ASKED_AGAIN)
            return True
        if not self._budget_told:
            self._budget_told = True
            self._incomplete(
                f"{what}: the split budget is spent ({counts.SPLIT_QUERIES_PER_DAY} study queries "
                f"a day of the window, at least {counts.SPLIT_QUERIES_AT_LEAST}); stopped splitting"
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
            self._count(ASKED_AGAIN)
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
