"""A yes/no question over the current screen, and saving the configuration after one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Label

from qrtui.config import (
    Config,
    ConfigError,
    backup_path,
    comments_a_save_drops,
    config_to_dict,
    parse_config,
    save_config,
)
from qrtui.tui.context import app_of


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question)
            yield Label("y: yes   n: no", classes="muted")
        yield Footer()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def save_asking(screen: Screen[Any], config: Config, saved: Callable[[Config], None]) -> None:
    """Save through the validated, atomic writer. A configuration that does not validate
    raises ConfigError at once; where the save would lose comments of the file, the user is
    asked first and the file as it was is kept beside it."""
    parse_config(config_to_dict(config), config.path)

    def write() -> None:
        try:
            written = save_config(config)
        except (ConfigError, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            screen.notify(f"Not saved: {reason or exc}", severity="error")
            return
        app_of(screen).config = written
        saved(written)

    dropped = comments_a_save_drops(config)
    if not dropped:
        write()
        return
    backup = backup_path(config.path).name

    def answered(yes: bool | None) -> None:
        if yes:
            write()
            screen.notify(f"The file as it was is kept as {backup}")

    lines = "line" if dropped == 1 else "lines"
    screen.app.push_screen(
        ConfirmScreen(
            f"This save rewrites part of {config.path.name}: {dropped} comment {lines} in it "
            f"will not be kept. The file as it is now is copied to {backup} first. Save?"
        ),
        answered,
    )
