"""A long date range run as a backfill: window by window, each planned by the rules, fetched
and marked done, as the scripted mode does; what is kept of a window is one line, so the
screen stays light over a year. Stopped and started again, it resumes."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, ProgressBar, RichLog, Static

from qrtui.config import RemoteNode, StoreNode
from qrtui.events import Event, FunnelProgress, Notice, RetrieveProgress, WindowProgress
from qrtui.query import QueryParams
from qrtui.tui.context import app_of
from qrtui.tui.messages import JobDone, LogLine
from qrtui.windows import WINDOWS_DONE, window_label

if TYPE_CHECKING:
    from qrtui import worker
    from qrtui.funnel import FunnelResult


@dataclass
class DayPlanned(Message):
    line: str


@dataclass
class WindowUpdate(Message):
    event: WindowProgress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, WindowUpdate)


@dataclass
class DayStatus(Message):
    text: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DayStatus)


class BackfillScreen(Screen[None]):
    SUB_TITLE = "Backfill"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "cancel", "Cancel"),
        Binding("escape", "back", "Back"),
    ]
    HELP = """A range longer than a week runs as a backfill: a window of days at
a time (one day first, then as many as hold about the remote's
window_studies), each planned by the rules (no choosing), fetched, and its
days marked done in the store's index once it came in whole. Stopped (c,
q, or the machine) and started again with the same query, it resumes at
the first day not done.

The line under the title says how far it is: days done of all, objects and
bytes, the rate, and the time left as the days so far predict it. The log
has a line per window: studies to fetch and dropped.

Today is never marked done: its studies may still be arriving."""

    def __init__(
        self,
        remote: RemoteNode,
        store: StoreNode,
        params: QueryParams,
        days: int,
        profile: str | None = None,
    ) -> None:
        super().__init__()
        self.remote, self.store, self.params = remote, store, params
        self.days, self.profile = days, profile
        self.cancel = threading.Event()
        self.busy = False
        self.outcome: worker.JobOutcome | None = None
        self.status_text = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="status", markup=False)
        yield ProgressBar(total=self.days, id="days", show_eta=False)
        yield Static(id="day", markup=False)
        yield RichLog(id="log", wrap=True, max_lines=2000)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        first, last = self.params.date_from, self.params.date_until
        self._status(f"Backfill of {self.days} days from {self.remote.name}: starting…")
        self._log(f"backfill {first} to {last or 'today'} from {self.remote.name} "
                  f"into {self.store.name}, window by window")  # fmt: skip
        self.busy = True
        self._run()

    # ------------------------------------------------------------ the job

    @work(thread=True, group="job", exit_on_error=False)
    def _run(self) -> None:
        from qrtui import worker

        config = app_of(self).config
        profile = next((p for p in config.profiles if p.name == self.profile), None)
        context = worker.RunContext(
            face="tui", profile=self.profile, forward=config.forward_for(self.store, profile)
        )
        outcome = worker.run(
            config, self.remote, self.store, self.params, dry_run=False, emit=self._emit,
            cancel=self.cancel, context=context, on_window=self._window,
        )  # fmt: skip
        self.post_message(JobDone("backfill", outcome))

    def _window(self, params: QueryParams, first: date, last: date, result: FunnelResult) -> None:
        self.post_message(DayPlanned(
            f"{window_label(first, last)}: {len(result.to_fetch)} to fetch, "
            f"{len(result.dropped)} dropped"
        ))  # fmt: skip

    def _emit(self, event: Event) -> None:
        if isinstance(event, WindowProgress):
            self.post_message(WindowUpdate(event))
        elif isinstance(event, FunnelProgress):
            total = f"/{event.total}" if event.total is not None else ""
            self.post_message(DayStatus(f"querying: {event.stage} {event.done}{total}"))
        elif isinstance(event, RetrieveProgress):
            self.post_message(DayStatus(
                f"retrieving: study {event.studies_done}/{event.studies_total}, "
                f"{event.completed} completed, {event.failed} failed"
            ))  # fmt: skip
        elif isinstance(event, Notice):
            self.post_message(LogLine(event.text))

    # ------------------------------------------------------------ updates

    def _status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)
        self.status_text = text

    def _log(self, line: str) -> None:
        self.query_one("#log", RichLog).write(line)

    def on_log_line(self, message: LogLine) -> None:
        self._log(message.text)

    def on_day_planned(self, message: DayPlanned) -> None:
        self._log(message.line)

    def on_day_status(self, message: DayStatus) -> None:
        if self.busy:
            self.query_one("#day", Static).update(message.text)

    def on_window_update(self, message: WindowUpdate) -> None:
        self.query_one("#days", ProgressBar).update(progress=message.event.asked)
        if not self.cancel.is_set():
            self._status(message.event.line())

    def on_job_done(self, message: JobDone) -> None:
        self.busy = False
        self.outcome = outcome = message.outcome
        self.query_one("#day", Static).update("")
        result, summary = outcome.result, outcome.summary
        done = result.counts.get(WINDOWS_DONE, 0) if result else 0
        objects = f"; {summary.received} objects received" if summary else ""
        if self.cancel.is_set():
            text = f"Stopped after {done} of {self.days} days{objects}: run it again to resume"
        elif outcome.status == 0:
            text = f"Backfill done: {done} of {self.days} days{objects}"
        else:  # the days done first: the reason may be longer than the line
            text = (
                f"Backfill ended (status {outcome.status}), {done} of {self.days} days done: "
                f"{outcome.message}"
            )
        self._status(text)
        self._log(text)
        for line in (d.line() for d in outcome.delivery.destinations) if outcome.delivery else ():
            self._log(f"delivered: {line}")
        self.refresh_bindings()

    # ------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel":
            return self.busy
        if action == "back":
            return not self.busy
        return True

    def action_cancel(self) -> None:
        if not self.busy or self.cancel.is_set():
            return
        self.cancel.set()
        self._status("Stopping: the window in flight is cancelled; the days done stay done")
        self._log("cancelling: C-CANCEL sent; the association is aborted if the node does not stop")

    def stop_for_quit(self) -> None:
        self.action_cancel()
        self._status("Stopping: cancelling the backfill, then quitting…")

    def action_back(self) -> None:
        if self.busy:
            self.notify("Cancel the backfill first (c).", severity="warning")
            return
        self.app.pop_screen()
