"""Every run in the store's history; a --since-last run's window and checkpoint."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from qrtui import clock
from qrtui.config import RemoteNode, StoreNode
from qrtui.dicom.echo import EchoResult as EchoResult  # re-exported for the faces
from qrtui.query import QueryParams
from qrtui.status import (  # noqa: F401  (re-exported for the faces)
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    usage_problem,
)
from qrtui.store import Missing, RunRecord, Store, StoreBusy, StoreError
from qrtui.worker.custody import plan_entries
from qrtui.worker.outcome import JobOutcome, RunContext, SinceLast
from qrtui.worker.planning import opened_store


def since_last_window(
    checkpoint: str | None, since: SinceLast, params: QueryParams, context: RunContext
) -> tuple[QueryParams, str]:
    """The study dates of a --since-last run, and a line that says how they were chosen."""
    started = context.started
    if checkpoint is None:
        first = since.first_from or (started.date() - timedelta(days=1))
        told = f"from {first} (-f)" if since.first_from else f"from yesterday, {first}"
        line = f"--since-last: no complete run of {since.key} yet: this first run looks {told}"
    else:
        until = datetime.fromisoformat(checkpoint)
        first = (until - since.overlap).date()
        line = (
            f"--since-last: the last complete run of {since.key} began {until:%Y-%m-%d %H:%M}; "
            f"with the overlap of {_duration(since.overlap)}, this run looks from {first}"
        )
    window = replace(params, date_from=first, date_until=None, time_from=None, time_until=None)
    return window, line


def _duration(value: timedelta) -> str:
    hours = int(value.total_seconds() // 3600)
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


def record(
    store: Store,
    context: RunContext,
    remote: RemoteNode,
    store_node: StoreNode,
    params: QueryParams,
    outcome: JobOutcome,
    *,
    owed: tuple[Missing, ...] = (),
) -> int | None:
    """The run into the store's history; with --since-last, its checkpoint (moved only after
    a complete run) and the studies it still owes, in the same transaction."""
    result, summary = outcome.result, outcome.summary
    missing = tuple(
        Missing(o.study_instance_uid, o.study_date, o.reason())
        for o in (summary.missing() if summary is not None else ())
    )
    if result is not None and summary is None and outcome.status != EXIT_OK:
        missing = tuple(  # planned, then stopped before any retrieve
            Missing(
                p.study.study_instance_uid, p.study.study_date, f"not reached: {outcome.message}"
            )
            for p in result.to_fetch
        )
    finished = clock.now()
    run = RunRecord(
        started=context.started.isoformat(timespec="seconds"),
        finished=finished.isoformat(timespec="seconds"),
        face=context.face,
        remote=remote.name,
        store=store_node.name,
        profile=context.profile,
        query_key=context.since_last.key if context.since_last else None,
        window_from=params.date_from.isoformat() if params.date_from else None,
        window_until=(
            params.date_until.isoformat()
            if params.date_until
            else context.started.isoformat(timespec="seconds")
        ),
        query=params.to_json(),
        counts=dict(result.counts) if result else {},
        retrieve=summary.to_json() if summary is not None else None,
        studies_planned=len(result.to_fetch) + result.passed_on if result else 0,
        exit_status=outcome.status,
        message=outcome.message,
        notices=tuple(result.notices) if result else (),
        missing=missing,
    )
    try:
        studies: Iterable[tuple[str, str]] = plan_entries(result, summary)
        if outcome.custody is not None:
            studies = itertools.chain(outcome.custody.entries(), studies)
        if context.since_last is None or result is None:
            # without --since-last, or nothing asked: the checkpoint and what is owed stay
            return store.history.record(run, studies=studies)
        planned = {m.study_uid for m in missing}
        settled = frozenset(m.study_uid for m in owed if m.study_uid not in planned)
        if not outcome.owed_decided:  # stopped before it asked them: none is settled
            settled = frozenset()
        return store.history.record(
            run,
            checkpoint=run.started if outcome.status == EXIT_OK else None,
            owed=missing,
            settled=settled | frozenset(result.owed_gone),
            studies=studies,
        )
    except sqlite3.Error:
        return None


def record_alone(
    store_node: StoreNode,
    context: RunContext,
    remote: RemoteNode,
    params: QueryParams,
    outcome: JobOutcome,
) -> int | None:
    """Record a run that ended before its retrieve opened the store (the TUI's query failed);
    None where the store keeps no history or is in use."""
    if not store_node.embedded:
        return None
    try:
        with opened_store(store_node, for_writing=True) as store:
            assert store is not None
            return record(store, context, remote, store_node, params, outcome)
    except (StoreBusy, StoreError):
        return None
