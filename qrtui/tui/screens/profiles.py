"""Choosing a saved query to load into the form, and naming the form to save it as one."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from qrtui.config import Profile, name_problem
from qrtui.tui.context import stop_blinking


def profile_summary(profile: Profile) -> str:
    groups = "SR only" if profile.sr_only else " ".join(g.upper() for g in profile.groups)
    text = f"{profile.name}: {profile.remote} -> {profile.store}, {groups}"
    if profile.exclude:
        text += f", excl. {', '.join(profile.exclude)}"
    return text


class ProfilePickerScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, profiles: tuple[Profile, ...]) -> None:
        super().__init__()
        self.profiles = profiles

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Load a saved query into the form (Enter)")
            yield OptionList(
                *(Option(profile_summary(p), id=p.name) for p in self.profiles), id="profiles"
            )
        yield Footer(show_command_palette=False)

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ProfileNameScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, name: str, taken: tuple[str, ...]) -> None:
        super().__init__()
        self.default, self.taken = name, taken

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Save the form as a query named (Enter):")
            yield Input(self.default, placeholder="nightly-ct", id="profile-name", compact=True)
            yield Static(id="name-note", classes="muted", markup=False)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        stop_blinking(self)
        self._note(self.default)

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self._note(event.value.strip())

    def _note(self, name: str) -> None:
        problem = name_problem(name) if name else "give it a name"
        if problem is None and name in self.taken:
            problem = "replaces the saved query of that name (its overlap stays)"
        self.query_one("#name-note", Static).update(problem or "a new saved query")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        if name and name_problem(name) is None:
            self.dismiss(name)

    def action_cancel(self) -> None:
        self.dismiss(None)
