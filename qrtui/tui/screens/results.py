"""The funnel's counts live, then the plan to act on, the retrieve with its progress and log,
and each study's fate and dose."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Input, ProgressBar, RichLog, Static

from qrtui.config import RemoteNode, StoreNode
from qrtui.query import QueryParams
from qrtui.tui.context import stop_blinking
from qrtui.tui.messages import (
    DosesRead,
    JobDone,
    PatientsRead,
)
from qrtui.tui.screens.afterrun import AfterRunScreen
from qrtui.tui.screens.confirm import ConfirmScreen
from qrtui.tui.screens.study import StudyDetailScreen
from qrtui.tui.widgets.cells import fixed_columns
from qrtui.tui.widgets.plan import (
    WITH_STATION,
    PlanRow,
    matches_filter,
    outcome_word,
    plan_status,
    row_cells,
)

if TYPE_CHECKING:
    from qrtui import worker
    from qrtui.dose import StudyDose

PLAN_COLUMNS = ("", "Date", "Grp", "Description", "Ser", "Inst", "Decision")
DONE_COLUMNS = ("", "Date", "Grp", "Description", "Outcome", "Dose")


class ResultsScreen(AfterRunScreen):
    SUB_TITLE = "Results"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "pick", "Pick"),
        Binding("a", "include_all", "All"),
        Binding("x", "exclude_dropped", "Drop"),
        Binding("slash", "filter", "Filter"),
        Binding("enter", "detail", "Open", priority=True),  # shown over the table's own
        Binding("r", "retrieve", "Fetch"),
        Binding("r", "refetch", "Fetch missing"),  # after a run: one of these two shows
        Binding("r", "nothing_left", "Nothing left"),
        Binding("c", "cancel", "Cancel"),
        Binding("g", "problems", "Problems"),
        Binding("P", "patients", "PHI"),
        Binding("escape", "back", "Back"),
    ]
    HELP = """Columns: the mark (✓ fetched, ✗ left out, ! a dropped study forced in), the
study date, its group (CT, MG, FL, DX, SR), its description, then before the
retrieve the series and instances to fetch and the decision, after it the
outcome and the dose.

Decisions: RDSR, ESR (an Enhanced SR titled as a dose report), dose page (a
Philips Dose Info page), images (MG/DX/CR headers), first images (the
Toshiba option), inspect (fetched and read first, as the PACS does not say
enough), dropped: no dose / held / desc. / station / modality / by you.

Outcomes: stored N, held (nothing new), discarded (read: no dose object),
failed, interrupted, not reached, left out.

Dose: the headline of what the store holds of the study: CT DLP total,
projection DAP total, MG AGD. Enter shows the events.

P shows the patient's name, ID and accession number for this session only:
never in logs, JSON, history or snapshots; off at each start."""

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
        self.rows: list[PlanRow] = []
        self.shown: list[PlanRow] = []  # the rows the filter lets through, in table order
        self.filter = ""
        self.doses: dict[str, StudyDose] = {}
        self.deliveries: dict[str, list[str]] = {}  # study UID -> a line per destination
        self.only: set[str] | None = None  # after a run: the studies fetched again
        self.patients: dict[str, tuple[str, str, str]] | None = None  # None: PHI hidden

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="status", markup=False)
        yield Static(id="funnel", markup=False)
        yield Input(placeholder="filter: description, station, group, decision", id="filter")
        yield DataTable(id="studies", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=1, id="progress", show_eta=False)
            yield Static(id="retrieve-status", markup=False)
        yield RichLog(id="log", wrap=True, max_lines=2000)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        stop_blinking(self)
        fixed_columns(self.query_one("#studies", DataTable), PLAN_COLUMNS, [])
        self.query_one("#filter", Input).display = False
        self.query_one("#studies", DataTable).focus()
        self.query_one("#progress-row").display = False
        self.query_one("#status", Static).update(f"Querying {self.remote.name}…")
        self._log(f"query {self.remote.name} for store {self.store.name}")
        self.busy = True
        self._plan()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        planned = self.phase == "planned" and not self.busy
        if action in ("pick", "include_all", "exclude_dropped"):
            return planned and bool(self.rows)
        if action == "retrieve":
            return planned and any(r.included for r in self.rows)
        if action == "cancel":
            return self.busy
        if action in ("refetch", "nothing_left"):
            after = self.phase == "done" and not self.busy and self.retrieve_outcome is not None
            return after and bool(self._missing()) == (action == "refetch")
        if action == "problems":
            return self.phase == "done" and not self.busy
        if action == "detail":  # in the filter field, Enter ends the filter
            return bool(self.rows) and not isinstance(self.focused, Input)
        if action in ("filter", "patients"):
            return bool(self.rows)
        if action == "back":
            return not self.busy
        return True

    def on_job_done(self, message: JobDone) -> None:
        self.busy = False
        outcome = message.outcome
        if message.phase == "plan":
            self.plan_outcome = outcome
            self._show_plan(outcome)
        else:
            before = self.retrieve_outcome.summary if self.retrieve_outcome else None
            if before is not None and outcome.summary is not None:  # a fetch of what was missing
                outcome.summary.studies = {**before.studies, **outcome.summary.studies}
            self.retrieve_outcome = outcome
            self._show_retrieved(outcome)
        self.refresh_bindings()

    def on_doses_read(self, message: DosesRead) -> None:
        self.doses = message.doses
        self._fill_table()

    def on_patients_read(self, message: PatientsRead) -> None:
        if self.patients is not None:  # still wanted
            self.patients = message.patients
            self._fill_table()

    # ------------------------------------------------------------ the table

    def _show_plan(self, outcome: worker.JobOutcome) -> None:
        if outcome.result is None:
            self._status(f"Query failed: {outcome.message}")
            self._log(f"query stopped: {outcome.message}")
            self.phase = "done"
            return
        result = outcome.result
        self._show_counts(result.counts)
        rows = [PlanRow(p.study, p, p.reason, included=True) for p in result.plans]
        rows += [PlanRow(s, None, reason, included=False) for s, reason in result.dropped]
        rows.sort(key=lambda r: (r.plan is None, r.study.study_date, r.group, r.study.description))
        self.rows = rows
        self.phase = "planned"
        self._fill_table()
        self._log(f"plan ready: {len(result.to_fetch)} to fetch, {len(result.dropped)} dropped")
        self._say_plan()

    def _say_plan(self) -> None:
        result = self.plan_outcome.result if self.plan_outcome else None
        if result is None:
            return
        self._status(plan_status(self.rows))

    def _visible(self, row: PlanRow) -> bool:
        return matches_filter(row, self.filter)

    def _cells(self, row: PlanRow) -> tuple[str, ...]:
        done = self.phase in ("retrieve", "done") and self.retrieve_outcome is not None
        summary = self.retrieve_outcome.summary if done and self.retrieve_outcome else None
        return row_cells(row, done=done, summary=summary, doses=self.doses, patients=self.patients,
                         screen_width=self.app.size.width)  # fmt: skip

    def _fill_table(self) -> None:
        table = self.query_one("#studies", DataTable)
        done = self.phase in ("retrieve", "done") and self.retrieve_outcome is not None
        headers: tuple[str, ...] = DONE_COLUMNS if done else PLAN_COLUMNS
        if self.patients is not None:
            if not done:
                headers = PLAN_COLUMNS[:4] + PLAN_COLUMNS[6:]
            headers = (*headers, "Patient")
        elif self.app.size.width >= WITH_STATION:
            headers = (*headers[:3], "Station", *headers[3:])
        keep = table.cursor_row
        self.shown = [r for r in self.rows if self._visible(r)]
        cells = [self._cells(r) for r in self.shown]
        fixed_columns(table, headers, cells)
        for row, values in zip(self.shown, cells, strict=True):
            table.add_row(*values, key=row.uid)
        if self.shown:
            table.move_cursor(row=min(keep, len(self.shown) - 1))

    def on_resize(self) -> None:
        if self.shown:  # descriptions widen with the terminal, and the station appears
            self._fill_table()

    def _row(self) -> PlanRow | None:
        table = self.query_one("#studies", DataTable)
        if not self.shown or table.cursor_row >= len(self.shown):
            return None
        return self.shown[table.cursor_row]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_detail()  # a click on a row

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The line over the table speaks of the study under the cursor, in every phase."""
        row = self._row()
        if row is None or self.phase not in ("planned", "done"):
            return
        why = row.plan.reason if row.plan is not None and not row.forced else row.reason
        if self.phase == "done":
            summary = self.retrieve_outcome.summary if self.retrieve_outcome else None
            outcome = summary.studies.get(row.uid) if summary else None
            why = outcome.reason() if outcome is not None else outcome_word(row, None)
        self.query_one("#funnel", Static).update(f"{row.study.description}: {why}")

    # ------------------------------------------------------------ acting on the plan

    def action_pick(self) -> None:
        row = self._row()
        if row is None or not self.check_action("pick", ()):
            return
        row.included = not row.included
        row.forced = row.included and row.plan is None
        self._changed()

    def action_include_all(self) -> None:
        for row in self.rows:
            row.included, row.forced = True, row.plan is None
        self._changed()

    def action_exclude_dropped(self) -> None:
        for row in self.rows:
            if row.plan is None:
                row.included = row.forced = False
        self._changed()

    def _changed(self) -> None:
        self._fill_table()
        self._say_plan()
        self.refresh_bindings()

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.display = True
        field.focus()

    @on(Input.Changed, "#filter")
    def _filtered(self, event: Input.Changed) -> None:
        self.filter = event.value.strip()
        self._fill_table()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self.query_one("#studies", DataTable).focus()
        if not self.filter:
            event.input.display = False

    def action_detail(self) -> None:
        row = self._row()
        if row is None or any(isinstance(s, StudyDetailScreen) for s in self.app.screen_stack):
            return  # a burst of Enter opens one study, not one per key
        summary = self.retrieve_outcome.summary if self.retrieve_outcome else None
        outcome = summary.studies.get(row.uid) if summary else None
        patient = self.patients.get(row.uid) if self.patients is not None else None
        self.app.push_screen(StudyDetailScreen(
            row, outcome, self.doses.get(row.uid), patient, self.deliveries.get(row.uid, [])
        ))  # fmt: skip

    def action_patients(self) -> None:
        if self.patients is not None:
            self.patients = None  # forgotten, not only hidden
            self.sub_title = "Results"
        else:
            self.patients = {}
            self.sub_title = "Results · PHI shown"
            self._read_patients([r.uid for r in self.rows])
        self._fill_table()
        self._status(getattr(self, "status_text", ""))

    # ------------------------------------------------------------ retrieving

    def chosen(self) -> tuple[Any, QueryParams]:
        """The plan as chosen, and the query as the history should record it."""
        assert self.plan_outcome is not None and self.plan_outcome.result is not None
        excluded = {r.uid for r in self.rows if r.plan is not None and not r.included}
        if self.only is not None:  # fetching again what a run left missing
            excluded |= {r.uid for r in self.rows if r.plan is not None} - self.only
        forced = {
            r.uid for r in self.rows if r.forced and (self.only is None or r.uid in self.only)
        }
        result = self.plan_outcome.result.chosen(excluded, forced)
        params = replace(self.params, exclude_studies=tuple(sorted(excluded)))
        return result, params

    def _show_retrieved(self, outcome: worker.JobOutcome) -> None:
        summary = outcome.summary
        self.phase = "done"
        if summary is None:
            self._status(f"Retrieve failed: {outcome.message}")
            self._log(f"retrieve stopped: {outcome.message}")
            return
        for line in summary.gaps:
            self._log(f"gap: {line}")
        verdict = (
            "cancelled" if summary.cancelled else ("done" if outcome.status == 0 else "partly done")
        )
        self._status(
            f"Retrieve {verdict}: {summary.stored} stored, {summary.failed} failed, "
            f"{summary.skipped_already_held} already held"
            + ("; g lists the problems" if summary.gaps or summary.problems else "")
        )
        if outcome.message:
            self._log(outcome.message)
        self._log(
            f"retrieve {verdict}: {summary.completed} completed, {summary.failed} failed, "
            f"{summary.warning} warning, {summary.received} received, {summary.stored} stored"
        )
        if summary.methods:
            self._log(f"retrieved with {summary.method}")
        for part in outcome.delivery.destinations if outcome.delivery else ():
            self._log(f"delivered {part.line()}")
        if summary.cancelled:
            self._log(
                "the association was cancelled (C-CANCEL, then aborted if needed); "
                "every stored file is complete, the next run fetches the rest"
            )
        self._fill_table()

    def action_retrieve(self) -> None:
        if not self.check_action("retrieve", ()) or self.plan_outcome is None:
            return
        chosen, params = self.chosen()
        self.cancel = threading.Event()  # a cancel of an earlier retrieve is spent
        self.phase = "retrieve"
        self.busy = True
        self.query_one("#progress-row").display = True
        self.refresh_bindings()
        self._log(
            f"retrieve from {self.remote.name} ({self.remote.retrieve}) into {self.store.name}: "
            f"{len(chosen.to_fetch)} studies"
        )
        self._retrieve(chosen, params)

    def action_cancel(self) -> None:
        if not self.busy or self.cancel.is_set():
            return
        self.cancel.set()
        self._status("Stopping: cancelling the retrieve…")
        self._log("cancelling: C-CANCEL sent; the association is aborted if the node does not stop")

    def stop_for_quit(self) -> None:
        """Quitting while the job runs: cancel it and say so at once."""
        self.action_cancel()
        self._status("Stopping: cancelling the retrieve, then quitting…")

    def action_back(self) -> None:
        if self.busy:
            self.notify("Cancel the running job first (c).", severity="warning")
            return
        field = self.query_one("#filter", Input)
        if field.has_focus or self.filter:  # one layer at a time: the filter first
            field.value = ""
            field.display = False
            self.query_one("#studies", DataTable).focus()
            return
        left_out = sum(1 for r in self.rows if r.plan is not None and not r.included)
        forced = sum(1 for r in self.rows if r.forced)
        if self.phase != "planned" or not (left_out or forced):
            self.app.pop_screen()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.app.pop_screen()

        self.app.push_screen(
            ConfirmScreen(f"Leave this plan? Your choices ({left_out} left out, {forced} "
                          "forced in) are not kept."),
            answered,
        )  # fmt: skip
