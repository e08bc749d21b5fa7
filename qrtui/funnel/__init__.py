"""The query funnel: study, series and image C-FIND, then the selection rules -> a plan.

It reports progress as events (qrtui.events) for the TUI and the scripted mode alike.

Study level in studies.py, series and image level in series.py, the rules applied here
(qrtui.selection decides); base.py has the plumbing, counts.py the counters. A part: it may
import transport (qrtui.dicom.find), keeping and meaning, never the worker or a face.
"""

from __future__ import annotations

from collections.abc import Callable

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
    StudyPlan,
    decide,
    study_group,
    without_held,
    without_inspected,
)

# Handed the plans of the studies decided first (Funnel.run's `head`).
OnHead = Callable[[list[StudyPlan]], None]


class Funnel(StudyQueries, SeriesQueries):
    """The whole funnel: study, series and image queries, then the rules -> a plan."""

    def run(self, head: int = 0, on_head: OnHead | None = None) -> FunnelResult:
        """With `on_head`, the first `head` studies found are decided first, and their plans
        handed to it before the rest is asked: a long window's first objects can be fetched
        while most of its studies are still to be decided."""
        studies = self._study_level()
        self._recheck_round_answers()
        studies = self._study_filters(studies)
        if on_head is not None and 0 < head < len(studies):
            # progress counts the window's studies across both parts, not each part anew
            self.stage_parts["series query"] = (0, len(studies))
            self._decide(studies[:head])
            self.stage_parts["series query"] = (head, len(studies))
            on_head(list(self.result.plans))
            studies = studies[head:]
        self._decide(studies)
        return self.result

    def _decide(self, studies: list[Study]) -> None:
        studies = self._series_level(studies)
        studies = self._image_level(studies)
        self._select(studies)

    def _select(self, studies: list[Study]) -> None:
        options = Options(toshiba=self.params.toshiba, emptysr=self.params.emptysr)
        for counter in (NO_DOSE, HELD, INSTANCES_HELD):  # added to by each part decided
            self.counts.setdefault(counter, 0)
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
    "FunnelResult", "Holdings", "OnHead", "query_modalities",
]  # fmt: skip
