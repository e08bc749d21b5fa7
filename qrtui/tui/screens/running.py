"""The thread workers of the Results screen (the plan, the retrieve, the patient context)
and the progress they report: the worker's events become messages, merged in bursts."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from textual import work
from textual.screen import Screen
from textual.widgets import ProgressBar, RichLog, Static

from qrtui.config import RemoteNode, StoreNode
from qrtui.events import (
    DeliveryProgress,
    Event,
    FunnelProgress,
    Notice,
    RetrieveProgress,
    size_text,
)
from qrtui.query import QueryParams
from qrtui.status import EXIT_UNREACHABLE
from qrtui.tui.context import app_of
from qrtui.tui.messages import (
    DeliveriesRead,
    DeliveryUpdate,
    DosesRead,
    FunnelUpdate,
    JobDone,
    LogLine,
    PatientsRead,
    RetrieveUpdate,
)

if TYPE_CHECKING:
    from qrtui import worker


class RunningScreen(Screen[None]):
    """What the Results screen sets up in its __init__, used here."""

    remote: RemoteNode
    store: StoreNode
    params: QueryParams
    profile: str | None
    cancel: threading.Event
    context: worker.RunContext | None
    deliveries: dict[str, list[str]]
    patients: dict[str, tuple[str, str, str]] | None
    status_text: str

    # ------------------------------------------------------------ workers

    def _emit(self, event: Event) -> None:
        if isinstance(event, FunnelProgress):
            self.post_message(FunnelUpdate(event))
        elif isinstance(event, RetrieveProgress):
            self.post_message(RetrieveUpdate(event))
        elif isinstance(event, Notice):
            self.post_message(LogLine(event.text))
        elif isinstance(event, DeliveryProgress):
            self.post_message(DeliveryUpdate(event))

    @work(thread=True, group="job", exit_on_error=False)
    def _plan(self) -> None:
        from qrtui import worker

        config = app_of(self).config
        profile = next((p for p in config.profiles if p.name == self.profile), None)
        self.context = worker.RunContext(
            face="tui", profile=self.profile, forward=config.forward_for(self.store, profile)
        )
        outcome = worker.plan(
            config, self.remote, self.store, self.params, emit=self._emit, cancel=self.cancel
        )
        if outcome.status == EXIT_UNREACHABLE:
            worker.record_alone(self.store, self.context, self.remote, self.params, outcome)
        self.post_message(JobDone("plan", outcome))

    @work(thread=True, group="job", exit_on_error=False)
    def _retrieve(self, chosen: Any, params: QueryParams) -> None:
        from qrtui import worker

        config = app_of(self).config
        done = worker.retrieve(
            config, self.remote, self.store, chosen, emit=self._emit, cancel=self.cancel,
            context=self.context, params=params,
        )  # fmt: skip
        self.post_message(JobDone("retrieve", done))
        # every study of the plan, fetched or held before: the store has the dose of both
        studies = [p.study.study_instance_uid for p in chosen.plans]
        studies += [study.study_instance_uid for study, _ in chosen.dropped]
        if studies:
            self.post_message(DosesRead(worker.study_doses(self.store, studies)))
            self.post_message(DeliveriesRead(worker.deliveries(self.store, studies)))

    @work(thread=True, group="patients", exclusive=True, exit_on_error=False)
    def _read_patients(self, uids: list[str]) -> None:
        from qrtui import worker

        try:
            found = worker.patient_context(app_of(self).config, self.remote, uids)
        except Exception as exc:  # the PACS went away: say so, show nothing
            self.post_message(LogLine(f"patient context not available: {type(exc).__name__}"))
            found = {}
        self.post_message(PatientsRead(found))

    # ------------------------------------------------------------ updates

    def _log(self, line: str) -> None:
        self.query_one("#log", RichLog).write(line)

    def on_log_line(self, message: LogLine) -> None:
        self._log(message.text)

    def on_funnel_update(self, message: FunnelUpdate) -> None:
        event = message.event
        total = f"/{event.total}" if event.total is not None else ""
        self._progress_status(f"Querying {self.remote.name}: {event.stage} {event.done}{total}")
        self._show_counts(event.counts)

    def _progress_status(self, text: str) -> None:
        """Progress on the status line, unless it says the job is being stopped."""
        if not self.cancel.is_set():
            self._status(text)

    def _status(self, text: str) -> None:
        badge = "[PHI shown] " if self.patients is not None else ""
        self.query_one("#status", Static).update(badge + text)
        self.status_text = text

    def _show_counts(self, counts: dict[str, int] | Any) -> None:
        parts = [f"{name} {value}" for name, value in counts.items() if value]
        self.query_one("#funnel", Static).update(" · ".join(parts))

    def on_retrieve_update(self, message: RetrieveUpdate) -> None:
        e = message.event
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=max(e.studies_total, 1), progress=e.studies_done)
        left = f", {e.remaining} left" if e.remaining is not None else ""
        self.query_one("#retrieve-status", Static).update(
            f"{e.completed} done, {e.failed} failed, {e.warning} warn{left}, {size_text(e.bytes)}"
        )
        self._progress_status(f"Retrieving: {e.current}")

    def on_delivery_update(self, message: DeliveryUpdate) -> None:
        e = message.event
        self._progress_status(
            f"Delivering to {e.destination}: {e.sent} sent, {e.refused} refused, {e.left} left"
        )

    def on_deliveries_read(self, message: DeliveriesRead) -> None:
        self.deliveries = message.lines
