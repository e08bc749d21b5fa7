"""What a run's plan said of each study, as the chain of custody keeps it: UIDs, dates,
descriptions and counts, never patient data."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import Any

from qrtui.funnel import FunnelResult
from qrtui.retrieve import RetrieveSummary
from qrtui.selection import Pick, Study, StudyPlan


def _study(study: Study) -> dict[str, Any]:
    return {
        "study_date": study.study_date,
        "study_time": study.study_time,
        "description": study.description,
        "modalities": list(study.modalities),
        "station": study.station_name,
        "series_listed": [
            {
                "series_uid": s.series_instance_uid,
                "modality": s.modality,
                "description": s.description,
                "instances": s.instance_count,
            }
            for s in study.series
        ],
    }


def _picks(picks: tuple[Pick, ...]) -> list[dict[str, Any]]:
    return [
        {"series_uid": p.series.series_instance_uid,
         "instances": len(p.sop_instance_uids) or "whole series", "why": p.why}
        for p in picks
    ]  # fmt: skip


def _planned(plan: StudyPlan) -> dict[str, Any]:
    return {
        **_study(plan.study),
        "group": plan.group,
        "decision": str(plan.decision),
        "reason": plan.reason,
        "picks": _picks(plan.picks),
        "probe": _picks(plan.probe),
        "fallback": _picks(plan.fallback),
    }


def plan_entries(
    result: FunnelResult | None, summary: RetrieveSummary | None
) -> list[tuple[str, str]]:
    """(study UID, JSON) for every study the run's plan kept or dropped."""
    if result is None:
        return []
    entries = []
    for plan in result.plans:
        entry = _planned(plan)
        outcome = summary.studies.get(plan.study.study_instance_uid) if summary else None
        if outcome is not None:
            entry["outcome"] = outcome.reason()
        entries.append((plan.study.study_instance_uid, json.dumps(entry)))
    for study, reason in result.dropped:
        entry = {**_study(study), "decision": "drop", "reason": reason}
        entries.append((study.study_instance_uid, json.dumps(entry)))
    return entries


class PlanSpool:
    """The custody entries of a run in days, written to a temporary file as each day ends,
    so that its plans can be let go: memory stays flat over any range."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115

    def add(self, result: FunnelResult, summary: RetrieveSummary | None) -> None:
        for uid, entry in plan_entries(result, summary):
            self._file.write(json.dumps([uid, entry]) + "\n")

    def entries(self) -> Iterator[tuple[str, str]]:
        self._file.seek(0)
        for line in self._file:
            uid, entry = json.loads(line)
            yield uid, entry

    def close(self) -> None:
        self._file.close()
