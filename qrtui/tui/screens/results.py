"""The funnel's counts live, the plan, and the retrieve with its progress and log."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, ProgressBar, RichLog, Static

from qrtui.config import RemoteNode, StoreNode
from qrtui.events import Event, FunnelProgress, Notice, RetrieveProgress, size_text
from qrtui.query import QueryParams
from qrtui.selection import Decision
from qrtui.status import EXIT_UNREACHABLE
from qrtui.tui.context import app_of
from qrtui.tui.messages import FunnelUpdate, JobDone, LogLine, RetrieveUpdate
from qrtui.tui.widgets.cells import date_text, fixed_columns

if TYPE_CHECKING:
    from qrtui import worker

PLAN_COLUMNS = ("Date", "Grp", "Description", "Ser", "Inst", "Decision")


class ResultsScreen(Screen[None]):
    SUB_TITLE = "Results"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "retrieve", "Retrieve"),
        Binding("c", "cancel", "Cancel"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(
        self,
        remote: RemoteNode,
        store: StoreNode,
        params: QueryParams,
        profile: str | None = None,
    ) -> None:
        super().__init__()
        self.remote, self.store, self.params = remote, store, params
        self.profile = profile  # the saved query the form was loaded from, if unchanged
        self.cancel = threading.Event()
        self.phase = "plan"  # plan, planned, retrieve, done
        self.busy = False
        self.plan_outcome: worker.JobOutcome | None = None
        self.retrieve_outcome: worker.JobOutcome | None = None
        self.context: worker.RunContext | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="status")
        yield Static(id="funnel")
        yield DataTable(id="studies", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=1, id="progress", show_eta=False)
            yield Static(id="retrieve-status")
        yield RichLog(id="log", wrap=True, max_lines=2000)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one("#studies", DataTable)
        fixed_columns(table, PLAN_COLUMNS, [])
        self.query_one("#progress-row").display = False
        self.query_one("#status", Static).update(f"Querying {self.remote.name}…")
        self._log(f"query {self.remote.name} for store {self.store.name}")
        self.busy = True
        self._plan()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retrieve":
            result = self.plan_outcome.result if self.plan_outcome else None
            return self.phase == "planned" and not self.busy and bool(result and result.to_fetch)
        if action == "cancel":
            return self.busy
        return True

    # ------------------------------------------------------------ workers

    def _emit(self, event: Event) -> None:
        if isinstance(event, FunnelProgress):
            self.post_message(FunnelUpdate(event))
        elif isinstance(event, RetrieveProgress):
            self.post_message(RetrieveUpdate(event))
        elif isinstance(event, Notice):
            self.post_message(LogLine(event.text))

    @work(thread=True, group="job", exit_on_error=False)
    def _plan(self) -> None:
        from qrtui import worker

        config = app_of(self).config
        self.context = worker.RunContext(face="tui", profile=self.profile)
        outcome = worker.plan(
            config, self.remote, self.store, self.params, emit=self._emit, cancel=self.cancel
        )
        if outcome.status == EXIT_UNREACHABLE:
            worker.record_alone(self.store, self.context, self.remote, self.params, outcome)
        self.post_message(JobDone("plan", outcome))

    @work(thread=True, group="job", exit_on_error=False)
    def _retrieve(self, outcome: worker.JobOutcome) -> None:
        from qrtui import worker

        config = app_of(self).config
        assert outcome.result is not None
        done = worker.retrieve(
            config, self.remote, self.store, outcome.result, emit=self._emit, cancel=self.cancel,
            context=self.context, params=self.params,
        )  # fmt: skip
        self.post_message(JobDone("retrieve", done))

    # ------------------------------------------------------------ updates

    def _log(self, line: str) -> None:
        self.query_one("#log", RichLog).write(line)

    def on_log_line(self, message: LogLine) -> None:
        self._log(message.text)

    def on_funnel_update(self, message: FunnelUpdate) -> None:
        event = message.event
        total = f"/{event.total}" if event.total is not None else ""
        self.query_one("#status", Static).update(
            f"Querying {self.remote.name}: {event.stage} {event.done}{total}"
        )
        self._show_counts(event.counts)

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
        self.query_one("#status", Static).update(f"Retrieving: {e.current}")

    def on_job_done(self, message: JobDone) -> None:
        self.busy = False
        outcome = message.outcome
        if message.phase == "plan":
            self.plan_outcome = outcome
            self._show_plan(outcome)
        else:
            self.retrieve_outcome = outcome
            self._show_retrieved(outcome)
        self.refresh_bindings()

    def _show_plan(self, outcome: worker.JobOutcome) -> None:
        status = self.query_one("#status", Static)
        if outcome.result is None:
            status.update(f"Query failed: {outcome.message}")
            self._log(f"query stopped: {outcome.message}")
            self.phase = "done"
            return
        result = outcome.result
        self._show_counts(result.counts)
        groups = ", ".join(f"{g} {n}" for g, n in result.per_group().items()) or "none"
        fetch = len(result.to_fetch)
        status.update(
            f"Plan: {fetch} to fetch ({groups}), {len(result.dropped)} dropped"
            + ("; r retrieves" if fetch else "")
        )
        table = self.query_one("#studies", DataTable)
        rows = []
        for plan in result.plans:
            picks = plan.picks + plan.probe
            instances = sum(
                len(p.sop_instance_uids) or (p.series.instance_count or 0) for p in picks
            )
            decision = "fetch" if plan.decision is Decision.RETRIEVE else "inspect"
            rows.append(
                (plan.study, plan.group, len(picks), instances, f"{decision}: {plan.reason}")
            )
        for study, reason in result.dropped:
            group = "/".join(study.modalities[:2]) or "-"
            rows.append((study, group, 0, 0, f"dropped: {reason}"))
        rows.sort(
            key=lambda r: (r[4].startswith("dropped"), r[0].study_date, r[1], r[0].description)
        )
        cells = [
            (
                date_text(study.study_date), group, study.description[:22], str(series or ""),
                str(instances or ""), decision,
            )
            for study, group, series, instances, decision in rows
        ]  # fmt: skip
        fixed_columns(table, PLAN_COLUMNS, cells)
        for row in cells:
            table.add_row(*row)
        self._log(f"plan ready: {fetch} to fetch, {len(result.dropped)} dropped")
        self.phase = "planned"

    def _show_retrieved(self, outcome: worker.JobOutcome) -> None:
        summary = outcome.summary
        status = self.query_one("#status", Static)
        self.phase = "done"
        if summary is None:
            status.update(f"Retrieve failed: {outcome.message}")
            self._log(f"retrieve stopped: {outcome.message}")
            return
        for line in summary.gaps:
            self._log(f"gap: {line}")
        verdict = (
            "cancelled" if summary.cancelled else ("done" if outcome.status == 0 else "partly done")
        )
        status.update(
            f"Retrieve {verdict}: {summary.stored} stored, {summary.failed} failed, "
            f"{summary.skipped_already_held} already held"
        )
        if outcome.message:
            self._log(outcome.message)
        self._log(
            f"retrieve {verdict}: {summary.completed} completed, {summary.failed} failed, "
            f"{summary.warning} warning, {summary.received} received, {summary.stored} stored"
        )
        if summary.cancelled:
            self._log(
                "the association was cancelled (C-CANCEL, then aborted if needed); "
                "every stored file is complete, the next run fetches the rest"
            )

    # ------------------------------------------------------------ actions

    def action_retrieve(self) -> None:
        if not self.check_action("retrieve", ()) or self.plan_outcome is None:
            return
        self.phase = "retrieve"
        self.busy = True
        self.query_one("#progress-row").display = True
        self.refresh_bindings()
        self._log(
            f"retrieve from {self.remote.name} ({self.remote.retrieve}) into {self.store.name}"
        )
        self._retrieve(self.plan_outcome)

    def action_cancel(self) -> None:
        if not self.busy or self.cancel.is_set():
            return
        self.cancel.set()
        self._log("cancelling: C-CANCEL sent; the association is aborted if the node does not stop")

    def action_back(self) -> None:
        if self.busy:
            self.notify("Cancel the running job first (c).", severity="warning")
            return
        self.app.pop_screen()
