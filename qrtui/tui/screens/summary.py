"""A store's dose summary: the spread of each station's audited quantity first (a physicist
looks at a distribution before a table), then one row per study; filtered by group and
dates, and exported as the same CSV as `qrtui summary --csv`."""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Header, Input, Label, Static

from qrtui import clock
from qrtui.config import StoreNode
from qrtui.query import QueryError, parse_date
from qrtui.summary import AUDITED, csv_text, spreads
from qrtui.tui.context import stop_blinking
from qrtui.tui.widgets.cells import date_text, fixed_columns

GROUPS = ("", "CT", "MG", "FL", "DX")  # "": every group
SPREADS_SHOWN = 6


@dataclass
class TableRead(Message):
    rows: list[dict[str, str]]


class AskScreen(ModalScreen[str | None]):
    """One line of text, asked for with a default; Enter takes it, Esc leaves it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "leave", "Cancel")]

    def __init__(self, question: str, default: str, hint: str) -> None:
        super().__init__()
        self.question, self.default, self.hint = question, default, hint

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question)
            yield Input(self.default, id="answer", compact=True)
            yield Label(self.hint, classes="muted")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        stop_blinking(self)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_leave(self) -> None:
        self.dismiss(None)


def audited_value(row: dict[str, str]) -> str:
    """The group's audited quantity with its unit, or that none was read (the study's
    detail and the CSV's notes say why)."""
    audited = AUDITED.get(row["group"])
    if audited is None:
        return "no dose value read"
    key, name, unit = audited
    return f"{name} {float(row[key]):.4g} {unit}" if row[key] else f"no {name} read"


class SummaryScreen(Screen[None]):
    SUB_TITLE = "Summary"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("g", "group", "Group"),
        Binding("f", "dates", "Dates"),
        Binding("e", "export", "Export"),
        Binding("escape", "app.pop_screen", "Back"),
    ]
    HELP = """The dose objects the store holds, one row per study, with the value each
group is audited by: DLP for CT, AGD for MG, DAP for FL and DX. Above the
table, each station and study description with its number of studies, the
median and range of that value, and a bar per study (the largest last).
g cycles the group, f sets study dates (2026-11-01 2026-11-30, 30d, or
empty for all), e writes the CSV of `qrtui summary --csv` for what is shown
to a path you confirm. No patient name or ID is shown or written."""

    def __init__(self, store: StoreNode) -> None:
        super().__init__()
        self.store = store
        self.group = ""
        self.first: date | None = None
        self.last: date | None = None
        self.rows: list[dict[str, str]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="summary-filter", markup=False)
        yield Static(id="spreads", markup=False)
        yield DataTable(id="summary-table", cursor_type="row")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.sub_title = f"Summary of {self.store.name}"
        self._read()

    @work(thread=True, group="summary", exclusive=True, exit_on_error=False)
    def _read(self) -> None:
        from qrtui import worker

        self.post_message(TableRead(worker.dose_table(self.store, self.first, self.last)))

    def on_table_read(self, message: TableRead) -> None:
        self.rows = message.rows
        self._show()

    @property
    def chosen(self) -> list[dict[str, str]]:
        """The rows of the group, in the order of `qrtui summary`."""
        return [r for r in self.rows if not self.group or r["group"] == self.group]

    @property
    def shown(self) -> list[dict[str, str]]:
        """The rows of the group as the table shows them: by date, group, station, description."""
        return sorted(self.chosen, key=lambda r: (r["study_date"], r["group"], r["station"],
                                                  r["study_description"]))  # fmt: skip

    def _show(self) -> None:
        shown = self.shown
        dates = (
            f"{self.first or 'any date'} to {self.last or 'today'}"
            if self.first or self.last
            else "all dates"
        )
        self.query_one("#summary-filter", Static).update(
            f"{self.group or 'All groups'} · {dates} · {len(shown)} studies"
        )
        found = spreads(shown)
        lines = [s.line() for s in found[:SPREADS_SHOWN]]
        if len(found) > SPREADS_SHOWN:
            lines.append(f"… and {len(found) - SPREADS_SHOWN} more stations and descriptions")
        self.query_one("#spreads", Static).update("\n".join(lines) or "No dose value to spread.")
        table = self.query_one("#summary-table", DataTable)
        cells = [
            (date_text(r["study_date"]), r["group"] or "-", r["station"] or "-",
             r["study_description"] or "-", audited_value(r))
            for r in shown
        ]  # fmt: skip
        fixed_columns(table, ("Date", "Grp", "Station", "Description", "Dose"), cells)
        for row, values in zip(shown, cells, strict=True):
            table.add_row(*values, key=row["study_instance_uid"])

    def action_group(self) -> None:
        self.group = GROUPS[(GROUPS.index(self.group) + 1) % len(GROUPS)]
        self._show()

    def action_dates(self) -> None:
        def chosen(answer: str | None) -> None:
            if answer is None:
                return
            try:
                words = answer.split()
                if len(words) > 2:
                    raise QueryError("give at most two dates: FROM and UNTIL")
                today = clock.today()
                first = parse_date(words[0], today) if words else None
                last = parse_date(words[1], today) if len(words) > 1 else None
                if first and last and first > last:
                    raise QueryError(f"from date {first} is after until date {last}")
            except QueryError as exc:
                self.notify(str(exc), severity="error")
                return
            self.first, self.last = first, last
            self._read()

        current = " ".join(str(d) for d in (self.first, self.last) if d)
        self.app.push_screen(
            AskScreen("Study dates, FROM [UNTIL]:", current,
                      "2026-11-01 2026-11-30, 30d (the last 30 days), empty: all"),
            chosen,
        )  # fmt: skip

    def action_export(self) -> None:
        default = Path.home() / f"qrtui-summary-{self.store.name}-{clock.today()}.csv"

        def chosen(answer: str | None) -> None:
            if not answer:
                return
            target = Path(answer).expanduser()
            try:
                _write_atomically(target, csv_text(self.chosen))
            except OSError as exc:
                self.notify(f"Not written: {exc.strerror or exc}", severity="error")
                return
            self.notify(f"{len(self.chosen)} studies written to {target}")

        self.app.push_screen(
            AskScreen("Write the CSV of what is shown to:", str(default),
                      "Enter writes (an existing file is replaced), Esc cancels"),
            chosen,
        )  # fmt: skip


def _write_atomically(target: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(prefix=".qrtui-", suffix=".csv", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
