"""A long run in windows of days: plan a window, retrieve it, mark its days done, move on.
The first window is a day; each next one spans as many days as should hold about the
remote's window_studies (qrtui.windows.next_window_days). The funnel's answers and the
retrieve's sessions last one window; a day brought in whole is kept in the store's index,
so the same query run again starts at the first day not done."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date

from qrtui import clock
from qrtui.config import Config, RemoteNode, StoreNode
from qrtui.events import Emit, Notice, WindowProgress
from qrtui.funnel import FunnelResult
from qrtui.helpers import Helper
from qrtui.query import QueryParams
from qrtui.retrieve import RetrieveSummary
from qrtui.selection import StudyPlan
from qrtui.status import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE
from qrtui.store import Store
from qrtui.windows import (
    WINDOWS_BEFORE,
    WINDOWS_DONE,
    WINDOWS_TOTAL,
    next_window,
    next_window_days,
    window_label,
)
from qrtui.worker.custody import PlanSpool
from qrtui.worker.outcome import JobOutcome, incomplete_message
from qrtui.worker.planning import KeptFinder, plan
from qrtui.worker.retrieving import _retrieve

# The first studies of the first window that has any: decided, then fetched, before the rest
# of it is asked, so that a long run stores its first objects within seconds (issue 26).
FIRST_STUDIES = 8

# Handed each window's plan as the window ends: the whole range's query, the window's first
# and last day, its plan.
OnWindow = Callable[[QueryParams, date, date, FunnelResult], None]


def resume_key(remote: str, store: str, params: QueryParams) -> str:
    """The same query (nodes, selection and dates) names the same days done."""
    text = json.dumps({"remote": remote, "store": store, **params.to_json()}, sort_keys=True)
    return "days-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def run_days(
    config: Config,
    remote: RemoteNode,
    store_node: StoreNode,
    params: QueryParams,
    days: list[date],
    *,
    dry_run: bool,
    emit: Emit,
    cancel: threading.Event | None,
    store: Store | None,
    started: date,
    also_studies: tuple[str, ...] = (),
    on_window: OnWindow | None = None,
    helpers: Sequence[Helper] = (),
) -> JobOutcome:
    """Each window planned, then retrieved (not in a dry run), then its days marked done
    where it came in whole, in order; one outcome for the whole range. A day not before
    `started` is never marked done: its studies may still be arriving at the PACS. With
    `on_window`, each window's plan is handed on and let go, so memory stays flat."""
    key = resume_key(remote.name, store_node.name, params)
    done_before = store.history.days_done(key) if store is not None else frozenset()
    todo = [d for d in days if d.isoformat() not in done_before]
    skipped = len(days) - len(todo)
    result, summary = FunnelResult(), RetrieveSummary()
    result.counts.update({WINDOWS_TOTAL: len(days), WINDOWS_DONE: skipped, WINDOWS_BEFORE: 0})
    if skipped:
        line = f"resuming: {skipped} of {len(days)} days done"
        result.counts[WINDOWS_BEFORE] = skipped
        result.notices.append(line)
        emit(Notice(line))
    outcome = JobOutcome(EXIT_OK, result=result, summary=None if dry_run else summary)
    outcome.owed_decided = not also_studies  # they are asked in the first window
    if on_window is not None and not dry_run and store is not None:
        outcome.custody = PlanSpool()  # the history's entries, as the plans are let go
    first, position, studies_seen, last = clock.monotonic(), 0, 0, (0, 0)
    kept = KeptFinder(helpers)  # the funnel's associations, from one window to the next
    early: list[JobOutcome] = []

    def fetch_early(plans: list[StudyPlan]) -> None:
        head = FunnelResult(plans=plans)
        if head.to_fetch:
            kept.close()  # the retrieve's associations count against the limit
            studies = f"{len(head.to_fetch)} stud{'y' if len(head.to_fetch) == 1 else 'ies'}"
            emit(Notice(f"fetching the first {studies}; then the rest of the window"))
            fetched = _retrieve(
                config, remote, store_node, head, emit=emit, cancel=cancel, store=store,
                helpers=helpers,
            )  # fmt: skip
            early.append(fetched)
            gone = fetched.status == EXIT_UNREACHABLE or fetched.hopeless
            if gone or (cancel is not None and cancel.is_set()):
                raise _WindowStopped  # the node is gone or refuses, or the run stopped

    try:
        while position < len(todo):
            size = next_window_days((position, studies_seen), last, remote.window_studies)
            window = next_window(todo[position:], size)
            one = replace(params, date_from=window[0], date_until=window[-1])
            early.clear()
            try:
                planned = plan(
                    config, remote, store_node, one, emit=emit, cancel=cancel, store=store,
                    also_studies=also_studies if position == 0 else (), kept=kept,
                    head=FIRST_STUDIES if studies_seen == 0 and not dry_run else 0,
                    on_head=fetch_early,
                )  # fmt: skip
            except _WindowStopped:  # the early part's status, where it says what went wrong
                stopped = early[-1]
                planned = (
                    JobOutcome(stopped.status, stopped.message)
                    if stopped.status != EXIT_OK
                    else JobOutcome(EXIT_PARTIAL, "query cancelled")
                )
            if planned.result is None or planned.status != EXIT_OK:
                for fetched in early:  # the first studies came in: handed on all the same
                    assert fetched.result is not None
                    _hand_on(outcome, on_window, params, window, fetched.result, fetched.summary)
                    _add_summary(summary, fetched.summary)
                return _stopped(outcome, planned)
            position += len(window)
            last = (len(window), len(planned.result.plans) + len(planned.result.dropped))
            studies_seen += last[1]
            part = planned
            if not dry_run:
                rest = _not_fetched(planned.result, early)
                if rest.to_fetch:
                    kept.close()  # the retrieve's associations count against the node's limit
                part = _retrieve(
                    config, remote, store_node, rest, emit=emit, cancel=cancel, store=store,
                    helpers=helpers,
                )  # fmt: skip
                part = _joined([*early, part])
                _add_summary(summary, part.summary)
                outcome.owed_decided = True  # those not fetched whole are in its summary
            _hand_on(outcome, on_window, params, window, planned.result, part.summary)
            whole = not planned.result.incomplete and part.status == EXIT_OK
            if whole and not dry_run and store is not None:
                past = [d.isoformat() for d in window if d < started]
                store.history.mark_days_done(key, past, clock.now().isoformat("T", "seconds"))
            if part.status != EXIT_OK and outcome.status == EXIT_OK:
                outcome.status, outcome.message = part.status, part.message
            if summary.cancelled and not dry_run:
                break  # the user stopped inside this window: it is not done, and no next one
            result.counts[WINDOWS_DONE] += len(window) if whole else 0
            seconds = clock.monotonic() - first
            emit(
                WindowProgress(
                    result.counts[WINDOWS_DONE], len(days), window_label(window[0], window[-1]),
                    summary.received, summary.bytes, seconds,
                    # empty days go fast: no estimate of the time left until studies are seen
                    seconds / position * (len(todo) - position) if studies_seen else None,
                    skipped + position,
                )
            )  # fmt: skip
            if part.status == EXIT_UNREACHABLE or part.hopeless:
                break  # the node is gone, or refuses every retrieve: no next window
    finally:
        kept.close()
    if outcome.status == EXIT_OK and result.incomplete:
        outcome.status, outcome.message = EXIT_PARTIAL, incomplete_message(result)
    finished = len(todo) == 0 or result.counts[WINDOWS_DONE] == len(days)
    if finished and outcome.status == EXIT_OK and not dry_run and store is not None:
        # The days done only resume an interrupted run. Once the range has come in whole,
        # they are forgotten: a PACS may get new objects for old days (a second RDSR), and
        # the same query run again must ask every day again, or it would miss them.
        store.history.forget_days(key)
    return outcome


class _WindowStopped(Exception):
    """A window's first studies were fetched, and what came back ends the run there."""


def _stopped(outcome: JobOutcome, planned: JobOutcome) -> JobOutcome:
    """A day that could not be planned ends the run with its status; what came before
    stays in the outcome (and was marked done)."""
    outcome.status, outcome.message = planned.status, planned.message
    if planned.result is not None:
        assert outcome.result is not None
        _add_result(outcome.result, planned.result)
    return outcome


def _hand_on(
    outcome: JobOutcome,
    on_window: OnWindow | None,
    params: QueryParams,
    window: list[date],
    plans: FunnelResult,
    summary: RetrieveSummary | None,
) -> None:
    """A window's plans into the run's totals; with `on_window`, handed to the face and
    the chain of custody first, then let go, so that memory stays flat."""
    if on_window is not None:
        on_window(params, window[0], window[-1], plans)
        if outcome.custody is not None:
            outcome.custody.add(plans, summary)
        plans.passed_on = len(plans.to_fetch)
        plans.plans, plans.dropped = [], []
    assert outcome.result is not None
    _add_result(outcome.result, plans)


def _not_fetched(result: FunnelResult, early: list[JobOutcome]) -> FunnelResult:
    """The window's plan less its first studies, where they were fetched already."""
    fetched = {p.study.study_instance_uid for e in early if e.result for p in e.result.plans}
    if not fetched:
        return result
    return replace(
        result, plans=[p for p in result.plans if p.study.study_instance_uid not in fetched]
    )


def _joined(parts: list[JobOutcome]) -> JobOutcome:
    """A window's retrieve, fetched in parts: the first status that is not OK, and one
    summary with every study's outcome in plan order."""
    if len(parts) == 1:
        return parts[0]
    summary = RetrieveSummary()
    for part in parts:
        if part.summary is not None:
            _add_summary(summary, part.summary)
            summary.studies.update(part.summary.studies)
    failed = [p for p in parts if p.status != EXIT_OK]
    first = failed[0] if failed else parts[-1]
    hopeless = any(p.hopeless for p in parts)
    return replace(
        parts[-1], status=first.status, message=first.message, summary=summary, hopeless=hopeless
    )


def _add_result(total: FunnelResult, part: FunnelResult) -> None:
    total.plans += part.plans
    total.dropped += part.dropped
    for name, value in part.counts.items():
        total.counts[name] = total.counts.get(name, 0) + value
    total.notices += part.notices
    total.incomplete += part.incomplete
    total.owed_gone += part.owed_gone
    total.find_requests += part.find_requests
    total.find_requests_by_helpers += part.find_requests_by_helpers
    total.passed_on += part.passed_on
    total.modalities_in_study_ignored |= part.modalities_in_study_ignored


def _add_summary(total: RetrieveSummary, part: RetrieveSummary | None) -> None:
    if part is None:
        return
    for name in (
        "completed", "failed", "warning", "skipped_already_held", "received", "bytes",
        "stored", "inspected", "discarded_after_inspection", "requests", "studies_done",
        "by_helpers",
    ):  # fmt: skip
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.problems += part.problems
    total.gaps += part.gaps
    total.sender_notes += part.sender_notes
    total.cancelled |= part.cancelled
    # only the studies still owed: the rest would grow with the range
    total.studies.update((o.study_instance_uid, o) for o in part.missing())
    for method, count in part.methods.items():
        total.methods[method] = total.methods.get(method, 0) + count
    total.method_note = total.method_note or part.method_note
