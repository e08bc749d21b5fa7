"""The TUI driven by Pilot at 80x24: echo status, query form, a query and retrieve against a
real Orthanc, a cancel against the fake PACS, the node editor; and the installed `qrtui`
in a real terminal (tmux)."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from textual.widgets import Checkbox, DataTable, Input, Static

from qrtui import clock
from qrtui.config import load_config
from qrtui.store import INDEX_NAME
from qrtui.tui.app import create_app
from qrtui.tui.screens import NodeEditorScreen, NodesScreen, QueryScreen, ResultsScreen
from tests.conftest import require, require_corpus
from tests.fake_pacs import FakePacs
from tests.servers import ORTHANC_BIN, Orthanc, free_port, qrtui_modalities
from tests.studies import PopulationBuilder, build_population

FIXED_TODAY = date(2026, 11, 28)
ALL_GROUPS = {"CT", "MG", "FL", "DX"}


def fixed_today() -> date:
    return FIXED_TODAY


def app_for(path: Path, echo_on_start: bool = True):
    return create_app(
        load_config(path), today=fixed_today, cursor_blink=False, echo_on_start=echo_on_start
    )


async def settle(app, pilot) -> None:
    """Let the thread workers finish and their messages arrive."""
    await app.workers.wait_for_complete()
    await pilot.pause()


def node_config(
    tmp_path: Path, remote_port: int, store_port: int, remote_aet="ORTHANC", associations=4
) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"[client]\naet = 'QRTUI'\n"
        f"[remotes.pacs]\naet = '{remote_aet}'\nhost = '127.0.0.1'\nport = {remote_port}\n"
        f"timeout = 10\nmax_associations = {associations}\n"
        f"[stores.local]\naet = 'QRTUI_STORE'\nport = {store_port}\nbind = '127.0.0.1'\n"
        f"directory = '{tmp_path / 'store'}'\n"
    )
    return path


@pytest.fixture(scope="module")
def population(tmp_path_factory) -> PopulationBuilder:
    return build_population(require_corpus(), tmp_path_factory.mktemp("objects"), FIXED_TODAY)


@pytest.fixture(scope="module")
def tui_pacs(population, tmp_path_factory) -> Iterator[tuple[int, int]]:
    """(Orthanc's DICOM port, the port our store must listen on)"""
    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    store_port = free_port()
    known = qrtui_modalities("QRTUI_STORE", store_port)
    orthanc = Orthanc(tmp_path_factory.mktemp("orthanc"), modalities=known).start()
    try:
        orthanc.upload(population.files())
        yield orthanc.dicom_port, store_port
    finally:
        orthanc.stop()


# ---------------------------------------------------------------- nodes


async def test_node_screen_shows_echo_results(tmp_path, tui_pacs, closed_port):
    orthanc_port, store_port = tui_pacs
    path = node_config(tmp_path, orthanc_port, store_port)
    path.write_text(
        path.read_text()
        + f"[remotes.dead]\naet = 'DEAD'\nhost = '127.0.0.1'\nport = {closed_port}\n"
    )
    app = app_for(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one("#nodes", DataTable)
        echo = {str(key.value): str(table.get_row(key)[-1]) for key in table.rows}
        assert echo["r:pacs"].startswith("answered")
        assert echo["r:dead"].startswith("connection refused")
        assert echo["s:local"].startswith("ready")
        await pilot.press("e")
        await settle(app, pilot)
        assert str(table.get_row("r:pacs")[-1]).startswith("answered")
        await pilot.press("q")
    assert app.return_code == 0


async def test_a_first_start_without_configuration_offers_to_add_nodes(tmp_path):
    from qrtui.config import ClientConfig, Config

    app = create_app(Config(tmp_path / "config.toml", ClientConfig(), (), ()))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "a adds a remote" in str(app.screen.query_one("#hint", Static).render())
        await pilot.press("n")  # a query needs nodes: the screen says so and stays
        assert isinstance(app.screen, NodesScreen)


# ---------------------------------------------------------------- query form


async def test_query_form_marks_bad_input_and_will_not_run(tmp_path):
    app = app_for(node_config(tmp_path, 1, free_port()), echo_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        screen = app.screen
        assert isinstance(screen, QueryScreen)
        assert screen.query_one("#date_from", Input).value == "2026-11-27"
        assert screen.query_one("#date_until", Input).value == "2026-11-28"
        screen.query_one("#date_from", Input).value = "last week"
        await pilot.pause()
        assert screen.query_one("#date_from", Input).has_class("-invalid")
        await pilot.press("f5")
        assert app.screen is screen, "an invalid form does not run"
        assert "is not yyyy-mm-dd" in str(screen.query_one("#error", Static).render())

        screen.query_one("#date_from", Input).value = "7d"
        screen.query_one("#time_from", Input).value = "2599"
        await pilot.pause()
        assert not screen.query_one("#date_from", Input).has_class("-invalid")
        assert screen.query_one("#time_from", Input).has_class("-invalid")
        screen.query_one("#time_from", Input).value = "0800"
        await pilot.press("f5")
        assert "-tf/-tt need -sd" in str(screen.query_one("#error", Static).render())

        screen.query_one("#sr", Checkbox).value = True
        await pilot.pause()
        assert not screen.query_one("#ct", Checkbox).value, "SR only excludes the modalities"
        screen.query_one("#mg", Checkbox).value = True
        await pilot.pause()
        assert not screen.query_one("#sr", Checkbox).value
        await pilot.press("escape")
        assert isinstance(app.screen, NodesScreen)


# ---------------------------------------------------------------- query and retrieve


def expected_objects(population: PopulationBuilder, groups: set[str]) -> set[str]:
    out = set()
    for study in population.studies.values():
        if study.group in groups and (FIXED_TODAY - study.study_date).days <= 1:
            for label, idx in study.expect.items():
                uids = study.series[label].sop_uids
                out.update(uids if idx is None else [uids[i] for i in idx])
    return out


async def test_query_and_retrieve_against_orthanc(tmp_path, population, tui_pacs):
    orthanc_port, store_port = tui_pacs
    app = app_for(node_config(tmp_path, orthanc_port, store_port), echo_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        for box in ("mg", "fl", "dx"):
            app.screen.query_one(f"#{box}", Checkbox).value = True
        await pilot.press("f5")
        results = app.screen
        assert isinstance(results, ResultsScreen)
        await settle(app, pilot)
        assert results.phase == "planned"
        status = str(results.query_one("#status", Static).render())
        assert status.startswith("Plan: 15 to fetch")
        table = results.query_one("#studies", DataTable)
        assert table.row_count == 15 + len(results.plan_outcome.result.dropped)
        await pilot.press("r")
        await settle(app, pilot)
        assert results.phase == "done"
        assert str(results.query_one("#status", Static).render()).startswith("Retrieve done")
        await pilot.press("escape", "escape", "q")
    with sqlite3.connect(tmp_path / "store" / INDEX_NAME) as db:
        stored = {uid for (uid,) in db.execute("SELECT sop_instance_uid FROM instances")}
    assert stored == expected_objects(population, ALL_GROUPS)


async def test_cancel_mid_retrieve_stops_the_node_and_says_so(tmp_path):
    store_port = free_port()
    fake = FakePacs(store_port, honour_cancel=False).start()
    path = node_config(tmp_path, fake.port, store_port, remote_aet="FAKE")
    app = app_for(path, echo_on_start=False)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("n", "f5")
            results = app.screen
            await settle(app, pilot)
            assert results.phase == "planned", str(results.query_one("#status").render())
            await pilot.press("r")
            started = await asyncio.to_thread(fake.move_started.wait, 10)
            log = "\n".join(str(line) for line in results.query_one("#log").lines)
            assert started, log + str(results.query_one("#status").render())
            await pilot.press("c")
            await settle(app, pilot)
            assert str(results.query_one("#status", Static).render()).startswith(
                "Retrieve cancelled"
            )
            log = "\n".join(str(line) for line in results.query_one("#log").lines)
            assert "C-CANCEL" in log
            await pilot.press("escape", "escape", "q")
        assert fake.cancel_seen.is_set()
        assert fake.handler_ended.wait(10), "the association was aborted"
    finally:
        fake.stop()
    assert not any((tmp_path / "store" / ".incoming").iterdir())


# ---------------------------------------------------------------- node editor


async def test_node_editor_validates_saves_and_deletes(tmp_path):
    path = node_config(tmp_path, free_port(), free_port())
    app = app_for(path, echo_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a", "r")  # add: a remote
        editor = app.screen
        assert isinstance(editor, NodeEditorScreen)
        for field, value in (("name", "ris"), ("aet", "A" * 17), ("host", "10.0.0.9")):
            editor.query_one(f"#{field}", Input).value = value
        await pilot.press("f2")
        assert "longer than 16" in str(editor.query_one("#error", Static).render())
        assert "ris" not in path.read_text(), "nothing saved"
        editor.query_one("#aet", Input).value = "RIS_PACS"
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, NodesScreen)
        saved = tomllib.loads(path.read_text())
        # what was typed; the defaults stay unwritten, so findings about the node may apply
        assert saved["remotes"]["ris"] == {"aet": "RIS_PACS", "host": "10.0.0.9"}
        assert path.stat().st_mode & 0o777 == 0o600

        table = app.screen.query_one("#nodes", DataTable)
        table.move_cursor(row=table.get_row_index("r:ris"))
        await pilot.press("d")
        await pilot.press("y")
        await pilot.pause()
        assert "ris" not in tomllib.loads(path.read_text())["remotes"]
        assert "r:ris" not in table.rows


# ---------------------------------------------------------------- a real terminal


def test_installed_qrtui_runs_in_a_real_terminal(tmp_path, tui_pacs):
    tmux = shutil.which("tmux")
    require(tmux, "tmux is not installed (apt-get install tmux)")
    executable = Path(sys.executable).parent / "qrtui"
    require(executable.exists(), "qrtui is not installed in this environment")
    orthanc_port, store_port = tui_pacs
    path = node_config(tmp_path, orthanc_port, store_port)
    status = tmp_path / "status"
    session = f"qrtui-{free_port()}"
    command = f"{executable} --config {path}; echo $? > {status}"
    subprocess.run(
        [tmux, "new-session", "-d", "-s", session, "-x", "80", "-y", "24", command], check=True
    )
    try:
        screen = _wait_for_text(tmux, session, "answered")
        assert "pacs" in screen and "Echo" in screen
        subprocess.run([tmux, "send-keys", "-t", session, "q"], check=True)
        _wait_for(lambda: status.exists() and status.read_text().strip() != "")
        assert status.read_text().strip() == "0"
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)


def _capture(tmux: str, session: str) -> str:
    done = subprocess.run(
        [tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True
    )
    return done.stdout


def _wait_for_text(tmux: str, session: str, text: str, limit: float = 30) -> str:
    _wait_for(lambda: text in _capture(tmux, session), limit)
    return _capture(tmux, session)


def _wait_for(condition, limit: float = 30) -> None:
    """A terminal gives no event to await: look every 50 ms, up to a limit."""
    import time

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("the terminal did not show it in time")


async def test_quitting_during_a_retrieve_stops_the_association_first(tmp_path):
    store_port = free_port()
    fake = FakePacs(store_port, honour_cancel=True).start()
    app = app_for(node_config(tmp_path, fake.port, store_port, remote_aet="FAKE"), False)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("n", "f5")
            await settle(app, pilot)
            await pilot.press("r")
            assert await asyncio.to_thread(fake.first_stored.wait, 10)
            await pilot.press("ctrl+q")
            quitting = [w for w in app.workers if w.group == "quit"]
            assert quitting
            await quitting[0].wait()
        assert app.return_code == 130  # as a scripted run stopped by Ctrl-C
        assert fake.cancel_seen.is_set() and fake.handler_ended.wait(10)
    finally:
        fake.stop()
    store = tmp_path / "store"
    assert not any((store / ".incoming").iterdir())
    with sqlite3.connect(store / INDEX_NAME) as db:
        rows = db.execute("SELECT path, size FROM instances").fetchall()
    assert rows and all((store / path).stat().st_size == size for path, size in rows)


# ---------------------------------------------------------------- history


def demo_history(tmp_path: Path):
    """Two real runs against the demo PACS: one that fails a study, one that fetches it."""
    from qrtui import worker
    from qrtui.demo import DEMO_REMOTE, DEMO_STORE, demo_config
    from qrtui.demo.pacs import DemoPacs, Faults
    from qrtui.query import build_query

    with DemoPacs() as pacs:
        config = demo_config(tmp_path, pacs)
        remote, store = config.remote(DEMO_REMOTE), config.store(DEMO_STORE)
        failing = next(s for s in pacs.studies if s.label == "mg_rdsr")
        uid = failing.objects[0].StudyInstanceUID
        pacs.faults = Faults(fail_studies=frozenset({uid}))
        params = build_query(today=clock.today(), date_from="1d", mg=True)
        context = worker.RunContext(face="tui")
        first = worker.run(config, remote, store, params, dry_run=False, context=context)
        pacs.faults = Faults()
        second = worker.run(config, remote, store, params, dry_run=False, context=context)
    assert (first.status, second.status) == (1, 0)
    return config, uid


async def test_history_screen_lists_the_runs_and_shows_what_a_run_left_owed(tmp_path):
    from qrtui.tui.screens import HistoryScreen, RunDetailScreen

    config, owed_uid = demo_history(tmp_path)
    app = create_app(config, today=fixed_today, cursor_blink=False, echo_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one("#nodes", DataTable)
        table.move_cursor(row=table.get_row_index("s:demo-store"))
        await pilot.press("h")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        runs = screen.query_one("#runs", DataTable)
        assert runs.row_count == 2
        assert [str(runs.get_row_at(i)[2]) for i in range(2)] == ["0", "1"], "newest first"
        assert "2 runs, newest first, 1 not clean" in str(screen.query_one("#status").render())
        await pilot.press("down", "enter")
        detail = app.screen
        assert isinstance(detail, RunDetailScreen)
        text = str(detail.query_one("#run-detail", Static).render())
        assert "Studies still owed: 1" in text and "0xA702" in text
        # issue 27, item 17: readable at 80x24, date, group and description, not a UID
        owed = text.split("Studies still owed: 1\n")[1].splitlines()[0]
        assert owed.startswith("- 2026-") and " MG MAMMO DIAGNOSTIC: failed" in owed, owed
        assert owed_uid not in owed
        assert "DEMO^PATIENT" not in text and "DEMO-0" not in text
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, NodesScreen)


# ---------------------------------------------------------------- saved queries


async def test_the_form_saves_a_profile_and_loads_it_back(tmp_path):
    from qrtui.tui.screens.profiles import ProfileNameScreen, ProfilePickerScreen

    path = node_config(tmp_path, free_port(), free_port())
    path.write_text("# the department's nodes\n" + path.read_text())
    app = app_for(path, echo_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, QueryScreen)
        await pilot.press("f6")  # nothing saved yet: says so, stays
        assert app.screen is form
        form.query_one("#mg", Checkbox).value = True
        form.query_one("#desc_exclude", Input).value = "imported, research"
        await pilot.press("f7")
        assert isinstance(app.screen, ProfileNameScreen)
        await pilot.press(*"nightly", "enter")
        await pilot.pause()
        assert app.screen is form
        saved = tomllib.loads(path.read_text())["profiles"]["nightly"]
        assert saved == {
            "remote": "pacs", "store": "local", "groups": ["ct", "mg"],
            "exclude": ["imported", "research"], "overlap": "1d",
        }  # fmt: skip
        assert path.read_text().startswith("# the department's nodes"), "comments kept"

        form.query_one("#mg", Checkbox).value = False
        form.query_one("#desc_exclude", Input).value = ""
        await pilot.press("f6")
        assert isinstance(app.screen, ProfilePickerScreen)
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is form
        assert form.query_one("#mg", Checkbox).value
        assert form.query_one("#desc_exclude", Input).value == "imported, research"
        assert "Loaded nightly" in str(form.query_one("#error", Static).render())


async def test_a_node_editor_save_of_a_commented_table_asks_and_keeps_a_backup(tmp_path):
    from qrtui.tui.screens import ConfirmScreen

    remote_port, edited_port = free_port(), free_port()  # nothing listens; free all the same
    path = node_config(tmp_path, remote_port, free_port())
    original = path.read_text().replace(
        f"port = {remote_port}\n", f"port = {remote_port}   # the main archive\n"
    )
    path.write_text(original)
    app = app_for(path, echo_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")  # edit the first remote
        editor = app.screen
        assert isinstance(editor, NodeEditorScreen)
        editor.query_one("#port", Input).value = str(edited_port)
        await pilot.press("f2")
        await pilot.pause()
        question = app.screen
        assert isinstance(question, ConfirmScreen)
        assert "1 comment line" in question.question and "config.toml.bak" in question.question
        await pilot.press("n")  # not saved
        assert app.screen is editor and f"port = {remote_port}" in path.read_text()
        await pilot.press("f2")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, NodesScreen)
    assert f"port = {edited_port}" in path.read_text() and "main archive" not in path.read_text()
    assert (tmp_path / "config.toml.bak").read_text() == original


# ---------------------------------------------------------------- probe, help, path


async def test_probe_from_the_nodes_screen_and_keep_the_findings(tmp_path):
    from qrtui.demo import demo_config
    from qrtui.demo.pacs import DemoPacs, Faults
    from qrtui.tui.screens.probe import ProbeScreen

    with DemoPacs(today=FIXED_TODAY, faults=Faults(ignore_modalities_in_study=True)) as pacs:
        config = demo_config(tmp_path, pacs)
        app = create_app(config, today=fixed_today, cursor_blink=False, echo_on_start=False)
        async with app.run_test(size=(80, 24)) as pilot:
            assert "not probed yet" in str(app.screen.query_one("#node-detail").render())
            await pilot.press("p")
            screen = app.screen
            assert isinstance(screen, ProbeScreen)
            await settle(app, pilot)
            report = str(screen.query_one("#probe-report", Static).render())
            assert "ModalitiesInStudy: ignored" in report and "C-GET: accepted" in report
            # issue 27, item 12: the count is not cut off the title at 80 columns
            status = str(screen.query_one("#status", Static).render())
            assert len(status) <= 80 and " studies found; s saves the findings" in status
            assert "found):" in report.splitlines()[0]
            await pilot.press("s")
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
            detail = str(app.screen.query_one("#node-detail").render())
            assert "ignores ModalitiesInStudy" in detail, detail
    learned = tomllib.loads((tmp_path / "nodes.learned.toml").read_text())
    assert learned["nodes"]["demo"]["modalities_in_study_matched"] is False


async def test_help_lists_every_key_of_the_screen_it_is_opened_on(tmp_path):
    from qrtui.tui.screens import HelpScreen

    app = app_for(node_config(tmp_path, free_port(), free_port()), echo_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        nodes = app.screen
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text", Static).render())
        for binding in type(nodes).BINDINGS:
            assert binding.description in text, binding
        assert "Ctrl+P" in text and "p to remotes" in text
        await pilot.press("escape", "n")
        await pilot.press("f1")  # the form's fields take '?': F1 works there too
        text = str(app.screen.query_one("#help-text", Static).render())
        assert "Run query" in text and "Save as" in text
        await pilot.press("escape")
        assert isinstance(app.screen, QueryScreen)


async def test_a_store_shows_its_size_and_offers_its_path(tmp_path):
    from qrtui.tui.screens.confirm import PathScreen

    config, _ = demo_history(tmp_path / "demo")
    app = create_app(config, today=fixed_today, cursor_blink=False, echo_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one("#nodes", DataTable)
        table.move_cursor(row=table.get_row_index("s:demo-store"))
        await settle(app, pilot)
        detail = str(app.screen.query_one("#node-detail").render())
        assert str(tmp_path / "demo" / "store") in detail and " objects, " in detail
        await pilot.press("o")
        assert isinstance(app.screen, PathScreen)
        path = app.screen.query_one("#store-path", Input)
        assert path.value == str(tmp_path / "demo" / "store")


def test_installed_demo_in_a_real_terminal_leaves_one_study_out(tmp_path):
    """tmux drives `qrtui --demo`: the form (every modality ticked), F5, Space on the first
    row (left out), r, r again (nothing more, as the footer said), then quit; the store
    holds exactly the chosen studies' dose objects."""
    import pydicom

    from qrtui.demo.studies import demo_studies, dose_uids

    tmux = shutil.which("tmux")
    require(tmux, "tmux is not installed (apt-get install tmux)")
    executable = Path(sys.executable).parent / "qrtui"
    require(executable.exists(), "qrtui is not installed in this environment")
    status = tmp_path / "status"
    session = f"qrtui-demo-{free_port()}"
    env = f"XDG_DATA_HOME={tmp_path / 'data'} XDG_STATE_HOME={tmp_path / 'state'}"
    command = f"env {env} {executable} --demo; echo $? > {status}"
    subprocess.run(
        [tmux, "new-session", "-d", "-s", session, "-x", "80", "-y", "24", command], check=True
    )

    def keys(*sent: str) -> None:
        subprocess.run([tmux, "send-keys", "-t", session, *sent], check=True)

    try:
        _wait_for_text(tmux, session, "Run query")
        keys("F5")
        screen = _wait_for_text(tmux, session, "r fetches them")
        assert "✓" in screen
        keys("Space")
        _wait_for_text(tmux, session, "✗")
        keys("r")
        _wait_for_text(tmux, session, "Retrieve done", limit=60)
        # issue 27, item 13: r again fetches nothing, and the footer said so beforehand
        _wait_for_text(tmux, session, "r Nothing left")
        index = tmp_path / "data" / "qrtui" / "demo" / "store" / INDEX_NAME
        with sqlite3.connect(index) as db:
            before = db.execute("SELECT COUNT(*) FROM instances").fetchone()
        keys("r")
        _wait_for_text(tmux, session, "Nothing left to fetch")
        with sqlite3.connect(index) as db:
            assert db.execute("SELECT COUNT(*) FROM instances").fetchone() == before
        keys("C-q")
        _wait_for(lambda: status.exists() and status.read_text().strip() != "")
        assert status.read_text().strip() == "0"
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)
    store = tmp_path / "data" / "qrtui" / "demo" / "store"
    with sqlite3.connect(store / INDEX_NAME) as db:
        held = {uid for (uid,) in db.execute("SELECT sop_instance_uid FROM instances")}
    some = next(store.glob("*/*/*.dcm"))
    stamp = str(pydicom.dcmread(some).StudyDate)
    day = date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8]))
    studies = demo_studies(date.fromordinal(day.toordinal() + 1))
    wanted = dose_uids(studies, ALL_GROUPS, day)
    left_out = next(s for s in studies if s.label == "ct_rdsr_and_report")  # first row: CT, A…
    assert left_out.dose_uids and held == wanted - left_out.dose_uids


async def test_every_action_is_in_the_command_palette(tmp_path):
    """The palette's provider offers every enabled action of the screen, by its footer name."""
    from qrtui.tui.commands import ScreenActions
    from qrtui.tui.screens.confirm import ChoiceScreen

    app = app_for(node_config(tmp_path, free_port(), free_port()), echo_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        provider = ScreenActions(app.screen)
        offered = [hit.text async for hit in provider.discover()]
        for binding in type(app.screen).BINDINGS:
            # history, path and summary are for stores; a remote is chosen
            if binding.action not in ("history", "path", "summary"):
                assert binding.description in offered, binding
        hits = [hit async for hit in provider.search("add")]
        assert hits
        await hits[0].command()
        await pilot.pause()
        assert isinstance(app.screen, ChoiceScreen)


async def test_the_node_screen_lists_destinations_with_echo_and_queue(tmp_path, closed_port):
    """Issue 25: destinations beside the nodes, each checked, and what waits for each."""
    from qrtui.store import Store, StoredInstance

    path = tmp_path / "config.toml"
    path.write_text(
        f"[stores.local]\naet = 'QRTUI_STORE'\nport = {free_port()}\nbind = '127.0.0.1'\n"
        f"directory = '{tmp_path / 'store'}'\nforward = ['openrem', 'folder']\n"
        f"[destinations.openrem]\naet = 'OPENREM'\nhost = '127.0.0.1'\nport = {closed_port}\n"
        f"[destinations.folder]\ndirectory = '{tmp_path / 'import'}'\n"
    )
    with Store(tmp_path / "store") as store:
        store.forward_to = ("openrem", "folder")
        for n in (1, 2):
            final = store.path_for("1.2.3", "1.2.3.4", f"1.2.3.4.{n}")
            store.add(b"\0" * 10, StoredInstance(
                f"1.2.3.4.{n}", "1.2.840.10008.5.1.4.1.1.88.67", "1.2.3", "1.2.3.4", "SR",
                final, 10, "PACS",
            ))  # fmt: skip
    app = app_for(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one("#nodes", DataTable)
        echo = {str(key.value): str(table.get_row(key)[-1]) for key in table.rows}
        assert echo["d:openrem"].startswith("connection refused")
        assert echo["d:folder"].startswith("ready")
        table.move_cursor(row=table.get_row_index("d:openrem"))
        await settle(app, pilot)
        detail = str(app.screen.query_one("#node-detail", Static).render())
        assert detail.startswith("openrem: connection refused: nothing listens on port")
        assert "; queued 2 in local" in detail
        assert not app.screen.check_action("edit", ())  # edited in config.toml
        await pilot.press("q")
