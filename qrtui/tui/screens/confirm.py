"""A yes/no question over the current screen, and saving the configuration after one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label

from qrtui.config import (
    Config,
    ConfigError,
    StoreNode,
    backup_path,
    comments_a_save_drops,
    config_to_dict,
    parse_config,
    save_config,
)
from qrtui.tui.context import app_of, stop_blinking


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
        yield Footer(show_command_palette=False)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ChoiceScreen(ModalScreen[str | None]):
    """One of a few answers, each on its own key."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "choose('')", "Cancel"),
    ]

    def __init__(self, question: str, choices: list[tuple[str, str, str]]) -> None:
        """choices: (key, label, value)."""
        super().__init__()
        self.question, self.choices = question, choices

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question)
            for key, label, _ in self.choices:
                yield Label(f"{key}: {label}", classes="muted")
        yield Footer(show_command_palette=False)

    def on_key(self, event: events.Key) -> None:
        for key, _, value in self.choices:
            if event.key == key:
                event.stop()
                self.dismiss(value)

    def action_choose(self, value: str) -> None:
        self.dismiss(value or None)


class PathScreen(ModalScreen[None]):
    """A store's directory, to copy: put on the clipboard where the terminal lets us (OSC 52),
    and shown selected for the terminal's own copy."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
    ]

    def __init__(self, store: StoreNode) -> None:
        super().__init__()
        self.store = store

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Store {self.store.name} keeps its objects in:")
            yield Input(str(self.store.directory), id="store-path", compact=True)
            yield Label("copied to the clipboard where the terminal allows", classes="muted")
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        stop_blinking(self)
        self.query_one("#store-path", Input).select_all()

    def action_close(self) -> None:
        self.dismiss(None)


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
