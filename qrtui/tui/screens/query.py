"""The query form: remote and store, modalities, dates, terms, options."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Select, Static

from qrtui.config import GROUP_NAMES, Config, ConfigError, Profile
from qrtui.query import QueryError, QueryParams, build_query, parse_date, parse_hhmm
from qrtui.selection import parse_terms
from qrtui.status import usage_problem
from qrtui.tui.context import app_of, stop_blinking
from qrtui.tui.screens.backfill import BackfillScreen
from qrtui.tui.screens.confirm import ChoiceScreen, save_asking
from qrtui.tui.screens.profiles import ProfileNameScreen, ProfilePickerScreen, profile_summary
from qrtui.tui.screens.results import ResultsScreen
from qrtui.tui.widgets.tick import Tick
from qrtui.uistate import last_choice, remember_choice
from qrtui.windows import day_windows

_DATE_FIELDS = ("date_from", "date_until", "single_date")
_TIME_FIELDS = ("time_from", "time_until")
_TERM_FIELDS = ("desc_exclude", "desc_include", "station_exclude", "station_include")
_GROUP_BOXES = ("ct", "mg", "fl", "dx")


class QueryScreen(Screen[None]):
    SUB_TITLE = "Query"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f5", "run", "Run query"),
        Binding("f6", "load_profile", "Load"),
        Binding("f7", "save_profile", "Save as"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    HELP = """What to ask the remote, and where the objects go.
Dates: yyyy-mm-dd, today, yesterday, or Nd for N days ago (7d). From and
Until take a range (Until empty: today); One date with a Time window, HHMM
to HHMM, asks part of one day.
Groups: CT covers CT, PET-CT and NM; MG mammography; FL fluoroscopy (RF,
XA); DX planar radiography (DX, CR). A study is judged by the first group it
fits.
SR only: studies holding nothing but SR objects (a dose import); it excludes
the groups.
Terms: comma-separated words; a study whose description (or station) holds
an excluded word is left out; with include words, only studies holding one.
Toshiba: CT without an RDSR brings its dose summary and first images.
Empty SR: SR series of unknown type are taken as dose objects unread.
Skip what is held: off fetches again what the store already holds.
F5 plans the query and shows it before anything is fetched; F6 loads a saved
query, F7 saves the form as one (for qrtui run --profile NAME)."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: Profile | None = None  # the saved query last loaded or saved

    def compose(self) -> ComposeResult:
        app = app_of(self)
        config, today = app.config, app.today()
        remotes = [(f"{n.name} ({n.aet})", n.name) for n in config.remotes]
        stores = [(f"{n.name} ({n.aet})", n.name) for n in config.stores]
        last = last_choice(config.path)
        # the last choice made with this file, where it still names a node
        chosen = {  # given at construction: a value set before mount is not shown
            name: last[name] if last.get(name) in dict(options).values() else options[0][1]
            for name, options in (("remote", remotes), ("store", stores))
            if options
        }
        remote: Select[str] = _select(remotes, "remote", chosen.get("remote"))
        store: Select[str] = _select(stores, "store", chosen.get("store"))
        every = app.demo  # the demo shows every rule: every modality ticked
        yield Header()
        with VerticalScroll(id="form"):
            with Horizontal(classes="row"):
                yield Label("Remote", classes="label")
                yield remote
                yield Label("Store", classes="label2")
                yield store
            with Horizontal(classes="row"):
                yield Label("Modalities", classes="label")
                yield Tick("CT", True, id="ct")
                yield Tick("MG", every, id="mg")
                yield Tick("FL", every, id="fl")
                yield Tick("DX", every, id="dx")
                yield Tick("SR only", id="sr")
            with Horizontal(classes="row"):
                yield Label("From", classes="label")
                yield self._input("date_from", str(today.fromordinal(today.toordinal() - 1)))
                yield Label("Until", classes="label2")
                yield self._input("date_until", str(today))
            with Horizontal(classes="row"):
                yield Label("One date", classes="label")
                yield self._input("single_date", "", "or a single date")
                yield Label("Time", classes="label2")
                yield self._input("time_from", "", "HHMM", classes="time")
                yield Label("to", classes="short")
                yield self._input("time_until", "", "HHMM", classes="time")
            with Horizontal(classes="row"):
                yield Label("Desc. excl.", classes="label")
                yield self._input("desc_exclude", "", "terms, comma separated")
                yield Label("incl.", classes="label2")
                yield self._input("desc_include", "", "terms")
            with Horizontal(classes="row"):
                yield Label("Station excl.", classes="label")
                yield self._input("station_exclude", "", "terms")
                yield Label("incl.", classes="label2")
                yield self._input("station_include", "", "terms")
            with Horizontal(classes="row"):
                yield Label("Advanced", classes="label")
                yield Tick("Skip what is held", True, id="ignore_held")
                yield Tick("Toshiba", id="toshiba")
                yield Tick("Empty SR", id="emptysr")
            yield Static(id="error", markup=False)
            yield Button("Run query (F5)", id="run", variant="primary", compact=True)
        yield Footer(show_command_palette=False)

    @staticmethod
    def _input(field: str, value: str, placeholder: str = "", classes: str = "") -> Input:
        placeholder = placeholder or "yyyy-mm-dd, today, yesterday, Nd"
        return Input(value, placeholder=placeholder, id=field, compact=True, classes=classes)

    def on_mount(self) -> None:
        stop_blinking(self)

    @on(Checkbox.Changed)
    def _exclusive_sr_only(self, event: Checkbox.Changed) -> None:
        box = event.checkbox.id
        if not event.value:
            return
        if box == "sr":
            for name in _GROUP_BOXES:
                self.query_one(f"#{name}", Checkbox).value = False
        elif box in _GROUP_BOXES:
            self.query_one("#sr", Checkbox).value = False

    @on(Input.Changed)
    def _check_field(self, event: Input.Changed) -> None:
        problem = self._field_problem(event.input)
        event.input.set_class(bool(problem), "-invalid")
        error = self.query_one("#error", Static)
        if str(error.render()).startswith("Cannot run:"):  # F5 refused: say why as it is now
            try:
                self.params()
            except QueryError as exc:
                error.update(f"Cannot run: {exc}")
            else:
                error.update("")

    def _field_problem(self, field: Input) -> str:
        value = field.value.strip()
        if not value:
            return ""
        try:
            if field.id in _DATE_FIELDS:
                parse_date(value, app_of(self).today())
            elif field.id in _TIME_FIELDS:
                parse_hhmm(value, "time")
        except QueryError as exc:
            return str(exc)
        return ""

    @on(Button.Pressed, "#run")
    def _run_pressed(self) -> None:
        self.action_run()

    def params(self) -> QueryParams:
        """The form as a query; QueryError says what is wrong."""
        for field in self.query(Input):
            problem = self._field_problem(field)
            if problem:
                field.add_class("-invalid")
                raise QueryError(problem)

        def text(name: str) -> str | None:
            return self.query_one(f"#{name}", Input).value.strip() or None

        def ticked(name: str) -> bool:
            return self.query_one(f"#{name}", Checkbox).value

        single = text("single_date")
        return build_query(
            today=app_of(self).today(),
            ct=ticked("ct"),
            mg=ticked("mg"),
            fl=ticked("fl"),
            dx=ticked("dx"),
            sr=ticked("sr"),
            date_from=None if single else text("date_from"),
            date_until=None if single else text("date_until"),
            single_date=single,
            time_from=text("time_from"),
            time_until=text("time_until"),
            desc_exclude=text("desc_exclude"),
            desc_include=text("desc_include"),
            station_exclude=text("station_exclude"),
            station_include=text("station_include"),
            dup=not ticked("ignore_held"),
            toshiba=ticked("toshiba"),
            emptysr=ticked("emptysr"),
        )

    # ------------------------------------------------------------ saved queries

    def form_profile(self, name: str, overlap: str = "1d") -> Profile:
        """The form as a saved query (dates are not part of one)."""

        def terms(field: str) -> tuple[str, ...]:
            return parse_terms(self.query_one(f"#{field}", Input).value)

        def ticked(box: str) -> bool:
            return self.query_one(f"#{box}", Checkbox).value

        return Profile(
            name=name,
            remote=str(self.query_one("#remote", Select).value),
            store=str(self.query_one("#store", Select).value),
            groups=tuple(g for g in GROUP_NAMES if ticked(g)),
            sr_only=ticked("sr"),
            include=terms("desc_include"),
            exclude=terms("desc_exclude"),
            station_include=terms("station_include"),
            station_exclude=terms("station_exclude"),
            toshiba=ticked("toshiba"),
            emptysr=ticked("emptysr"),
            dup=not ticked("ignore_held"),
            overlap=overlap,
        )

    def load_profile(self, profile: Profile) -> None:
        self.query_one("#remote", Select).value = profile.remote
        self.query_one("#store", Select).value = profile.store
        for group in GROUP_NAMES:
            self.query_one(f"#{group}", Checkbox).value = group in profile.groups
        self.query_one("#sr", Checkbox).value = profile.sr_only
        for field, terms in (
            ("desc_include", profile.include),
            ("desc_exclude", profile.exclude),
            ("station_include", profile.station_include),
            ("station_exclude", profile.station_exclude),
        ):
            self.query_one(f"#{field}", Input).value = ", ".join(terms)
        self.query_one("#toshiba", Checkbox).value = profile.toshiba
        self.query_one("#emptysr", Checkbox).value = profile.emptysr
        self.query_one("#ignore_held", Checkbox).value = not profile.dup
        self.loaded = profile
        self._say(f"Loaded {profile_summary(profile)}")

    def _say(self, text: str, error: bool = False) -> None:
        line = self.query_one("#error", Static)
        line.set_class(not error, "-note")
        line.update(text)

    def action_load_profile(self) -> None:
        profiles = app_of(self).config.profiles
        if not profiles:
            self.notify("No saved queries yet: F7 saves the form as one.", severity="warning")
            return

        def picked(name: str | None) -> None:
            if name:
                self.load_profile(app_of(self).config.profile(name))

        self.app.push_screen(ProfilePickerScreen(profiles), picked)

    def action_save_profile(self) -> None:
        config = app_of(self).config
        taken = tuple(p.name for p in config.profiles)
        default = self.loaded.name if self.loaded else ""

        def named(name: str | None) -> None:
            if not name:
                return
            current = next((p for p in config.profiles if p.name == name), None)
            profile = self.form_profile(name, current.overlap if current else "1d")
            others = [p for p in config.profiles if p.name != name]
            changed = replace(config, profiles=(*others, profile))

            def saved(written: Config) -> None:
                self.loaded = profile
                self._say(f"Saved {profile_summary(profile)} to {written.path}")

            try:
                save_asking(self, changed, saved)
            except ConfigError as exc:
                self._say(f"Not saved: {exc}", error=True)

        self.app.push_screen(ProfileNameScreen(default, taken), named)

    def action_run(self) -> None:
        error = self.query_one("#error", Static)
        error.remove_class("-note")
        try:
            params = self.params()
        except QueryError as exc:
            error.update(f"Cannot run: {exc}")
            return
        config = app_of(self).config
        remote = config.remote(str(self.query_one("#remote", Select).value))
        store = config.store(str(self.query_one("#store", Select).value))
        problem = usage_problem(remote, store)
        if problem:
            error.update(f"Cannot run: {problem}")
            return
        error.update("")
        loaded = self.loaded
        profile = None
        if loaded is not None and self.form_profile(loaded.name, loaded.overlap) == loaded:
            profile = loaded.name  # run as the saved query: its history says so
        remember_choice(config.path, remote=remote.name, store=store.name)
        days = day_windows(params, app_of(self).today())
        if days is None:
            self.app.push_screen(ResultsScreen(remote, store, params, profile))
            return

        def chosen(how: str | None) -> None:
            if how == "backfill":
                self.app.push_screen(BackfillScreen(remote, store, params, len(days), profile))
            elif how == "plan":
                self.app.push_screen(ResultsScreen(remote, store, params, profile))

        self.app.push_screen(
            ChoiceScreen(
                f"{len(days)} days: run them as a backfill, or plan the whole range first?",
                [("b", "backfill: window by window, resumable, the rules choose", "backfill"),
                 ("p", "plan the whole range, then choose what to fetch", "plan")],
            ),
            chosen,
        )  # fmt: skip


def _select(options: list[tuple[str, str]], name: str, value: str | None) -> Select[str]:
    if value is None:  # no node of the kind yet
        return Select(options, id=name, compact=True, allow_blank=False)
    return Select(options, id=name, compact=True, allow_blank=False, value=value)
