"""Delivery as a job: after a run's retrieve, alone (--forward), and what it does to the
run's exit status and its history record."""

from __future__ import annotations

import threading

from qrtui.config import Config
from qrtui.events import Emit
from qrtui.forward import DeliveryReport, deliver
from qrtui.status import EXIT_OK, EXIT_UNDELIVERED
from qrtui.store import Store
from qrtui.worker.outcome import JobOutcome, _ignore


def deliver_after_run(
    config: Config,
    store: Store,
    outcome: JobOutcome,
    *,
    emit: Emit = _ignore,
    cancel: threading.Event | None = None,
) -> None:
    """Deliver what the store holds queued (this run's objects and any earlier ones); a run
    that fetched everything but leaves objects undelivered ends with EXIT_UNDELIVERED."""
    if cancel is not None and cancel.is_set():
        return
    if not store.ledger.destinations_waiting():
        return
    report = deliver(config, store, emit=emit, cancel=cancel)
    outcome.delivery = report
    if outcome.status == EXIT_OK and report.undelivered:
        outcome.status = EXIT_UNDELIVERED
        outcome.message = report.message()
    if outcome.run_id is not None:
        store.history.set_delivery(
            outcome.run_id, report.to_json(), outcome.status, outcome.message
        )


def delivery_status(report: DeliveryReport) -> int:
    return EXIT_UNDELIVERED if report.undelivered else EXIT_OK
