"""The plan as a JSON document and as readable lines. No patient names or IDs in either."""

from __future__ import annotations

from typing import Any

from qrtui.events import size_text
from qrtui.funnel import FunnelResult
from qrtui.query import QueryParams
from qrtui.retrieve import RetrieveSummary
from qrtui.selection import Pick, StudyPlan
from qrtui.store import RunRecord


def _series_json(pick: Pick, role: str) -> dict[str, Any]:
    series = pick.series
    if pick.sop_instance_uids:
        uids = list(pick.sop_instance_uids)
    else:
        uids = [i.sop_instance_uid for i in series.instances or ()]
    count = len(uids) if uids else series.instance_count
    return {
        "series_instance_uid": series.series_instance_uid,
        "modality": series.modality,
        "series_description": series.description,
        "station_name": series.station_name,  # None where the PACS did not say
        "instances": count,
        "sop_instance_uids": uids,
        "whole_series": pick.whole_series,
        "role": role,
        "why": pick.why,
    }


def study_json(plan: StudyPlan) -> dict[str, Any]:
    study = plan.study
    series = [_series_json(p, "retrieve") for p in plan.picks]
    series += [_series_json(p, "probe") for p in plan.probe]
    series += [_series_json(p, "fallback") for p in plan.fallback]
    return {
        "study_instance_uid": study.study_instance_uid,
        "study_date": study.study_date,
        "study_time": study.study_time,
        "study_description": study.description,
        "station_name": study.station_name,  # audits are per scanner
        "modality": plan.group,
        "modalities_in_study": list(study.modalities),
        "decision": str(plan.decision),
        "reason": plan.reason,
        "series": series,
    }


def plan_json(remote: str, store: str, params: QueryParams, result: FunnelResult) -> dict[str, Any]:
    return {
        "remote": remote,
        "store": store,
        "query": params.to_json(),
        "counts": dict(result.counts),
        **find_requests_json(result),
        "studies_per_group": result.per_group(),
        "notices": list(result.notices),
        "studies": [study_json(p) for p in result.plans],
        "dropped": dropped_json(result),
    }


def find_requests_json(result: FunnelResult) -> dict[str, int]:
    """The C-FIND requests sent; of them, a helper process's where it sent any."""
    helped = result.find_requests_by_helpers
    by_helpers = {"find_requests_by_helpers": helped} if helped else {}
    return {"find_requests": result.find_requests, **by_helpers}


def dropped_json(result: FunnelResult) -> list[dict[str, str]]:
    return [
        {"study_instance_uid": s.study_instance_uid, "reason": reason}
        for s, reason in result.dropped
    ]


def plan_lines(remote: str, store: str, result: FunnelResult) -> list[str]:
    lines = [f"Query of {remote} for store {store}"]
    lines += totals_lines(result, result.per_group())
    return lines + study_lines(result)


def totals_lines(result: FunnelResult, per_group: dict[str, int]) -> list[str]:
    """The funnel's counts, the studies per group and the notes."""
    lines = [f"  {name}: {value}" for name, value in result.counts.items()]
    lines.append(
        "Studies per group: " + (", ".join(f"{g} {n}" for g, n in per_group.items()) or "none")
    )
    return lines + [f"Note: {n}" for n in result.notices]


def missing_json(summary: RetrieveSummary) -> list[dict[str, str]]:
    """The studies a retrieve left owed, for the JSON document."""
    return [
        {"study_instance_uid": o.study_instance_uid, "study_date": o.study_date,
         "reason": o.reason()}
        for o in summary.missing()
    ]  # fmt: skip


def study_lines(result: FunnelResult) -> list[str]:
    """One line per study kept, then one per study dropped, with its reason."""
    lines = []
    for plan in result.plans:
        study = plan.study
        fetch = sum(1 for _ in plan.picks) + sum(1 for _ in plan.probe)
        lines.append(
            f"{plan.decision.upper():9} {study.study_date or '-':8} {plan.group:3} "
            f"{study.description[:30]!r:32} {fetch} series: {plan.reason}"
        )
    for study, reason in result.dropped:
        lines.append(
            f"{'DROPPED':9} {study.study_date or '-':8} {study.description[:30]!r:36} {reason}"
        )
    return lines


def retrieve_lines(summary: RetrieveSummary) -> list[str]:
    s = summary
    lines = [
        f"Retrieve: {s.studies_done} studies, {s.completed} completed, {s.failed} failed, "
        f"{s.warning} warning, {s.received} received ({size_text(s.bytes)}), {s.stored} stored, "
        f"{s.skipped_already_held} skipped as already held",
    ]
    if s.methods:
        lines.append(f"Retrieved with {s.method}")
    if s.inspected:
        lines.append(
            f"Inspected {s.inspected} objects of unknown type: "
            f"{s.inspected - s.discarded_after_inspection} dose objects kept, "
            f"{s.discarded_after_inspection} discarded"
        )
    lines += [f"Gap: {g}" for g in s.gaps]
    lines += [f"Problem: {p}" for p in s.problems]
    lines += [f"Sender: {n}" for n in s.sender_notes[:MISSING_SHOWN]]
    if len(s.sender_notes) > MISSING_SHOWN:
        lines.append(f"Sender: {len(s.sender_notes) - MISSING_SHOWN} more notes (see --json)")
    if s.cancelled:
        lines.append("Retrieve cancelled before the end")
    missing = s.missing()
    for outcome in missing[:MISSING_SHOWN]:
        lines.append(
            f"Still owed: {outcome.study_date or '-'} {outcome.study_instance_uid} "
            f"({outcome.reason()})"
        )
    if len(missing) > MISSING_SHOWN:
        lines.append(f"Still owed: {len(missing) - MISSING_SHOWN} more (see --json)")
    return lines


MISSING_SHOWN = 10


def history_lines(store: str, runs: list[RunRecord]) -> list[str]:
    """Newest first: one line per run, then what it left owed."""
    if not runs:
        return [f"No runs recorded in store {store} yet."]
    lines = [f"Runs recorded in store {store}, newest first:"]
    for run in runs:
        window = f"{run.window_from or 'any date'} .. {(run.window_until or '')[:16]}"
        retrieve = run.retrieve or {}
        counts = (
            f"{run.studies_planned} planned, {retrieve.get('stored', 0)} stored, "
            f"{retrieve.get('failed', 0)} failed"
        )
        label = f"profile {run.profile}" if run.profile else run.face
        lines.append(
            f"#{run.id} {run.started[:16].replace('T', ' ')}  exit {run.exit_status}"
            + (f" ({run.cancelled_by})" if run.cancelled_by else "")
            + f"  {run.remote} -> {run.store} ({label})  {window}  {counts}"
            + (f"  {run.message}" if run.message else "")
        )
        lines += [f"    {line}" for line in run.delivery_lines()]
        for missing in run.missing[:MISSING_SHOWN]:
            lines.append(
                f"    owed: {missing.study_date or '-'} {missing.study_uid} ({missing.reason})"
            )
        if len(run.missing) > MISSING_SHOWN:
            lines.append(f"    owed: {len(run.missing) - MISSING_SHOWN} more (see --json)")
    return lines
