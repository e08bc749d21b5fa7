"""The app factory shared by the CLI, Pilot tests and snapshot tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import date
from typing import ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType

from qrtui.config import Config
from qrtui.tui.screens import HelpScreen, NodesScreen, QueryScreen, ResultsScreen


class QrtuiApp(App[int]):
    CSS_PATH = "qrtui.tcss"
    TITLE = "qrtui"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        Binding("question_mark,f1", "help", "Help"),
    ]

    def __init__(
        self,
        config: Config,
        *,
        today: Callable[[], date] = date.today,
        cursor_blink: bool = True,
        echo_on_start: bool = True,
        start: str = "nodes",
    ) -> None:
        super().__init__()
        self.start = start
        self.config = config
        self.today = today
        self.cursor_blink = cursor_blink
        self.echo_on_start = echo_on_start

    def on_mount(self) -> None:
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
        """Stop running jobs first: their associations are aborted, not cut."""
        running = [s for s in self.screen_stack if isinstance(s, ResultsScreen) and s.busy]
        for screen in running:
            screen.cancel.set()
        if running:
            self.notify("Stopping the running job…")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.workers.wait_for_complete(), timeout=15)
        self.exit(0)


def create_app(
    config: Config,
    *,
    today: Callable[[], date] = date.today,
    cursor_blink: bool = True,
    echo_on_start: bool = True,
    start: str = "nodes",
) -> QrtuiApp:
    """start: "nodes" (the echo status screen) or "query" (the form, over it)."""
    return QrtuiApp(
        config, today=today, cursor_blink=cursor_blink, echo_on_start=echo_on_start, start=start
    )


def run_app(config: Config, start: str = "nodes") -> int:
    app = create_app(config, start=start)
    app.run()
    return app.return_code or 0
