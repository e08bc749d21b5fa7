"""The app factory shared by the CLI, Pilot tests and snapshot tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from datetime import date
from typing import ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType

from qrtui import clock
from qrtui.config import Config
from qrtui.tui.commands import ScreenActions
from qrtui.tui.screens import HelpScreen, NodesScreen, QueryScreen, ResultsScreen
from qrtui.tui.screens.backfill import BackfillScreen

RUNNING = (ResultsScreen, BackfillScreen)  # screens whose job a quit stops first

EXIT_INTERRUPTED = 130  # as the scripted mode after Ctrl-C: the run was cancelled
QUIT_WAIT_SECONDS = 15  # for a node that ignores C-CANCEL: then the association is cut


class QrtuiApp(App[int]):
    CSS_PATH = "qrtui.tcss"
    TITLE = "qrtui"
    COMMANDS = App.COMMANDS | {ScreenActions}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q,ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("q", "quit", "Quit", show=False),  # typed as a letter in a text field
        Binding("question_mark,f1", "help", "Help"),
    ]

    def __init__(
        self,
        config: Config,
        *,
        today: Callable[[], date] = clock.today,
        cursor_blink: bool = True,
        echo_on_start: bool = True,
        start: str = "nodes",
        demo: bool = False,
        ansi: bool = False,
    ) -> None:
        super().__init__(ansi_color=ansi)
        if ansi:  # the terminal's own 16 colours
            self.theme = "ansi-dark"
        # without colours (NO_COLOR), focus and cursors are shown by reverse and underline
        self.plain = bool(os.environ.get("NO_COLOR"))
        self.start = start
        self.demo = demo
        self.config = config
        self.today = today
        self.cursor_blink = cursor_blink
        self.echo_on_start = echo_on_start

    def on_mount(self) -> None:
        self.set_class(self.plain, "-plain")
        self.push_screen(NodesScreen())
        if self.start == "query":
            self.push_screen(QueryScreen())
        self.call_after_refresh(self._load_dicom)

    @work(thread=True, group="load")
    def _load_dicom(self) -> None:
        """pynetdicom and pydicom take about half a second to import: after the first frame,
        not before it."""
        import qrtui.worker  # noqa: F401

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    async def action_quit(self) -> None:
        """Stop running jobs first (their associations are aborted, not cut), saying so at
        once; then exit with the status of a cancelled run."""
        running = [s for s in self.screen_stack if isinstance(s, RUNNING) and s.busy]
        if not running:
            self.exit(0)
            return
        for screen in running:
            screen.stop_for_quit()
        self.run_worker(self._exit_when_stopped(running), group="quit", exclusive=True)

    async def _exit_when_stopped(self, running: list[ResultsScreen | BackfillScreen]) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._until_idle(running), timeout=QUIT_WAIT_SECONDS)
        self.exit(return_code=EXIT_INTERRUPTED)

    @staticmethod
    async def _until_idle(running: list[ResultsScreen | BackfillScreen]) -> None:
        while any(screen.busy for screen in running):
            await asyncio.sleep(0.05)


def create_app(
    config: Config,
    *,
    today: Callable[[], date] = clock.today,
    cursor_blink: bool = True,
    echo_on_start: bool = True,
    start: str = "nodes",
    demo: bool = False,
    ansi: bool = False,
) -> QrtuiApp:
    """start: "nodes" (the echo status screen) or "query" (the form, over it). demo: the form
    ticks every modality. ansi: the terminal's 16 colours instead of true colour."""
    return QrtuiApp(
        config, today=today, cursor_blink=cursor_blink, echo_on_start=echo_on_start, start=start,
        demo=demo, ansi=ansi,
    )  # fmt: skip


def run_app(config: Config, start: str = "nodes", demo: bool = False) -> int:
    app = create_app(config, start=start, demo=demo)
    app.run()
    return app.return_code or 0
