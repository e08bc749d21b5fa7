"""The screens: nodes and echo status, query form, results and retrieve log, node editor.

No DICOM here: blocking work runs in thread workers calling the headless core, and comes
back as messages.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    ProgressBar,
    RichLog,
    Select,
    Static,
)

from qrtui.config import Config, ConfigError, RemoteNode, StoreNode, save_config
from qrtui.events import Event, FunnelProgress, Notice, RetrieveProgress, size_text
from qrtui.query import QueryError, QueryParams, build_query, parse_date, parse_hhmm
from qrtui.selection import Decision
from qrtui.status import EXIT_UNREACHABLE, usage_problem

if TYPE_CHECKING:
    from qrtui import worker
    from qrtui.dicom.echo import EchoResult
    from qrtui.tui.app import QrtuiApp


def _app(screen: Screen[Any]) -> QrtuiApp:
    return cast("QrtuiApp", screen.app)


def _stop_blinking(screen: Screen[Any]) -> None:
    if not _app(screen).cursor_blink:
        for field in screen.query(Input):
            field.cursor_blink = False


# ---------------------------------------------------------------- messages


@dataclass
class EchoAnswered(Message):
    result: EchoResult


@dataclass
class FunnelUpdate(Message):
    event: FunnelProgress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, FunnelUpdate)


@dataclass
class RetrieveUpdate(Message):
    event: RetrieveProgress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RetrieveUpdate)


@dataclass
class LogLine(Message):
    text: str


@dataclass
class JobDone(Message):
    phase: str  # "plan" or "retrieve"
    outcome: worker.JobOutcome


def echo_text(result: EchoResult) -> str:
    text = str(result.outcome)
    if result.rtt_ms is not None:
        text += f" {result.rtt_ms:.0f} ms"
    if result.detail and not result.usable:
        text += f": {result.detail}"
    return text


# ---------------------------------------------------------------- nodes


class NodesScreen(Screen[None]):
    SUB_TITLE = "Nodes"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "query", "Query"),
        Binding("e", "echo", "Echo"),
        Binding("enter", "edit", "Edit", priority=True),
        Binding("a", "add_remote", "+Remote"),
        Binding("s", "add_store", "+Store"),
        Binding("d", "delete", "Delete"),
        Binding("q", "app.quit", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="client")
        yield DataTable(id="nodes", cursor_type="row")
        yield Static(id="hint")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#nodes", DataTable)
        table.add_columns("Node", "Role", "AE title", "Address", "Echo")
        self.reload(echo=_app(self).echo_on_start)

    def reload(self, echo: bool = True) -> None:
        config = _app(self).config
        self.query_one("#client", Static).update(
            f"Client AE: {config.client.aet}   Config: {config.path}"
        )
        table = self.query_one("#nodes", DataTable)
        table.clear()
        waiting = "echoing…" if echo else "not checked (e)"
        for node in config.remotes:
            table.add_row(
                node.name, f"remote ({node.retrieve})", node.aet, node.address, waiting,
                key=f"r:{node.name}",
            )  # fmt: skip
        for store in config.stores:
            role = "embedded store" if store.embedded else "store"
            table.add_row(
                store.name, role, store.aet, store.address, waiting, key=f"s:{store.name}"
            )
        hint = self.query_one("#hint", Static)
        hint.update("No nodes yet: a adds a remote, s a store.")
        hint.display = not (config.remotes or config.stores)
        if echo:
            self.action_echo()

    def action_echo(self) -> None:
        table = self.query_one("#nodes", DataTable)
        column = table.ordered_columns[-1].key
        for row_key in list(table.rows):
            table.update_cell(row_key, column, "echoing…")
            self._echo_one(str(row_key.value))

    @work(thread=True, group="echo")
    def _echo_one(self, key: str) -> None:
        from qrtui.dicom.echo import echo_remote, echo_store

        config = _app(self).config
        kind, name = key.split(":", 1)
        if kind == "r":
            result = echo_remote(config, config.remote(name))
        else:
            result = echo_store(config, config.store(name))
        self.post_message(EchoAnswered(result))

    def on_echo_answered(self, message: EchoAnswered) -> None:
        result = message.result
        key = f"{'r' if result.role == 'remote' else 's'}:{result.node}"
        table = self.query_one("#nodes", DataTable)
        if key in table.rows:
            table.update_cell(key, table.ordered_columns[-1].key, echo_text(result))

    def _selected(self) -> tuple[str, str] | None:
        table = self.query_one("#nodes", DataTable)
        if not table.rows:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        kind, name = str(key).split(":", 1)
        return kind, name

    def action_query(self) -> None:
        config = _app(self).config
        if not config.remotes or not config.stores:
            self.notify("Add a remote and a store first (a, s).", severity="warning")
            return
        self.app.push_screen(QueryScreen())

    def action_add_remote(self) -> None:
        self.app.push_screen(NodeEditorScreen("remote", None), self._edited)

    def action_add_store(self) -> None:
        self.app.push_screen(NodeEditorScreen("store", None), self._edited)

    def action_edit(self) -> None:
        selected = self._selected()
        if selected:
            kind, name = selected
            self.app.push_screen(
                NodeEditorScreen("remote" if kind == "r" else "store", name), self._edited
            )

    def action_delete(self) -> None:
        selected = self._selected()
        if not selected:
            return
        kind, name = selected
        role = "remote" if kind == "r" else "store"

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            config = _app(self).config
            if kind == "r":
                changed = replace(
                    config, remotes=tuple(n for n in config.remotes if n.name != name)
                )
            else:
                changed = replace(config, stores=tuple(n for n in config.stores if n.name != name))
            try:
                _app(self).config = save_config(changed)
            except (ConfigError, OSError) as exc:
                self.notify(str(exc), severity="error")
                return
            self.notify(f"Deleted {role} {name}")
            self.reload(echo=False)

        self.app.push_screen(ConfirmScreen(f"Delete {role} {name!r}?"), confirmed)

    def _edited(self, saved: bool | None) -> None:
        if saved:
            self.reload()


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


# ---------------------------------------------------------------- query form

_DATE_FIELDS = ("date_from", "date_until", "single_date")
_TIME_FIELDS = ("time_from", "time_until")
_TERM_FIELDS = ("desc_exclude", "desc_include", "station_exclude", "station_include")
_GROUP_BOXES = ("ct", "mg", "fl", "dx")


class QueryScreen(Screen[None]):
    SUB_TITLE = "Query"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f5", "run", "Run query"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def compose(self) -> ComposeResult:
        app = _app(self)
        config, today = app.config, app.today()
        remotes = [(f"{n.name} ({n.aet})", n.name) for n in config.remotes]
        stores = [(f"{n.name} ({n.aet})", n.name) for n in config.stores]
        yield Header()
        with VerticalScroll(id="form"):
            with Horizontal(classes="row"):
                yield Label("Remote", classes="label")
                yield Select(remotes, id="remote", compact=True, allow_blank=False)
                yield Label("Store", classes="label2")
                yield Select(stores, id="store", compact=True, allow_blank=False)
            with Horizontal(classes="row"):
                yield Label("Modalities", classes="label")
                yield Checkbox("CT", True, id="ct")
                yield Checkbox("MG", id="mg")
                yield Checkbox("FL", id="fl")
                yield Checkbox("DX", id="dx")
                yield Checkbox("SR only", id="sr")
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
                yield Checkbox("Skip what is held", True, id="ignore_held")
                yield Checkbox("Toshiba", id="toshiba")
                yield Checkbox("Empty SR", id="emptysr")
            yield Static(id="error")
            yield Button("Run query (F5)", id="run", variant="primary", compact=True)
        yield Footer()

    @staticmethod
    def _input(field: str, value: str, placeholder: str = "", classes: str = "") -> Input:
        placeholder = placeholder or "yyyy-mm-dd, today, yesterday, Nd"
        return Input(value, placeholder=placeholder, id=field, compact=True, classes=classes)

    def on_mount(self) -> None:
        _stop_blinking(self)

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
        event.input.set_class(bool(self._field_problem(event.input)), "-invalid")

    def _field_problem(self, field: Input) -> str:
        value = field.value.strip()
        if not value:
            return ""
        try:
            if field.id in _DATE_FIELDS:
                parse_date(value, _app(self).today())
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
            today=_app(self).today(),
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

    def action_run(self) -> None:
        error = self.query_one("#error", Static)
        try:
            params = self.params()
        except QueryError as exc:
            error.update(f"Cannot run: {exc}")
            return
        config = _app(self).config
        remote = config.remote(str(self.query_one("#remote", Select).value))
        store = config.store(str(self.query_one("#store", Select).value))
        problem = usage_problem(remote, store)
        if problem:
            error.update(f"Cannot run: {problem}")
            return
        error.update("")
        self.app.push_screen(ResultsScreen(remote, store, params))


# ---------------------------------------------------------------- results and retrieve


class ResultsScreen(Screen[None]):
    SUB_TITLE = "Results"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "retrieve", "Retrieve"),
        Binding("c", "cancel", "Cancel"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(
        self,
        remote: RemoteNode,
        store: StoreNode,
        params: QueryParams,
        profile: str | None = None,
    ) -> None:
        super().__init__()
        self.remote, self.store, self.params = remote, store, params
        self.profile = profile  # the saved query the form was loaded from, if unchanged
        self.cancel = threading.Event()
        self.phase = "plan"  # plan, planned, retrieve, done
        self.busy = False
        self.plan_outcome: worker.JobOutcome | None = None
        self.retrieve_outcome: worker.JobOutcome | None = None
        self.context: worker.RunContext | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="status")
        yield Static(id="funnel")
        yield DataTable(id="studies", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=1, id="progress", show_eta=False)
            yield Static(id="retrieve-status")
        yield RichLog(id="log", wrap=True, max_lines=2000)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#studies", DataTable)
        _fixed_columns(table, _PLAN_COLUMNS, [])
        self.query_one("#progress-row").display = False
        self.query_one("#status", Static).update(f"Querying {self.remote.name}…")
        self._log(f"query {self.remote.name} for store {self.store.name}")
        self.busy = True
        self._plan()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retrieve":
            result = self.plan_outcome.result if self.plan_outcome else None
            return self.phase == "planned" and not self.busy and bool(result and result.to_fetch)
        if action == "cancel":
            return self.busy
        return True

    # ------------------------------------------------------------ workers

    def _emit(self, event: Event) -> None:
        if isinstance(event, FunnelProgress):
            self.post_message(FunnelUpdate(event))
        elif isinstance(event, RetrieveProgress):
            self.post_message(RetrieveUpdate(event))
        elif isinstance(event, Notice):
            self.post_message(LogLine(event.text))

    @work(thread=True, group="job", exit_on_error=False)
    def _plan(self) -> None:
        from qrtui import worker

        config = _app(self).config
        self.context = worker.RunContext(face="tui", profile=self.profile)
        outcome = worker.plan(
            config, self.remote, self.store, self.params, emit=self._emit, cancel=self.cancel
        )
        if outcome.status == EXIT_UNREACHABLE:
            worker.record_alone(self.store, self.context, self.remote, self.params, outcome)
        self.post_message(JobDone("plan", outcome))

    @work(thread=True, group="job", exit_on_error=False)
    def _retrieve(self, outcome: worker.JobOutcome) -> None:
        from qrtui import worker

        config = _app(self).config
        assert outcome.result is not None
        done = worker.retrieve(
            config, self.remote, self.store, outcome.result, emit=self._emit, cancel=self.cancel,
            context=self.context, params=self.params,
        )  # fmt: skip
        self.post_message(JobDone("retrieve", done))

    # ------------------------------------------------------------ updates

    def _log(self, line: str) -> None:
        self.query_one("#log", RichLog).write(line)

    def on_log_line(self, message: LogLine) -> None:
        self._log(message.text)

    def on_funnel_update(self, message: FunnelUpdate) -> None:
        event = message.event
        total = f"/{event.total}" if event.total is not None else ""
        self.query_one("#status", Static).update(
            f"Querying {self.remote.name}: {event.stage} {event.done}{total}"
        )
        self._show_counts(event.counts)

    def _show_counts(self, counts: dict[str, int] | Any) -> None:
        parts = [f"{name} {value}" for name, value in counts.items() if value]
        self.query_one("#funnel", Static).update(" · ".join(parts))

    def on_retrieve_update(self, message: RetrieveUpdate) -> None:
        e = message.event
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=max(e.studies_total, 1), progress=e.studies_done)
        left = f", {e.remaining} left" if e.remaining is not None else ""
        self.query_one("#retrieve-status", Static).update(
            f"{e.completed} done, {e.failed} failed, {e.warning} warn{left}, {size_text(e.bytes)}"
        )
        self.query_one("#status", Static).update(f"Retrieving: {e.current}")

    def on_job_done(self, message: JobDone) -> None:
        self.busy = False
        outcome = message.outcome
        if message.phase == "plan":
            self.plan_outcome = outcome
            self._show_plan(outcome)
        else:
            self.retrieve_outcome = outcome
            self._show_retrieved(outcome)
        self.refresh_bindings()

    def _show_plan(self, outcome: worker.JobOutcome) -> None:
        status = self.query_one("#status", Static)
        if outcome.result is None:
            status.update(f"Query failed: {outcome.message}")
            self._log(f"query stopped: {outcome.message}")
            self.phase = "done"
            return
        result = outcome.result
        self._show_counts(result.counts)
        groups = ", ".join(f"{g} {n}" for g, n in result.per_group().items()) or "none"
        fetch = len(result.to_fetch)
        status.update(
            f"Plan: {fetch} to fetch ({groups}), {len(result.dropped)} dropped"
            + ("; r retrieves" if fetch else "")
        )
        table = self.query_one("#studies", DataTable)
        rows = []
        for plan in result.plans:
            picks = plan.picks + plan.probe
            instances = sum(
                len(p.sop_instance_uids) or (p.series.instance_count or 0) for p in picks
            )
            decision = "fetch" if plan.decision is Decision.RETRIEVE else "inspect"
            rows.append(
                (plan.study, plan.group, len(picks), instances, f"{decision}: {plan.reason}")
            )
        for study, reason in result.dropped:
            group = "/".join(study.modalities[:2]) or "-"
            rows.append((study, group, 0, 0, f"dropped: {reason}"))
        rows.sort(
            key=lambda r: (r[4].startswith("dropped"), r[0].study_date, r[1], r[0].description)
        )
        cells = [
            (
                _date(study.study_date), group, study.description[:22], str(series or ""),
                str(instances or ""), decision,
            )
            for study, group, series, instances, decision in rows
        ]  # fmt: skip
        _fixed_columns(table, _PLAN_COLUMNS, cells)
        for row in cells:
            table.add_row(*row)
        self._log(f"plan ready: {fetch} to fetch, {len(result.dropped)} dropped")
        self.phase = "planned"

    def _show_retrieved(self, outcome: worker.JobOutcome) -> None:
        summary = outcome.summary
        status = self.query_one("#status", Static)
        self.phase = "done"
        if summary is None:
            status.update(f"Retrieve failed: {outcome.message}")
            self._log(f"retrieve stopped: {outcome.message}")
            return
        for line in summary.gaps:
            self._log(f"gap: {line}")
        verdict = (
            "cancelled" if summary.cancelled else ("done" if outcome.status == 0 else "partly done")
        )
        status.update(
            f"Retrieve {verdict}: {summary.stored} stored, {summary.failed} failed, "
            f"{summary.skipped_already_held} already held"
        )
        if outcome.message:
            self._log(outcome.message)
        self._log(
            f"retrieve {verdict}: {summary.completed} completed, {summary.failed} failed, "
            f"{summary.warning} warning, {summary.received} received, {summary.stored} stored"
        )
        if summary.cancelled:
            self._log(
                "the association was cancelled (C-CANCEL, then aborted if needed); "
                "every stored file is complete, the next run fetches the rest"
            )

    # ------------------------------------------------------------ actions

    def action_retrieve(self) -> None:
        if not self.check_action("retrieve", ()) or self.plan_outcome is None:
            return
        self.phase = "retrieve"
        self.busy = True
        self.query_one("#progress-row").display = True
        self.refresh_bindings()
        self._log(
            f"retrieve from {self.remote.name} ({self.remote.retrieve}) into {self.store.name}"
        )
        self._retrieve(self.plan_outcome)

    def action_cancel(self) -> None:
        if not self.busy or self.cancel.is_set():
            return
        self.cancel.set()
        self._log("cancelling: C-CANCEL sent; the association is aborted if the node does not stop")

    def action_back(self) -> None:
        if self.busy:
            self.notify("Cancel the running job first (c).", severity="warning")
            return
        self.app.pop_screen()


_PLAN_COLUMNS = ("Date", "Grp", "Description", "Ser", "Inst", "Decision")


def _fixed_columns(table: DataTable[Any], headers: tuple[str, ...], rows: list[Any]) -> None:
    """Columns as wide as their widest cell, set before the rows arrive: Textual's automatic
    widths may leave a row drawn at the header's width in its render cache."""
    table.clear(columns=True)
    for index, header in enumerate(headers):
        width = max([len(header), *(len(str(row[index])) for row in rows)])
        table.add_column(header, width=width)


def _date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 else value or "-"


# ---------------------------------------------------------------- node editor

_REMOTE_FIELDS = ("name", "aet", "host", "port", "timeout")
_STORE_FIELDS = ("name", "aet", "port", "directory", "host", "bind")


class NodeEditorScreen(Screen[bool]):
    SUB_TITLE = "Node"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "save", "Save"),
        Binding("f3", "echo", "Echo"),
        Binding("escape", "leave", "Cancel"),
    ]

    def __init__(self, kind: str, name: str | None) -> None:
        super().__init__()
        self.kind, self.original = kind, name

    def _node(self) -> RemoteNode | StoreNode | None:
        config = _app(self).config
        if self.original is None:
            return None
        return (
            config.remote(self.original) if self.kind == "remote" else config.store(self.original)
        )

    def compose(self) -> ComposeResult:
        node = self._node()
        title = f"{'Edit' if node else 'New'} {self.kind}" + (f" {node.name}" if node else "")
        yield Header()
        with VerticalScroll(id="editor"):
            yield Label(title, id="editor-title")
            fields = _REMOTE_FIELDS if self.kind == "remote" else _STORE_FIELDS
            blank = RemoteNode("", "", "") if self.kind == "remote" else StoreNode("", "")
            for field in fields:
                value = getattr(node or blank, field)
                with Horizontal(classes="row"):
                    yield Label(field, classes="label")
                    yield Input("" if value is None else str(value), id=field, compact=True)
            if self.kind == "remote":
                with Horizontal(classes="row"):
                    yield Label("retrieve", classes="label")
                    current = node.retrieve if isinstance(node, RemoteNode) else "move"
                    yield Select(
                        [("C-MOVE to a store", "move"), ("C-GET (no inbound port)", "get")],
                        value=current, id="retrieve", compact=True, allow_blank=False,
                    )  # fmt: skip
            yield Static(id="error")
            yield Static(id="echo")
        yield Footer()

    def on_mount(self) -> None:
        _stop_blinking(self)

    def built(self) -> RemoteNode | StoreNode:
        """The node as typed; ConfigError for what the type check alone can tell."""

        def value(field: str) -> str:
            return self.query_one(f"#{field}", Input).value.strip()

        def number(field: str, kind: type[int] | type[float]) -> Any:
            try:
                return kind(value(field))
            except ValueError:
                raise ConfigError(f"{field}: {value(field)!r} is not a number") from None

        if not value("name"):
            raise ConfigError("name: a node needs a name")
        node = self._node()
        if self.kind == "remote":
            remote = node if isinstance(node, RemoteNode) else RemoteNode("", "", "")
            return replace(
                remote,
                name=value("name"),
                aet=value("aet"),
                host=value("host"),
                port=number("port", int),
                timeout=number("timeout", float),
                retrieve=str(self.query_one("#retrieve", Select).value),
            )
        directory = value("directory")
        store = node if isinstance(node, StoreNode) else StoreNode("", "")
        return replace(
            store,
            name=value("name"),
            aet=value("aet"),
            port=number("port", int),
            directory=Path(directory).expanduser() if directory else None,
            host=value("host") or None,
            bind=value("bind") or "0.0.0.0",
        )

    def on_input_changed(self) -> None:
        self.query_one("#error", Static).update("")

    def action_save(self) -> None:
        app = _app(self)
        error = self.query_one("#error", Static)
        try:
            node = self.built()
            config = _with_node(app.config, self.kind, self.original, node)
            app.config = save_config(config)
        except ConfigError as exc:
            error.update(f"Not saved: {exc}")
            return
        except OSError as exc:
            error.update(f"Not saved: {exc.strerror or exc}")
            return
        self.notify(f"Saved {self.kind} {node.name} to {app.config.path}")
        self.dismiss(True)

    def action_echo(self) -> None:
        try:
            node = self.built()
        except ConfigError as exc:
            self.query_one("#error", Static).update(str(exc))
            return
        self.query_one("#echo", Static).update("echoing…")
        self._echo(node)

    @work(thread=True, group="editor-echo", exclusive=True)
    def _echo(self, node: RemoteNode | StoreNode) -> None:
        from qrtui.dicom.echo import echo_remote, echo_store

        config = _app(self).config
        if isinstance(node, RemoteNode):
            result = echo_remote(config, node)
        else:
            result = echo_store(config, node)
        self.post_message(EchoAnswered(result))

    def on_echo_answered(self, message: EchoAnswered) -> None:
        self.query_one("#echo", Static).update(f"Echo: {echo_text(message.result)}")

    def action_leave(self) -> None:
        self.dismiss(False)


def _with_node(
    config: Config, kind: str, original: str | None, node: RemoteNode | StoreNode
) -> Config:
    existing = config.remotes if kind == "remote" else config.stores
    if node.name != original and any(n.name == node.name for n in existing):
        raise ConfigError(f"name: a {kind} named {node.name!r} already exists")
    if kind == "remote":
        assert isinstance(node, RemoteNode)
        remotes = [n for n in config.remotes if n.name != original]
        index = next((i for i, n in enumerate(config.remotes) if n.name == original), len(remotes))
        remotes.insert(index, node)
        return replace(config, remotes=tuple(remotes))
    assert isinstance(node, StoreNode)
    stores = [n for n in config.stores if n.name != original]
    index = next((i for i, n in enumerate(config.stores) if n.name == original), len(stores))
    stores.insert(index, node)
    return replace(config, stores=tuple(stores))
