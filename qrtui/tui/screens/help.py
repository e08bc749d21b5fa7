"""Help for the screen underneath: every key, made from its bindings so it cannot drift, and
what its columns and words mean."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static


def key_lines(screen: Screen[Any]) -> list[str]:
    """One line per action of the screen and of the app: its keys and what it does."""
    seen: set[str] = set()
    lines = []
    bindings: list[Binding] = []
    for source in (type(screen).BINDINGS, type(screen.app).BINDINGS):
        bindings += [b for b in source if isinstance(b, Binding)]
    for binding in bindings:
        if not binding.description or binding.action in seen:
            continue
        seen.add(binding.action)
        keys = ", ".join(key_name(k) for k in binding.key.split(","))
        lines.append(f"{keys:>12}  {binding.description}")
    lines.append(f"{'Ctrl+P':>12}  every action, by name (the command palette)")
    return lines


def key_name(key: str) -> str:
    names = {"enter": "Enter", "escape": "Esc", "space": "Space", "question_mark": "?",
             "slash": "/"}  # fmt: skip
    if key in names:
        return names[key]
    if key.startswith("ctrl+"):
        return "Ctrl+" + key.removeprefix("ctrl+").upper()
    return key.upper() if key.startswith("f") and key[1:].isdigit() else key


class HelpScreen(Screen[None]):
    SUB_TITLE = "Help"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "app.pop_screen", "Close"),
    ]

    def __init__(self, about: Screen[Any]) -> None:
        super().__init__()
        self.about = about

    def compose(self) -> ComposeResult:
        title = getattr(self.about, "SUB_TITLE", "") or "this screen"
        text = [f"Keys of {title}:", *key_lines(self.about)]
        explained = getattr(self.about, "HELP", "")
        if explained:
            text += ["", *explained.strip("\n").splitlines()]
        yield Header()
        with VerticalScroll(id="detail"):
            yield Static("\n".join(text), id="help-text", markup=False)
        yield Footer(show_command_palette=False)
