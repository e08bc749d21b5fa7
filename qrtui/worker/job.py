"""The whole job: plan and retrieve with the store locked throughout (the scripted mode)."""

from __future__ import annotations

import threading
from dataclasses import replace

from qrtui.config import Config, RemoteNode, StoreNode
from qrtui.dicom.echo import EchoResult as EchoResult  # re-exported for the faces
from qrtui.events import Emit, Notice
from qrtui.query import QueryParams
from qrtui.status import (  # noqa: F401  (re-exported for the faces)
    EXIT_BUSY,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    usage_problem,
)
from qrtui.store import Missing, StoreBusy, StoreError
from qrtui.windows import day_windows
from qrtui.worker.delivering import deliver_after_run
from qrtui.worker.helper import helpers
from qrtui.worker.outcome import JobOutcome, RunContext, _ignore, incomplete_message
from qrtui.worker.planning import opened_store, plan, store_problem
from qrtui.worker.recording import record, since_last_window
from qrtui.worker.retrieving import _retrieve, _unrecorded
from qrtui.worker.streaming import OnWindow, run_days


def run(
    config: Config,
    remote: RemoteNode,
    store_node: StoreNode,
    params: QueryParams,
    *,
    dry_run: bool,
    emit: Emit = _ignore,
    cancel: threading.Event | None = None,
    context: RunContext | None = None,
    on_window: OnWindow | None = None,
) -> JobOutcome:
    """Plan and retrieve with the store locked throughout (the scripted mode). Every run that
    retrieves goes into the store's history; a --since-last run also moves its checkpoint.
    A run in days hands each day's plan to `on_window` (where given) and keeps only totals."""
    context = context or RunContext()
    if context.since_last is not None and not store_node.embedded:
        return JobOutcome(
            EXIT_USAGE,
            f"--since-last needs an embedded store (its index keeps the checkpoint); "
            f"store {store_node.name} is external",
        )
    status, problem = (EXIT_OK, "") if dry_run else store_problem(remote, store_node)
    if problem:
        return JobOutcome(status, problem)
    try:
        with (
            opened_store(
                store_node, for_writing=not dry_run, wait=context.wait, on_wait=context.on_wait
            ) as store,
            helpers(config.client.aet, remote, store_node) as started,
        ):
            if store is not None and context.forward is not None:
                store.forward_to = context.forward
            owed: tuple[Missing, ...] = ()
            since = context.since_last
            notice = ""
            if since is not None:  # a dry run of a store not yet made has no checkpoint
                checkpoint = store.history.checkpoint(since.key) if store else None
                params, notice = since_last_window(checkpoint, since, params, context)
                emit(Notice(notice))
                owed = store.history.owed(since.key) if store else ()
            also = tuple(m.study_uid for m in owed)
            days = day_windows(params, context.started.date())
            if days is not None:  # a long range: window by window, resumable
                planned = run_days(
                    config, remote, store_node, params, days, dry_run=dry_run, emit=emit,
                    cancel=cancel, store=store, started=context.started.date(),
                    also_studies=also, on_window=on_window, helpers=started,
                )  # fmt: skip
            else:
                planned = plan(
                    config, remote, store_node, params, emit=emit, cancel=cancel, store=store,
                    also_studies=also, helpers=started,
                )  # fmt: skip
            if since is not None and planned.result is not None:
                planned.result.notices.insert(0, notice)
            planned.params = params
            if dry_run:
                if planned.result is not None and planned.result.incomplete:
                    return replace(
                        planned, status=EXIT_PARTIAL, message=incomplete_message(planned.result)
                    )
                return planned
            if planned.status != EXIT_OK or planned.result is None or days is not None:
                outcome = planned  # (a run in days has retrieved as it went)
            else:
                outcome = _retrieve(
                    config, remote, store_node, planned.result, emit=emit, cancel=cancel,
                    store=store, helpers=started,
                )  # fmt: skip
                outcome.params = params
            if store is not None:
                outcome.run_id = record(
                    store, context, remote, store_node, params, outcome, owed=owed
                )
                if outcome.custody is not None:
                    outcome.custody.close()
                _unrecorded(outcome, store_node)
                deliver_after_run(config, store, outcome, emit=emit, cancel=cancel)
            return outcome
    except StoreBusy as exc:
        return JobOutcome(EXIT_BUSY, f"skipped: {exc}; the next run catches up")
    except StoreError as exc:
        return JobOutcome(EXIT_UNREACHABLE, str(exc))
