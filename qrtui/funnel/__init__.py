"""The query funnel: study, series and image C-FIND, then the selection rules -> a plan.

It reports progress as events (qrtui.events) for the TUI and the scripted mode alike.

Study level in studies.py, series and image level in series.py, the rules applied here
(qrtui.selection decides); base.py has the plumbing, counts.py the counters. A part: it may
import transport (qrtui.dicom.find), keeping and meaning, never the worker or a face.
"""

from __future__ import annotations

from qrtui.funnel.base import Finder, FunnelBase, FunnelResult, Holdings, _listed, query_modalities
from qrtui.funnel.counts import (
    HELD,
    IMAGE_QUERIES,
    INSTANCES_HELD,
    NO_DOSE,
    SERIES_QUERIES,
    TO_RETRIEVE,
    UNDECIDED,
)
from qrtui.funnel.series import SeriesQueries
from qrtui.funnel.studies import StudyQueries
from qrtui.selection import (
    Decision,
    Options,
    Study,
    decide,
    study_group,
    without_held,
    without_inspected,
)


class Funnel(StudyQueries, SeriesQueries):
    """The whole funnel: study, series and image queries, then the rules -> a plan."""

    def run(self) -> FunnelResult:
        studies = self._study_level()
        self._recheck_round_answers()
        studies = self._study_filters(studies)
        studies = self._series_level(studies)
        studies = self._image_level(studies)
        self._select(studies)
        return self.result

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


__all__ = [
    "IMAGE_QUERIES", "INSTANCES_HELD", "SERIES_QUERIES", "Finder", "Funnel", "FunnelBase",
    "FunnelResult", "Holdings", "query_modalities",
]  # fmt: skip
