"""The runs a store recorded, newest first, and each run's detail: gaps, problems, owed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from qrtui.config import StoreNode
from qrtui.events import size_text
from qrtui.tui.widgets.cells import date_text, fixed_columns

if TYPE_CHECKING:
    from qrtui.store import RunRecord

RUN_COLUMNS = ("#", "Started", "Exit", "Query", "Window", "Plan", "Stored", "Fail", "Owed")


@dataclass
class RunsLoaded(Message):
    runs: list[RunRecord]


def run_query(run: RunRecord) -> str:
    """The profile's name, else the remote and the face that ran it."""
    return run.profile or f"{run.remote} ({run.face})"


def run_window(run: RunRecord) -> str:
    start = (run.window_from or "")[5:10]
    until = run.window_until or ""
    if not start:
        return "any date"
    if "T" in until:  # a run to now (--since-last, or an open end)
        return f"{start}..now"
    return f"{start}..{until[5:10]}"


def run_row(run: RunRecord) -> tuple[str, ...]:
    retrieve = run.retrieve or {}
    return (
        str(run.id),
        run.started[5:16].replace("T", " "),
        "cancel" if run.cancelled_by else str(run.exit_status),
        run_query(run)[:16],
        run_window(run),
        str(run.studies_planned),
        str(retrieve.get("stored", "-")) if run.retrieve else "-",
        str(retrieve.get("failed", "-")) if run.retrieve else "-",
        str(len(run.missing)),
    )


class HistoryScreen(Screen[None]):
    SUB_TITLE = "History"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "detail", "Detail", priority=True),
        Binding("f5", "reload", "Reload"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, store: StoreNode) -> None:
        super().__init__()
        self.store = store
        self.runs: list[RunRecord] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="status", markup=False)
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static(id="last-message", markup=False)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#status", Static).update(f"Store {self.store.name}: reading its history…")
        self.action_reload()

    def action_reload(self) -> None:
        self._load()

    @work(thread=True, group="history", exclusive=True)
    def _load(self) -> None:
        from qrtui import worker

        self.post_message(RunsLoaded(worker.history(self.store)))

    def on_runs_loaded(self, message: RunsLoaded) -> None:
        self.runs = message.runs
        table = self.query_one("#runs", DataTable)
        rows = [run_row(r) for r in self.runs]
        fixed_columns(table, RUN_COLUMNS, rows)
        for row in rows:
            table.add_row(*row)
        failed = sum(r.exit_status != 0 for r in self.runs)
        status = f"Store {self.store.name}: {len(self.runs)} runs, newest first"
        if self.runs:
            status += f", {failed} not clean" if failed else ", all clean"
            status += "; Enter shows a run"
        else:
            status += " (none yet: runs are recorded once they retrieve)"
        self.query_one("#status", Static).update(status)
        self._show_message()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_message()

    def _selected(self) -> RunRecord | None:
        table = self.query_one("#runs", DataTable)
        if not self.runs or table.cursor_row >= len(self.runs):
            return None
        return self.runs[table.cursor_row]

    def _show_message(self) -> None:
        run = self._selected()
        text = run.message if run is not None and run.message else ""
        self.query_one("#last-message", Static).update(text)

    def action_detail(self) -> None:
        run = self._selected()
        if run is not None:
            self.app.push_screen(RunDetailScreen(run))


def when(iso: str) -> str:
    """2026-11-28T02:30:02+00:00 -> 2026-11-28 02:30:02"""
    return iso[:19].replace("T", " ")


def run_detail_lines(run: RunRecord) -> list[str]:
    """Everything the history holds of one run, for people."""
    query = run.query
    groups = ", ".join(query.get("groups", [])) or "-"
    until = run.window_until or "any date"
    until = "the start of the run" if "T" in until else until
    lines = [
        f"Run #{run.id}: exit {run.exit_status}"
        + (f", {run.cancelled_by}" if run.cancelled_by else "")
        + (f", {run.message}" if run.message else ""),
        f"Started {when(run.started)}, finished {when(run.finished)} ({run.face})",
        f"{run.remote} -> {run.store}" + (f", profile {run.profile}" if run.profile else ""),
        f"Window: {run.window_from or 'any date'} to {until}",
        f"Groups: {groups}"
        + "".join(
            f"; {label} {', '.join(query[key])}"
            for key, label in (
                ("desc_exclude", "excluding"),
                ("desc_include", "including"),
                ("station_exclude", "stations excluding"),
                ("station_include", "stations including"),
            )
            if query.get(key)
        ),
        f"Planned: {run.studies_planned} studies",
    ]
    counts = [f"{k} {v}" for k, v in run.counts.items() if v]
    if counts:
        lines.append("Funnel: " + " · ".join(counts))
    retrieve: dict[str, Any] = run.retrieve or {}
    if run.retrieve:
        lines.append(
            f"Retrieve: {retrieve.get('stored', 0)} stored, {retrieve.get('failed', 0)} failed, "
            f"{retrieve.get('received', 0)} received ({size_text(int(retrieve.get('bytes', 0)))}), "
            f"{retrieve.get('skipped_already_held', 0)} already held"
        )
    if run.delivery:
        lines += ["Delivered:", *run.delivery_lines()]
    sections = (
        ("Gaps", retrieve.get("gaps", [])),
        ("Problems", retrieve.get("problems", [])),
        (
            "Studies still owed",
            [
                f"{date_text(m.study_date)} {m.group or '-'} {m.description or m.study_uid}: "
                f"{m.reason}"
                for m in run.missing
            ],
        ),
        ("Notes", list(run.notices)),
    )
    for title, items in sections:
        lines.append("")
        lines.append(f"{title}: {len(items) or 'none'}")
        lines += [f"- {item}" for item in items]
    return lines


class RunDetailScreen(Screen[None]):
    SUB_TITLE = "Run"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, run: RunRecord) -> None:
        super().__init__()
        self.run = run

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="detail"):
            yield Static("\n".join(run_detail_lines(self.run)), id="run-detail", markup=False)
        yield Footer(show_command_palette=False)
