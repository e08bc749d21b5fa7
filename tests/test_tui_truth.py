"""The TUI tells the truth at a glance (issue 27): each test drives the demo PACS at 80x24
with Pilot and checks a word on the screen against what the rules and the store say."""

from __future__ import annotations

from textual.widgets import Static

from qrtui.demo.pacs import DemoPacs
from qrtui.events import RetrieveProgress
from qrtui.tui.messages import RetrieveUpdate
from qrtui.tui.screens.study import StudyDetailScreen
from tests.test_tui_results import (
    column,
    cursor_to,
    demo_app,
    planned,
    retrieved,
    settle,
    study_uid,
)

GROUPS = {"CT", "MG", "FL", "DX", "SR", "-"}


async def retrieve_held_by_the_pacs(app, pilot, pacs):
    """The plan fetched from a demo PACS with Faults(hold_after=1): returns once the PACS
    holds the retrieve, so what follows happens mid-retrieve, however busy the machine."""
    import asyncio

    results = await planned(app, pilot)
    await pilot.press("r")
    assert await asyncio.to_thread(pacs.holding.wait, 60)
    return results


async def to_the_store_row(app, pilot) -> None:
    """From the Results after a run, back to the nodes screen, the demo store's row."""
    from textual.widgets import DataTable

    from qrtui.demo import DEMO_STORE

    await pilot.press("escape", "escape")  # the results, the form
    table = app.screen.query_one("#nodes", DataTable)
    table.move_cursor(row=table.get_row_index(f"s:{DEMO_STORE}"))
    await pilot.pause()


async def test_the_decision_column_says_the_rule_s_decision(tmp_path):
    """Item 1: a study fetched for its images says `images`, never `RDSR`."""
    with DemoPacs() as pacs:
        app = demo_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            results = await planned(app, pilot)
            decisions = column(results, "Decision")
            assert decisions[study_uid(pacs, "mg_images")] == "images"
            assert decisions[study_uid(pacs, "dx_images")] == "images"
            assert decisions[study_uid(pacs, "mg_rdsr")] == "RDSR"
            assert decisions[study_uid(pacs, "ct_philips")] == "dose page"
            cursor_to(results, study_uid(pacs, "mg_images"))
            await pilot.press("enter")
            assert isinstance(app.screen, StudyDetailScreen)
            detail = str(app.screen.query_one("#study-detail", Static).render())
            assert "Decision (images): retrieve: images (no RDSR)" in detail


async def test_held_studies_keep_their_reason_and_dose_after_a_run(tmp_path):
    """Item 3: a study the store already holds says `held` and shows its dose, after a run
    as before it."""
    with DemoPacs() as pacs:
        app = demo_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            first = await planned(app, pilot)
            cursor_to(first, study_uid(pacs, "mg_rdsr"))
            await pilot.press("space", "r")  # left out this time: new in the next plan
            await settle(app, pilot)
            await pilot.press("escape")  # back to the form; F5 plans again
            results = await planned(app, pilot)
            assert column(results, "Decision")[study_uid(pacs, "mg_rdsr")] == "RDSR"
            held = study_uid(pacs, "ct_rdsr")
            assert column(results, "Decision")[held] == "dropped: held"
            await pilot.press("r")
            await settle(app, pilot)
            assert column(results, "Outcome")[held] == "held"
            assert column(results, "Dose")[held].startswith("DLP ")


async def test_groups_are_groups_never_modality_strings(tmp_path):
    """Item 4: held and forced-in studies are in CT, MG, FL or DX; the header fits."""
    with DemoPacs() as pacs:
        app = demo_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            await retrieved(app, pilot)
            await pilot.press("escape")
            results = await planned(app, pilot)
            await pilot.press("a")  # every dropped study forced in
            await pilot.pause()
            assert set(column(results, "Grp").values()) <= GROUPS
            status = str(results.query_one("#status", Static).render())
            assert "/" not in status.split("(")[1].split(")")[0], status


def _shown(select) -> str:
    """What a Select shows on screen (not its value)."""
    from textual.widgets._select import SelectCurrent

    return str(select.query_one(SelectCurrent).query_one("#label", Static).render())


async def test_the_remembered_nodes_are_shown_not_select(tmp_path):
    """Item 2: the form shows which PACS and store F5 will use, on every start and after
    a profile is loaded."""
    from textual.widgets import Select

    from qrtui.config import Profile, RemoteNode, save_config
    from qrtui.tui.app import create_app
    from qrtui.uistate import remember_choice

    with DemoPacs() as pacs:
        from qrtui.demo import demo_config

        config = demo_config(tmp_path, pacs)
        other = RemoteNode("other", "OTHER_PACS", "127.0.0.1", 1)
        config = save_config(
            config.__class__(
                config.path, config.client, (*config.remotes, other), config.stores,
                (Profile("p", "demo", config.stores[0].name, groups=("ct",)),),
            )
        )  # fmt: skip
        remember_choice(config.path, remote="other", store=config.stores[0].name)
        app = create_app(config, start="query", cursor_blink=False, echo_on_start=False)
        async with app.run_test(size=(80, 24)) as pilot:
            form = app.screen
            remote, store = form.query_one("#remote", Select), form.query_one("#store", Select)
            assert remote.value == "other"
            assert "other" in _shown(remote) and "Select" not in _shown(remote)
            assert config.stores[0].name in _shown(store)
            await pilot.press("f6")
            await pilot.pause()
            await pilot.press("enter")  # the one profile
            await pilot.pause()
            assert remote.value == "demo" and _shown(remote).startswith("demo")


async def test_status_lines_follow_the_cursor_and_the_fixed_field(tmp_path):
    """Item 5: after a run the line over the table speaks of the study under the cursor; a
    refused date's message goes once the date is fixed, and says what was wrong."""
    from textual.widgets import Input

    with DemoPacs() as pacs:
        app = demo_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            form = app.screen
            form.query_one("#date_from", Input).value = "2026-13-01"
            await pilot.press("f5")
            error = form.query_one("#error", Static)
            assert "month 13 is not 1-12" in str(error.render())
            form.query_one("#date_from", Input).value = "yesterday"
            await pilot.pause()
            assert str(error.render()) == ""
            results = await retrieved(app, pilot)
            line = results.query_one("#funnel", Static)
            cursor_to(results, study_uid(pacs, "ct_rdsr_and_report"))
            await pilot.pause()
            assert str(line.render()).startswith("CT ABDOMEN PELVIS: stored")
            cursor_to(results, study_uid(pacs, "ct_images_only"))
            await pilot.pause()
            assert str(line.render()) == "CT LUMBAR SPINE: dropped: no dose"


async def test_a_run_the_user_cancelled_reads_cancelled_in_the_history(tmp_path):
    """Item 6: not `exit 1` alone: who stopped it."""

    from textual.widgets import DataTable

    from qrtui.demo.pacs import Faults
    from qrtui.store import Store

    with DemoPacs(faults=Faults(hold_after=1)) as pacs:
        app = demo_app(tmp_path, pacs)
        try:
            async with app.run_test(size=(80, 24)) as pilot:
                await retrieve_held_by_the_pacs(app, pilot, pacs)
                await pilot.press("c")
                pacs.release()
                await settle(app, pilot)
                await to_the_store_row(app, pilot)
                await pilot.press("h")
                await settle(app, pilot)
                runs = app.screen.query_one(DataTable)
                assert str(runs.get_row_at(0)[2]) == "cancel"
                await pilot.press("enter")
                detail = str(app.screen.query_one("#run-detail", Static).render())
                assert detail.startswith("Run #1: exit 1, cancelled by the user"), detail
        finally:
            pacs.release()
    with Store(tmp_path / "store", lock=False) as store:
        assert store.history.runs()[0].cancelled_by.startswith("cancelled by the user")


async def test_enter_pressed_three_times_opens_one_study(tmp_path):
    """Item 9: one Study screen, left with one Escape."""
    from qrtui.tui.screens import ResultsScreen

    with DemoPacs() as pacs:
        app = demo_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            results = await planned(app, pilot)
            for _ in range(3):  # a burst: keys that arrive before the screen is shown
                results.action_detail()
            await pilot.pause()
            assert sum(isinstance(s, StudyDetailScreen) for s in app.screen_stack) == 1
            await pilot.press("escape")
            assert isinstance(app.screen, ResultsScreen)


async def test_a_failed_echo_s_reason_is_readable_at_80_columns(tmp_path, closed_port):
    """Item 10: the line under the table gives the whole reason of the selected node."""
    from textual.widgets import DataTable

    from tests.test_tui import app_for, node_config
    from tests.test_tui import settle as settle_all

    path = node_config(tmp_path, closed_port, closed_port + 1 if closed_port < 65535 else 1)
    app = app_for(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle_all(app, pilot)
        table = app.screen.query_one("#nodes", DataTable)
        table.move_cursor(row=table.get_row_index("r:pacs"))
        await pilot.pause()
        line = str(app.screen.query_one("#node-detail", Static).render())
        assert line == f"pacs: connection refused: nothing listens on port {closed_port}"


async def test_quitting_during_a_retrieve_says_so_at_once_and_exits_as_cancelled(tmp_path):
    """Item 11: q on Results (and Ctrl+C, Ctrl+Q anywhere) cancels the retrieve, says so on
    the status line at once, and the app ends with the status of an interrupted run."""

    from qrtui.demo.pacs import Faults

    with DemoPacs(faults=Faults(hold_after=1)) as pacs:
        app = demo_app(tmp_path, pacs)
        try:
            async with app.run_test(size=(80, 24)) as pilot:
                results = await retrieve_held_by_the_pacs(app, pilot, pacs)
                await pilot.press("q")
                status = str(results.query_one("#status", Static).render())
                assert status.startswith("Stopping: cancelling the retrieve"), status
                late = RetrieveProgress(0, 1, "20261204 CT series 2 (RDSR)", None, 0, 0, 0, 0, 0)
                results.post_message(RetrieveUpdate(late))  # progress still on its way
                await pilot.pause()
                status = str(results.query_one("#status", Static).render())
                assert status.startswith("Stopping: cancelling the retrieve"), status
                pacs.release()
                quitting = [w for w in app.workers if w.group == "quit"]
                assert quitting
                await quitting[0].wait()  # the retrieve stopped, then the app exits
        finally:
            pacs.release()
    assert app.return_code == 130


async def test_ctrl_c_quits_like_q_not_with_textual_s_prompt(tmp_path):
    with DemoPacs() as pacs:
        app = demo_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("ctrl+c")
            await pilot.pause()
            assert app.return_code == 0  # set by exit(): quitting, not a prompt


def _footer_keys(screen) -> dict[str, str]:
    """Footer label -> key, of the bindings shown now."""
    return {
        b.binding.description: key
        for key, b in screen.active_bindings.items()
        if b.enabled and b.binding.show
    }


async def test_after_a_cancel_g_lists_what_is_missing_and_r_fetches_it(tmp_path):
    """Item 13: after a run, r fetches what is still missing (the footer says Fetch missing,
    then Nothing left) and g lists the studies not reached; Enter and g in the footer."""

    from qrtui.demo.pacs import Faults
    from qrtui.demo.studies import dose_uids
    from qrtui.tui.screens.study import TextScreen
    from tests.test_tui_results import stored

    with DemoPacs(faults=Faults(hold_after=1)) as pacs:
        app = demo_app(tmp_path, pacs)
        try:
            async with app.run_test(size=(80, 24)) as pilot:
                results = await retrieve_held_by_the_pacs(app, pilot, pacs)
                await pilot.press("c")
                pacs.release()
                await settle(app, pilot)
                pacs.faults = Faults()
                keys = _footer_keys(results)
                assert keys.get("Fetch missing") == "r" and keys.get("Problems") == "g"
                assert keys.get("Open") == "enter"
                await pilot.press("g")
                assert isinstance(app.screen, TextScreen)
                text = str(app.screen.query_one("#text", Static).render())
                assert "Not fetched whole:" in text and "not reached" in text
                await pilot.press("escape", "r")
                await settle(app, pilot)
                assert _footer_keys(results).get("Nothing left") == "r"
                before = stored(tmp_path)
                await pilot.press("r")  # nothing more is fetched
                await settle(app, pilot)
                assert stored(tmp_path) == before
        finally:
            pacs.release()
    since = max(study.study_date for study in pacs.studies)  # the form's window: yesterday
    assert dose_uids(pacs.studies, ("CT", "MG", "FL", "DX"), since) <= stored(tmp_path)


async def test_escape_peels_one_layer_and_asks_before_choices_are_lost(tmp_path):
    """Item 8: with a filter and the focus in the table, Esc clears the filter; then, with
    choices made, it asks before leaving the plan."""
    from textual.widgets import DataTable, Input

    from qrtui.tui.screens import QueryScreen, ResultsScreen
    from qrtui.tui.screens.confirm import ConfirmScreen

    with DemoPacs() as pacs:
        app = demo_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            results = await planned(app, pilot)
            table = results.query_one("#studies", DataTable)
            await pilot.press("space")  # one study left out
            await pilot.press("slash", *"mammo", "enter")  # the filter, then the table
            assert table.has_focus and table.row_count < len(results.rows)
            await pilot.press("escape")
            assert isinstance(app.screen, ResultsScreen)
            assert results.query_one("#filter", Input).value == ""
            assert table.row_count == len(results.rows)
            await pilot.press("escape")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")
            assert isinstance(app.screen, ResultsScreen)
            await pilot.press("escape", "y")
            assert isinstance(app.screen, QueryScreen)


async def test_the_node_editor_says_what_is_wrong_where_the_eye_is(tmp_path):
    """Item 7 (and 18): a wrong field is marked at once and said on a line that stays in
    view at 80x24; the 17th character of an AE title is refused; the first field has the
    focus; Esc asks before edits are lost."""
    from textual.widgets import Input

    from qrtui.tui.screens import NodeEditorScreen, NodesScreen
    from qrtui.tui.screens.confirm import ConfirmScreen
    from tests.test_tui import app_for, node_config

    app = app_for(node_config(tmp_path, 104, 11112), echo_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")  # the remote's editor
        editor = app.screen
        assert isinstance(editor, NodeEditorScreen)
        assert editor.query_one("#name", Input).has_focus
        port = editor.query_one("#port", Input)
        port.value = "99999"
        await pilot.pause()
        error = editor.query_one("#error", Static)
        assert str(error.render()) == "port: port 99999 is outside 1-65535"
        assert port.has_class("-invalid")
        assert 0 < error.region.y < 23 and error.region.height >= 1  # above the footer
        aet = editor.query_one("#aet", Input)
        aet.focus()
        aet.value = ""
        await pilot.press(*"ABCDEFGHIJKLMNOPQ")
        assert aet.value == "ABCDEFGHIJKLMNOP"
        await pilot.press("escape")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        assert isinstance(app.screen, NodesScreen)


async def test_the_demo_s_doses_are_varied_and_of_each_modality_s_kind(tmp_path):
    """Item 16: DLP for CT, AGD for MG, DAP for DX and FL, not one value for all."""
    with DemoPacs() as pacs:
        app = demo_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            results = await retrieved(app, pilot)
            doses = column(results, "Dose")
            grp = column(results, "Grp")
            shown = {uid: dose for uid, dose in doses.items() if dose != "-"}
            assert len(set(shown.values())) == len(shown) > 8  # every study its own value
            for uid, dose in shown.items():
                word = {"CT": "DLP", "MG": "AGD", "DX": "DAP", "FL": "DAP"}[grp[uid]]
                assert dose.startswith(word) or dose == "dose page held", (grp[uid], dose)


async def test_dose_where_the_eye_is(tmp_path):
    """Item 14: from 110 columns a Station column; descriptions widen with the terminal; an
    image-header study without a value says so; the detail lists each event with units."""
    from qrtui.demo.studies import MG_IMAGE, StudyBuilder, image

    with DemoPacs() as pacs:
        builder = StudyBuilder(pacs.studies[0].study_date + __import__("datetime").timedelta(1))
        bare = builder.study("mg_no_value", "MAMMO NO VALUE", "MG")
        builder.add(bare, 1, image(MG_IMAGE, "MG"), "MG images", dose=True)
        pacs.add_study(bare)
        app = demo_app(tmp_path, pacs)
        async with app.run_test(size=(140, 45)) as pilot:
            results = await planned(app, pilot)
            assert column(results, "Station")[study_uid(pacs, "ct_rdsr")] == "DEMO_CT"
            uid = study_uid(pacs, "ct_esr")
            assert column(results, "Description")[uid] == "CT SINUS (GE Dose Record)"
            await pilot.press("r")
            await settle(app, pilot)
            assert column(results, "Dose")[study_uid(pacs, "mg_no_value")] == ("no value in header")
            cursor_to(results, study_uid(pacs, "ct_rdsr"))
            await pilot.press("enter")
            detail = str(app.screen.query_one("#study-detail", Static).render())
            assert "- Chest routine" in detail and "CTDIvol 9.8 mGy" in detail, detail
            assert "DLP 412.5 mGy.cm" in detail
        async with demo_app(tmp_path / "narrow", pacs).run_test(size=(80, 24)) as pilot:
            results = await planned(pilot.app, pilot)
            assert "Station" not in [str(c.label) for c in
                                     results.query_one("#studies").ordered_columns]  # fmt: skip
            assert column(results, "Description")[uid] == "CT SINUS (GE Dose Record)"[:22]


def test_every_help_text_fits_80_columns_unbroken():
    """Item 12 (and 18): help is read at 80x24; a line the help screen has to break reads
    as `(where the` / `objects` / `go)`. The form and the node editor explain themselves."""
    import importlib
    import inspect
    import pkgutil

    from textual.screen import Screen

    import qrtui.tui.screens as screens

    helped = {}
    for module in pkgutil.iter_modules(screens.__path__):
        loaded = importlib.import_module(f"qrtui.tui.screens.{module.name}")
        for name, value in vars(loaded).items():
            if inspect.isclass(value) and issubclass(value, Screen) and "HELP" in vars(value):
                helped[name] = value.HELP
                assert all(len(line) <= 76 for line in value.HELP.splitlines()), name
    for screen in ("QueryScreen", "NodeEditorScreen"):
        assert screen in helped
    assert "PET-CT" in helped["QueryScreen"] and "yyyy-mm-dd" in helped["QueryScreen"]
    for field in ("AE title", "DIMSE timeout", "deadline (s)", "associations", "bind address"):
        assert field in helped["NodeEditorScreen"], field


async def test_the_path_dialog_shows_a_long_path_whole_at_120_columns(tmp_path):
    """Item 12: the store's path is not cut in its dialog."""
    from pathlib import Path

    from textual.widgets import DataTable, Input

    from tests.test_tui import app_for, node_config

    deep = Path("/srv/qrtui/a-rather-long-folder-name/for-the-dose-objects/of-this-site")
    path = node_config(tmp_path, 104, 11112)
    path.write_text(path.read_text().replace(str(tmp_path / "store"), str(deep)))
    app = app_for(path, echo_on_start=False)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one("#nodes", DataTable)
        table.move_cursor(row=table.get_row_index("s:local"))
        await pilot.press("o")
        await pilot.pause()
        field = app.screen.query_one("#store-path", Input)
        assert field.value == str(deep)
        assert field.content_region.width >= len(str(deep)), field.content_region


async def test_the_summary_s_dates_filter_the_studies(tmp_path):
    """Item 15: f takes FROM [UNTIL]; a date after every study leaves none."""
    from textual.widgets import Input

    from qrtui.tui.screens.summary import AskScreen, SummaryScreen

    with DemoPacs() as pacs:
        app = demo_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            await retrieved(app, pilot)
            await to_the_store_row(app, pilot)
            await pilot.press("s")
            await settle(app, pilot)
            summary = app.screen
            assert isinstance(summary, SummaryScreen) and summary.rows
            await pilot.press("f")
            assert isinstance(app.screen, AskScreen)
            app.screen.query_one("#answer", Input).value = "2099-01-01"
            await pilot.press("enter")
            await settle(app, pilot)
            assert summary.rows == []
            assert "2099-01-01 to today · 0 studies" in str(
                summary.query_one("#summary-filter", Static).render()
            )
