"""The first screen: every remote, store and destination with its echo status."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from qrtui.config import Config, ConfigError, Destination, RemoteNode, StoreNode
from qrtui.events import size_text
from qrtui.learned import learned_summary
from qrtui.store import store_summary
from qrtui.tui.context import app_of
from qrtui.tui.messages import EchoAnswered, NodeDetail
from qrtui.tui.screens.confirm import ChoiceScreen, ConfirmScreen, PathScreen, save_asking
from qrtui.tui.screens.editor import NodeEditorScreen
from qrtui.tui.screens.history import HistoryScreen
from qrtui.tui.screens.probe import ProbeScreen
from qrtui.tui.screens.query import QueryScreen
from qrtui.tui.screens.summary import SummaryScreen
from qrtui.tui.widgets.cells import echo_text


class NodesScreen(Screen[None]):
    SUB_TITLE = "Nodes"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "query", "Query"),
        Binding("e", "echo", "Echo"),
        Binding("enter", "edit", "Edit", priority=True),
        Binding("a", "add", "Add"),
        Binding("d", "delete", "Del"),
        Binding("p", "probe", "Probe"),
        Binding("h", "history", "Runs"),
        Binding("s", "summary", "Doses"),
        Binding("o", "path", "Path"),
        Binding("q", "app.quit", "Quit"),
    ]
    HELP = """Every remote (a PACS or modality qrtui queries), every store (where the
objects go) and every destination (where a store delivers its dose
objects) of the configuration, with the answer to a C-ECHO; an embedded
store shows whether it can listen and write, a folder destination whether
it can be written. The line under the table tells more of the node under
the cursor: what a probe learned of a remote, a store's objects and size,
how many objects wait for a destination. Some keys apply to one kind of
node: p to remotes, h, s and o to embedded stores; destinations are edited
in the configuration file."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="client", markup=False)
        yield DataTable(id="nodes", cursor_type="row")
        yield Static(id="node-detail", markup=False)
        yield Static(id="hint", markup=False)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.failed_echo: dict[str, str] = {}  # row key -> why its echo failed
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
        for destination in config.destinations:
            table.add_row(
                destination.name, f"destination ({destination.kind})",
                destination.aet or "-", destination.address, waiting,
                key=f"d:{destination.name}",
            )  # fmt: skip
        hint = self.query_one("#hint", Static)
        hint.update("No nodes yet: a adds a remote or a store.")
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
        node: RemoteNode | StoreNode | Destination
        if kind == "r":
            node = config.remote(name)
        elif kind == "d":
            node = config.destination(name)
        else:
            node = config.store(name)
        self.post_message(EchoAnswered(worker.echo(config, node)))

    def on_echo_answered(self, message: EchoAnswered) -> None:
        result = message.result
        kind = {"remote": "r", "destination": "d"}.get(result.role, "s")
        key = f"{kind}:{result.node}"
        table = self.query_one("#nodes", DataTable)
        if key in table.rows:
            table.update_cell(key, table.ordered_columns[-1].key, echo_text(result))
        if result.usable:
            self.failed_echo.pop(key, None)
        else:  # the cell is cut at 80 columns: the line under the table gives it whole
            self.failed_echo[key] = f"{result.outcome}: {result.detail}".rstrip(": ")
        selected = self._selected()
        if selected is not None and f"{selected[0]}:{selected[1]}" == key:
            self._show_detail()

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
            self.notify("Add a remote and a store first (a).", severity="warning")
            return
        self.app.push_screen(QueryScreen())

    def _selected_embedded_store(self) -> StoreNode | None:
        selected = self._selected()
        if not selected or selected[0] != "s":
            return None
        store = app_of(self).config.store(selected[1])
        return store if store.embedded else None

    def _selected_remote(self) -> RemoteNode | None:
        selected = self._selected()
        if not selected or selected[0] != "r":
            return None
        return app_of(self).config.remote(selected[1])

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Shown where they apply: the footer fits 80 columns."""
        if action in ("history", "path", "summary"):
            return self._selected_embedded_store() is not None
        if action == "probe":
            return self._selected_remote() is not None
        if action in ("edit", "delete"):  # destinations are edited in config.toml
            selected = self._selected()
            return selected is None or selected[0] != "d"
        return True

    def on_screen_resume(self) -> None:
        self._show_detail()  # a probe or a retrieve may have changed what is known

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.refresh_bindings()
        self._show_detail()

    def _show_detail(self) -> None:
        line = self.query_one("#node-detail", Static)
        selected = self._selected()
        failed = self.failed_echo.get(f"{selected[0]}:{selected[1]}") if selected else None
        if selected is not None and failed and selected[0] != "d":
            line.update(f"{selected[1]}: {failed}")
            return
        remote = self._selected_remote()
        if remote is not None:
            line.update(learned_summary(app_of(self).config, remote))
            return
        selected = self._selected()
        if selected is not None and selected[0] == "d":
            line.update(f"{selected[1]}: counting what waits for it…")
            self._queue_of(selected[1])
            return
        store = self._selected_embedded_store()
        if store is None:
            line.update("")
            return
        line.update(f"{store.name}: {store.directory}")
        self._store_summary(store)

    @work(thread=True, group="store-summary", exclusive=True)
    def _queue_of(self, destination: str) -> None:
        from qrtui import worker

        config = app_of(self).config
        waiting = {
            store.name: worker.queue_sizes(store).get(destination, 0)
            for store in config.stores
            if store.embedded
        }
        told = ", ".join(f"{n} in {name}" for name, n in waiting.items() if n)
        failed = self.failed_echo.get(f"d:{destination}")
        text = f"{destination}: " + (f"{failed}; " if failed else "")
        text += f"queued {told}" if told else "nothing queued"
        text += " (edit destinations in the configuration file)"
        self.post_message(NodeDetail(f"d:{destination}", text))

    @work(thread=True, group="store-summary", exclusive=True)
    def _store_summary(self, store: StoreNode) -> None:
        assert store.directory is not None
        held = store_summary(store.directory)
        text = f"{store.name}: {store.directory}"
        if held is not None:
            text += f", {held[0]} objects, {size_text(held[1])}"
        self.post_message(NodeDetail(store.name, text))

    def on_node_detail(self, message: NodeDetail) -> None:
        store = self._selected_embedded_store()
        selected = self._selected()
        if (store is not None and store.name == message.node) or (
            selected is not None and f"{selected[0]}:{selected[1]}" == message.node
        ):
            self.query_one("#node-detail", Static).update(message.text)

    def action_history(self) -> None:
        store = self._selected_embedded_store()
        if store is not None:
            self.app.push_screen(HistoryScreen(store))

    def action_summary(self) -> None:
        store = self._selected_embedded_store()
        if store is not None:
            self.app.push_screen(SummaryScreen(store))

    def action_probe(self) -> None:
        remote = self._selected_remote()
        if remote is not None:
            self.app.push_screen(ProbeScreen(remote))

    def action_path(self) -> None:
        store = self._selected_embedded_store()
        if store is not None:
            self.app.copy_to_clipboard(str(store.directory))
            self.app.push_screen(PathScreen(store))

    def action_add(self) -> None:
        def chosen(kind: str | None) -> None:
            if kind:
                self.app.push_screen(NodeEditorScreen(kind, None), self._edited)

        self.app.push_screen(
            ChoiceScreen(
                "Add a node:",
                [
                    ("r", "a remote (a PACS or modality to query)", "remote"),
                    ("s", "a store (where the objects go)", "store"),
                ],
            ),
            chosen,
        )

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
