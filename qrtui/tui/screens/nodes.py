"""The first screen: every remote and store with its echo status."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from qrtui.config import Config, ConfigError, StoreNode
from qrtui.tui.context import app_of
from qrtui.tui.messages import EchoAnswered
from qrtui.tui.screens.confirm import ConfirmScreen, save_asking
from qrtui.tui.screens.editor import NodeEditorScreen
from qrtui.tui.screens.history import HistoryScreen
from qrtui.tui.screens.query import QueryScreen
from qrtui.tui.widgets.cells import echo_text


class NodesScreen(Screen[None]):
    SUB_TITLE = "Nodes"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "query", "Query"),
        Binding("e", "echo", "Echo"),
        Binding("enter", "edit", "Edit", priority=True),
        Binding("a", "add_remote", "+Remote"),
        Binding("s", "add_store", "+Store"),
        Binding("d", "delete", "Delete"),
        Binding("h", "history", "History"),
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
        self.reload(echo=app_of(self).echo_on_start)

    def reload(self, echo: bool = True) -> None:
        config = app_of(self).config
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
        from qrtui import worker

        config = app_of(self).config
        kind, name = key.split(":", 1)
        node = config.remote(name) if kind == "r" else config.store(name)
        self.post_message(EchoAnswered(worker.echo(config, node)))

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
        config = app_of(self).config
        if not config.remotes or not config.stores:
            self.notify("Add a remote and a store first (a, s).", severity="warning")
            return
        self.app.push_screen(QueryScreen())

    def _selected_embedded_store(self) -> StoreNode | None:
        selected = self._selected()
        if not selected or selected[0] != "s":
            return None
        store = app_of(self).config.store(selected[1])
        return store if store.embedded else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "history":  # shown with the cursor on a store that keeps one
            return self._selected_embedded_store() is not None
        return True

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.refresh_bindings()

    def action_history(self) -> None:
        store = self._selected_embedded_store()
        if store is not None:
            self.app.push_screen(HistoryScreen(store))

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
            config = app_of(self).config
            if kind == "r":
                changed = replace(
                    config, remotes=tuple(n for n in config.remotes if n.name != name)
                )
            else:
                changed = replace(config, stores=tuple(n for n in config.stores if n.name != name))

            def saved(written: Config) -> None:
                self.notify(f"Deleted {role} {name}")
                self.reload(echo=False)

            try:
                save_asking(self, changed, saved)
            except ConfigError as exc:
                self.notify(f"Not deleted: {exc}", severity="error")

        self.app.push_screen(ConfirmScreen(f"Delete {role} {name!r}?"), confirmed)

    def _edited(self, saved: bool | None) -> None:
        if saved:
            self.reload()
