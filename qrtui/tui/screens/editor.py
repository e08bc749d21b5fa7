"""Adding and editing a remote or a store, through the validated, atomic writer."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, Select, Static

from qrtui.config import (
    Config,
    ConfigError,
    RemoteNode,
    StoreNode,
    check_aet,
    check_port,
    name_problem,
)
from qrtui.tui.context import app_of, stop_blinking
from qrtui.tui.messages import EchoAnswered
from qrtui.tui.screens.confirm import ConfirmScreen, save_asking
from qrtui.tui.widgets.cells import echo_text
from qrtui.tui.widgets.tick import Tick

_REMOTE_FIELDS = (
    "name", "aet", "host", "port", "timeout", "dimse_timeout", "retrieve_deadline",
    "max_associations",
)  # fmt: skip
_STORE_FIELDS = ("name", "aet", "port", "directory", "host", "bind", "timeout")
_TLS_FIELDS = ("tls_ca", "tls_cert", "tls_key")
# What each field is called on screen: the configuration's key names do not fit 13 columns.
_LABELS = {
    "name": "name", "aet": "AE title", "host": "host", "port": "port",
    "timeout": "timeout (s)", "dimse_timeout": "DIMSE timeout", "retrieve_deadline": "deadline (s)",
    "max_associations": "associations", "directory": "directory", "bind": "bind address",
    "tls_ca": "TLS CA file", "tls_cert": "TLS cert file", "tls_key": "TLS key file",
}  # fmt: skip


def field_problem(field: str, value: str) -> str:
    """What is wrong with one field as typed, or ''."""
    value = value.strip()
    if field == "name":
        return (name_problem(value) or "") if value else "a node needs a name"
    if field == "aet":
        return check_aet(value) or ""
    if field in ("port", "max_associations"):
        if not value.isdigit():
            return f"{value!r} is not a whole number" if value else "a number is needed"
        if field == "port":
            return check_port(int(value)) or ""
        return "" if 1 <= int(value) <= 16 else f"{value} must be between 1 and 16"
    if field in ("timeout", "dimse_timeout", "retrieve_deadline"):
        try:
            number = float(value)
        except ValueError:
            return f"{value!r} is not a number of seconds"
        return "" if number > 0 else "must be above 0"
    return ""


class NodeEditorScreen(Screen[bool]):
    SUB_TITLE = "Node"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "save", "Save"),
        Binding("f3", "echo", "Echo"),
        Binding("escape", "leave", "Cancel"),
    ]

    HELP = """name: what the command line and profiles call the node.
AE title: the node's DICOM name, 1-16 characters (for a store: the C-MOVE
destination the PACS must know).
host, port: where the node listens (a store with a directory listens
itself).
timeout (s): to connect, to associate and for an echo.
DIMSE timeout: the longest wait for one answer of a query or retrieve.
deadline (s): the most one C-MOVE or C-GET may take, Pendings or not.
associations: requests run side by side (1-16); fewer if the node refuses.
retrieve: auto tries C-GET and falls back to C-MOVE; get needs no inbound
port.
directory: where an embedded store keeps its files and index.
bind address: the address the embedded store listens on (0.0.0.0: all).
TLS: DICOM over TLS; the CA file verifies the node, cert and key are ours.
Each field is checked as you type; F2 saves through the same validated,
atomic writer as the command line, F3 echoes the node as typed, Esc leaves
(asking first when something was changed)."""

    def __init__(self, kind: str, name: str | None) -> None:
        super().__init__()
        self.kind, self.original = kind, name

    def _node(self) -> RemoteNode | StoreNode | None:
        config = app_of(self).config
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
                    yield Label(_LABELS[field], classes="label")
                    yield Input("" if value is None else str(value), id=field, compact=True,
                                max_length=16 if field == "aet" else 0)  # fmt: skip
            if self.kind == "remote":
                with Horizontal(classes="row"):
                    yield Label("retrieve", classes="label")
                    current = node.retrieve if isinstance(node, RemoteNode) else "auto"
                    yield Select(
                        [("auto: C-GET where it works, else C-MOVE", "auto"),
                         ("C-MOVE to a store", "move"), ("C-GET (no inbound port)", "get")],
                        value=current, id="retrieve", compact=True, allow_blank=False,
                    )  # fmt: skip
            with Horizontal(classes="row"):
                yield Label("tls", classes="label")
                yield Tick("DICOM TLS", bool(node and node.tls), id="tls")
            for field in _TLS_FIELDS:
                value = getattr(node or blank, field)
                with Horizontal(classes="row"):
                    yield Label(_LABELS[field], classes="label")
                    yield Input(value or "", id=field, compact=True, placeholder="a file path")
        # below the fields, always in view at 80x24: what is wrong, what an echo said
        yield Static(id="error", markup=False)
        yield Static(id="echo", markup=False)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        stop_blinking(self)
        self.query_one("#name", Input).focus()
        self.as_opened = self._typed()

    def _typed(self) -> dict[str, str]:
        return {str(field.id): field.value for field in self.query(Input)}

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
        tls_on = self.query_one("#tls", Tick).value
        tls_ca, tls_cert, tls_key = (value(field) or None for field in _TLS_FIELDS)
        if self.kind == "remote":
            remote = node if isinstance(node, RemoteNode) else RemoteNode("", "", "")
            return replace(
                remote,
                name=value("name"),
                aet=value("aet"),
                host=value("host"),
                port=number("port", int),
                timeout=number("timeout", float),
                dimse_timeout=number("dimse_timeout", float),
                retrieve_deadline=number("retrieve_deadline", float),
                max_associations=number("max_associations", int),
                retrieve=str(self.query_one("#retrieve", Select).value),
                tls=tls_on, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key,
            )  # fmt: skip
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
            timeout=number("timeout", float),
            tls=tls_on, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key,
        )  # fmt: skip

    def on_input_changed(self, event: Input.Changed) -> None:
        """Each field is checked as it is typed: marked, and said on the line in view."""
        field = str(event.input.id)
        problem = field_problem(field, event.value)
        event.input.set_class(bool(problem), "-invalid")
        error = self.query_one("#error", Static)
        if problem:
            error.update(f"{_LABELS.get(field, field)}: {problem}")
            return
        others = [
            f"{_LABELS.get(str(f.id), f.id)}: {field_problem(str(f.id), f.value)}"
            for f in self.query(Input)
            if field_problem(str(f.id), f.value)
        ]
        error.update(others[0] if others else "")

    def action_save(self) -> None:
        app = app_of(self)
        error = self.query_one("#error", Static)
        try:
            node = self.built()
            config = _with_node(app.config, self.kind, self.original, node)

            def saved(written: Config) -> None:
                where = written.path  # a line of its own: a toast breaks a long path anywhere
                self.notify(f"Saved {self.kind} {node.name} to {where.name}\nin {where.parent}")
                self.dismiss(True)

            save_asking(self, config, saved)
        except ConfigError as exc:
            error.update(f"Not saved: {exc}")

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
        from qrtui import worker

        self.post_message(EchoAnswered(worker.echo(app_of(self).config, node)))

    def on_echo_answered(self, message: EchoAnswered) -> None:
        self.query_one("#echo", Static).update(f"Echo: {echo_text(message.result)}")

    def action_leave(self) -> None:
        if self._typed() == self.as_opened:
            self.dismiss(False)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.dismiss(False)

        self.app.push_screen(ConfirmScreen("Leave without saving your changes?"), answered)


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
