"""The app factory shared by the CLI and the tests, and the node/echo status screen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Static

from qrtui.config import Config
from qrtui.dicom.echo import EchoResult, echo_remote, echo_store


@dataclass
class EchoAnswered(Message):
    result: EchoResult


class QrtuiApp(App[int]):
    CSS_PATH = "qrtui.tcss"
    TITLE = "qrtui"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "echo", "Echo all"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config

    def compose(self) -> ComposeResult:
        yield Header()
        client = f"Client AE: {self.config.client.aet}   Config: {self.config.path}"
        yield Static(client, id="client")
        yield DataTable(id="nodes", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#nodes", DataTable)
        table.add_columns("Node", "Role", "AE title", "Address", "Echo")
        for node in self.config.remotes:
            table.add_row(node.name, "remote", node.aet, node.address, "…", key=f"r:{node.name}")
        for store in self.config.stores:
            role = "embedded store" if store.embedded else "store"
            table.add_row(store.name, role, store.aet, store.address, "…", key=f"s:{store.name}")
        self.action_echo()

    def action_echo(self) -> None:
        table = self.query_one("#nodes", DataTable)
        for row_key in list(table.rows):
            table.update_cell(row_key, table.ordered_columns[-1].key, "echoing…")
        for node in self.config.remotes:
            self._echo_one(f"r:{node.name}")
        for store in self.config.stores:
            self._echo_one(f"s:{store.name}")

    @work(thread=True, group="echo")
    def _echo_one(self, key: str) -> None:
        kind, name = key.split(":", 1)
        if kind == "r":
            result = echo_remote(self.config, self.config.remote(name))
        else:
            result = echo_store(self.config, self.config.store(name))
        self.post_message(EchoAnswered(result))

    def on_echo_answered(self, message: EchoAnswered) -> None:
        result = message.result
        key = f"{'r' if result.role == 'remote' else 's'}:{result.node}"
        text = str(result.outcome)
        if result.rtt_ms is not None:
            text += f" {result.rtt_ms:.0f} ms"
        if result.detail and not result.usable:
            text += f": {result.detail}"
        table = self.query_one("#nodes", DataTable)
        table.update_cell(key, table.ordered_columns[-1].key, text)


def create_app(config: Config) -> QrtuiApp:
    return QrtuiApp(config)


def run_app(config: Config) -> int:
    app = create_app(config)
    app.run()
    return app.return_code or 0
