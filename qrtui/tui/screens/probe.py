"""What a remote matches, returns, accepts and caps: the probe, run from the nodes screen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from qrtui.config import RemoteNode
from qrtui.tui.context import app_of

if TYPE_CHECKING:
    from qrtui.probe import ProbeReport


@dataclass
class ProbeStep(Message):
    step: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ProbeStep)


@dataclass
class ProbeDone(Message):
    report: ProbeReport


class ProbeScreen(Screen[None]):
    SUB_TITLE = "Probe"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "save", "Save findings"),
        Binding("escape", "app.pop_screen", "Back"),
    ]
    HELP = """The probe asks the remote a few harmless questions about the studies of the
last seven days and retrieves nothing. Unknown stays unknown: nothing is
guessed.
s keeps the findings in nodes.learned.toml beside the configuration; runs
then ask fewer questions (what the user set in config.toml always wins)."""

    def __init__(self, remote: RemoteNode, report: ProbeReport | None = None) -> None:
        """report: one already made, shown as it is (no probing)."""
        super().__init__()
        self.remote = remote
        self.report: ProbeReport | None = None
        self.given = report
        self.saved = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="status", markup=False)
        with VerticalScroll(id="detail"):
            yield Static(id="probe-report", markup=False)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        if self.given is not None:
            self.post_message(ProbeDone(self.given))
            return
        self.query_one("#status", Static).update(f"Probing {self.remote.name}…")
        self._probe(app_of(self).today())

    @work(thread=True, group="probe", exclusive=True)
    def _probe(self, today: date) -> None:
        from qrtui.probe import default_window, probe

        def say(step: str) -> None:
            self.post_message(ProbeStep(step))

        start, end = default_window(today)
        report = probe(app_of(self).config, self.remote, date_from=start, date_until=end, say=say)
        self.post_message(ProbeDone(report))

    def on_probe_step(self, message: ProbeStep) -> None:
        if self.report is None:
            self.query_one("#status", Static).update(f"Probing {self.remote.name}: {message.step}…")

    def on_probe_done(self, message: ProbeDone) -> None:
        from qrtui.probe import report_lines

        self.report = message.report
        lines = report_lines(message.report)
        report = message.report  # one short line in the status, the whole heading below
        status = (
            f"Probed {report.node}: {report.studies_seen} studies found; s saves the findings"
            if report.reachable
            else f"Probe of {report.node}: not reachable"
        )
        self.query_one("#status", Static).update(status)
        self.query_one("#probe-report", Static).update("\n".join(lines))
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "save":
            return self.report is not None and self.report.reachable and not self.saved
        return True

    def action_save(self) -> None:
        from qrtui.learned import load_learned, merged, save_learned

        if self.report is None:
            return
        path = app_of(self).config.path
        learned = load_learned(path)
        learned[self.remote.name] = merged(learned.get(self.remote.name), self.report.findings)
        try:
            where = save_learned(path, learned)
        except OSError as exc:
            self.notify(f"Not saved: {exc.strerror or exc}", severity="error")
            return
        self.saved = True
        self.refresh_bindings()
        self.notify(f"Findings kept in {where}")
