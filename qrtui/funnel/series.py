"""Series and image level: series asked for many studies at once by a list of their UIDs
(checked study by study against their counts), else alone; image queries where an instance
list could change the plan; answers for another study or series dropped."""

from __future__ import annotations

from dataclasses import replace

from qrtui.dicom.find import identifier
from qrtui.funnel import counts
from qrtui.funnel.base import FunnelBase, _instance, _series, _series_query, _study_uid
from qrtui.funnel.counts import (
    BY_STATION,
    IMAGE_QUERIES,
    NOT_ASKED,
    SERIES_QUERIES,
)
from qrtui.selection import (
    Series,
    SRKind,
    Study,
    is_dose_info,
    passes_terms,
    sr_all_rdsr,
    study_group,
    with_known,
)


class SeriesQueries(FunnelBase):
    def _series_level(self, studies: list[Study]) -> list[Study]:
        params = self.params
        self.counts.setdefault(SERIES_QUERIES, 0)
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
        per_query = counts.SERIES_PER_QUERY  # read here: tests set it to take the long way
        if per_query < 2 or len(counted) < 2:
            return {}
        lists = [counted[i : i + per_query] for i in range(0, len(counted), per_query)]
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
        self.counts.setdefault(IMAGE_QUERIES, 0)
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
            # one stage on screen, never starting over: every image query of the funnel so
            # far (its parts and passes), of those and this pass's; a pass asking none is silent
            base, total = self.counts[IMAGE_QUERIES], self.counts[IMAGE_QUERIES] + len(asked)
            if asked:
                self._progress("image query", base, total)
            answers = self.finder.find_each(queries)
            for done, ((study, series), outcome) in enumerate(zip(asked, answers, strict=True)):
                self._progress("image query", base + done, total)
                matches = self._matches(outcome, "image query")
                self.counts[IMAGE_QUERIES] += 1
                matches = self._of_asked(
                    matches, study.study_instance_uid, series.series_instance_uid, "image query"
                )
                instances = tuple(i for i in (_instance(m) for m in matches) if i)
                listed[series.series_instance_uid] = replace(series, instances=instances)
            if asked:
                self._progress("image query", total, total)
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
