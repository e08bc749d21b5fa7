"""Every screen at 80x24 and 120x40, compared with the stored SVG snapshots
(`pytest --snapshot-update` rewrites them after a deliberate change). Deterministic: a fixed
clock, no cursor blink, no echo on start, and for the results a fixed population."""

from __future__ import annotations

from pathlib import Path

import pytest

from qrtui.config import ClientConfig, Config, Profile, RemoteNode, StoreNode, load_config
from qrtui.tui.app import create_app
from tests.test_tui import app_for, fixed_today, node_config, population, settle, tui_pacs

__all__ = ["population", "tui_pacs"]  # module fixtures shared with test_tui

SIZES = [(80, 24), (120, 40)]

CONFIG = Config(
    Path("/etc/qrtui/config.toml"),
    ClientConfig("QRTUI"),
    (
        RemoteNode("pacs", "PACS_MAIN", "pacs.example.org", 104),
        RemoteNode("ct1", "CT_SCANNER_1", "10.1.2.3", 4006, retrieve="get"),
    ),
    (
        StoreNode("local", "QRTUI_STORE", 11112, directory=Path("/var/lib/qrtui/store")),
        StoreNode("dms", "DOSE_DMS", 104, host="dms.example.org"),
    ),
    (
        Profile("nightly-ct", "pacs", "local", groups=("ct", "mg"), exclude=("imported",)),
        Profile("weekly-fl", "ct1", "local", groups=("fl",)),
    ),
)


def still_app():
    return create_app(CONFIG, today=fixed_today, cursor_blink=False, echo_on_start=False)


async def query_every_group(pilot) -> None:
    """From the nodes screen: the form with every group ticked, queried, the plan settled."""
    await pilot.press("n")
    for box in ("mg", "fl", "dx"):
        pilot.app.screen.query_one(f"#{box}").value = True
    await pilot.press("f5")
    await settle(pilot.app, pilot)


@pytest.mark.parametrize("size", SIZES)
def test_nodes_screen(snap_compare, size):
    assert snap_compare(still_app(), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_query_screen(snap_compare, size):
    assert snap_compare(still_app(), terminal_size=size, press=["n"])


@pytest.mark.parametrize("size", SIZES)
def test_query_screen_with_a_mistake(snap_compare, size):
    async def type_a_bad_date(pilot):
        await pilot.press("n")
        pilot.app.screen.query_one("#date_from").value = "last week"
        await pilot.press("f5")

    assert snap_compare(still_app(), terminal_size=size, run_before=type_a_bad_date)


@pytest.mark.parametrize("size", SIZES)
def test_node_editor_screen(snap_compare, size):
    assert snap_compare(still_app(), terminal_size=size, press=["enter"])


@pytest.mark.parametrize("size", SIZES)
def test_delete_confirmation(snap_compare, size):
    assert snap_compare(still_app(), terminal_size=size, press=["down", "d"])


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("stage", ["plan", "retrieved"])
def test_results_screen(snap_compare, tmp_path, tui_pacs, size, stage):
    orthanc_port, store_port = tui_pacs
    path = node_config(tmp_path, orthanc_port, store_port, associations=1)  # logs in order
    assert load_config(path)

    async def query_then_retrieve(pilot):
        await query_every_group(pilot)
        if stage == "retrieved":
            await pilot.press("r")
            await settle(pilot.app, pilot)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    app = app_for(path, echo_on_start=False)
    assert snap_compare(app, terminal_size=size, run_before=query_then_retrieve)


def fixed_history(directory: Path) -> Config:
    """A store whose history holds three runs of fixed content, and a configuration naming it."""
    from dataclasses import replace

    from qrtui.store import Missing, RunRecord, Store

    retrieve = {
        "completed": 12, "failed": 0, "warning": 0, "skipped_already_held": 3, "received": 12,
        "bytes": 412_000, "stored": 12, "inspected": 2, "discarded_after_inspection": 1,
        "studies_done": 9, "problems": [], "gaps": [], "cancelled": False,
    }  # fmt: skip
    common = dict(
        face="scripted", remote="pacs", store="local", profile="nightly-ct",
        query_key="nightly-ct", query={"groups": ["CT", "MG"], "desc_exclude": ["imported"]},
        counts={"study responses": 14, "studies to retrieve": 9}, notices=(),
    )  # fmt: skip
    runs = [
        RunRecord(
            started="2026-11-26T02:30:01+00:00", finished="2026-11-26T02:31:12+00:00",
            window_from="2026-11-25", window_until="2026-11-26T02:30:01+00:00",
            retrieve=retrieve, studies_planned=9, exit_status=0, message="", **common,
        ),
        RunRecord(
            started="2026-11-27T02:30:00+00:00", finished="2026-11-27T02:30:05+00:00",
            window_from="2026-11-25", window_until="2026-11-27T02:30:00+00:00",
            retrieve=None, studies_planned=0, exit_status=3,
            message="remote pacs: PACS@10.1.2.3:104: connection refused", **common,
        ),
        RunRecord(
            started="2026-11-28T02:30:02+00:00", finished="2026-11-28T02:32:40+00:00",
            window_from="2026-11-25", window_until="2026-11-28T02:30:02+00:00",
            retrieve={**retrieve, "failed": 1, "stored": 7,
                      "problems": ["2026-11-27 CT 'CT CHEST' series 2 (RDSR): 0xA702"]},
            studies_planned=8, exit_status=1, message="",
            missing=(Missing("1.2.826.0.1.3680043.8.498.1234", "20261127",
                             "failed: 0xA702 (refused: out of resources)"),),
            **common,
        ),
    ]  # fmt: skip
    with Store(directory) as store:
        for run in runs:
            store.history.record(run)
    local = replace(CONFIG.stores[0], directory=directory)
    return replace(CONFIG, stores=(local, CONFIG.stores[1]))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("view", ["runs", "detail"])
def test_history_screens(snap_compare, tmp_path, size, view):
    config = fixed_history(tmp_path / "store")
    app = create_app(config, today=fixed_today, cursor_blink=False, echo_on_start=False)

    async def open_history(pilot):
        await pilot.press("down", "down", "h")  # the embedded store's row
        await settle(pilot.app, pilot)
        if view == "detail":
            await pilot.press("enter")
            await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=open_history)


@pytest.mark.parametrize("size", SIZES)
def test_summary_screen(snap_compare, tmp_path, size):
    """A demo run's store: the spread per station and description, then the studies."""
    from qrtui import worker
    from qrtui.demo import demo_config
    from qrtui.demo.pacs import DemoPacs
    from qrtui.query import build_query

    with DemoPacs(today=fixed_today()) as pacs:
        config = demo_config(tmp_path, pacs)
        params = build_query(today=fixed_today(), ct=True, mg=True, fl=True, dx=True,
                             date_from="yesterday", date_until="today")  # fmt: skip
        done = worker.run(config, config.remotes[0], config.stores[0], params, dry_run=False)
        assert done.status == 0, done.message
    app = create_app(config, today=fixed_today, cursor_blink=False, echo_on_start=False)

    async def open_summary(pilot):
        await pilot.press("down", "s")
        await settle(pilot.app, pilot)

    assert snap_compare(app, terminal_size=size, run_before=open_summary)


# ---------------------------------------------------------------- the rest of the screens


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("add", ["a"]),
        ("help", ["question_mark"]),
        ("store_row", ["down", "down"]),
        ("path", ["down", "down", "o"]),
        ("load_profile", ["n", "f6"]),
        ("save_profile", ["n", "f7"]),
        ("query_help", ["n", "f1"]),
    ],
)
def test_screens(snap_compare, size, name, keys):
    assert snap_compare(still_app(), terminal_size=size, press=keys)


def fixed_probe():
    from qrtui.learned import Findings
    from qrtui.probe import ProbeReport

    found = Findings(
        probed="2026-11-28T02:00:00+00:00", echo_ms=3.0, modalities_in_study_matched=False,
        modalities_in_study_returned=False, sop_classes_in_study=False,
        study_counts_returned=False, station_name_returned=False,
        series_description_returned=False, sop_class_at_image_level=False,
        relational_image_query=True, wildcards=True, case_insensitive=False, c_get=True,
        max_associations=4,
    )  # fmt: skip
    return ProbeReport(
        "pacs", "PACS_MAIN", "pacs.example.org:104", "2026-11-21..2026-11-28", found, 20,
        ["the node took 4 associations at once, not 8"],
    )  # fmt: skip


@pytest.mark.parametrize("size", SIZES)
def test_probe_screen(snap_compare, size):
    from qrtui.tui.screens.probe import ProbeScreen

    async def show(pilot):
        await pilot.app.push_screen(ProbeScreen(CONFIG.remotes[0], fixed_probe()))
        await pilot.pause()

    assert snap_compare(still_app(), terminal_size=size, run_before=show)


@pytest.mark.parametrize("size", SIZES)
def test_text_screen(snap_compare, size):
    from qrtui.tui.screens.study import TextScreen

    lines = ["Gaps: 1", "- 2026-11-27 MG 'MAMMO' series 1 (images): PACS reported 4 completed, "
             "3 received", "", "Problems: 0"]  # fmt: skip

    async def show(pilot):
        await pilot.app.push_screen(TextScreen("Problems", lines))
        await pilot.pause()

    assert snap_compare(still_app(), terminal_size=size, run_before=show)


def test_query_screen_in_16_colours(snap_compare):
    app = create_app(CONFIG, today=fixed_today, cursor_blink=False, echo_on_start=False, ansi=True)
    assert snap_compare(app, terminal_size=(80, 24), press=["n", "tab", "tab"])


def test_query_screen_without_colour(snap_compare, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(still_app(), terminal_size=(80, 24), press=["n", "tab", "tab", "tab"])


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("stage", ["detail", "filtered"])
def test_results_details(snap_compare, tmp_path, tui_pacs, size, stage):
    orthanc_port, store_port = tui_pacs
    path = node_config(tmp_path, orthanc_port, store_port, associations=1)  # logs in order

    async def query(pilot):
        await query_every_group(pilot)
        if stage == "filtered":
            await pilot.press("slash", *"ct c", "enter")
        else:
            await pilot.press("r")
            await settle(pilot.app, pilot)
            await pilot.press("down", "enter")
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    app = app_for(path, echo_on_start=False)
    assert snap_compare(app, terminal_size=size, run_before=query)


def test_plan_in_16_colours(snap_compare, tmp_path, tui_pacs):
    orthanc_port, store_port = tui_pacs
    path = node_config(tmp_path, orthanc_port, store_port, associations=1)  # logs in order

    async def query(pilot):
        await pilot.press("n", "f5")
        await settle(pilot.app, pilot)
        await pilot.press("down", "space")
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    app = create_app(
        load_config(path), today=fixed_today, cursor_blink=False, echo_on_start=False, ansi=True
    )
    assert snap_compare(app, terminal_size=(80, 24), run_before=query)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("stage", ["plan", "retrieved", "detail"])
def test_held_forced_and_image_header_rows(snap_compare, tmp_path, size, stage):
    """Issue 27: the demo's plan on a second visit: held studies (image-header ones among
    them), one dropped study forced in; then after the run; then a study's detail with its
    events."""
    from qrtui.demo import demo_config
    from qrtui.demo.pacs import DemoPacs

    with DemoPacs(today=fixed_today()) as pacs:
        config = demo_config(tmp_path, pacs)
        app = create_app(config, start="query", demo=True, today=fixed_today,
                         cursor_blink=False, echo_on_start=False)  # fmt: skip

        async def second_visit(pilot):
            await pilot.press("f5")
            await settle(pilot.app, pilot)
            await pilot.press("down", "space", "r")  # the second row left out this time
            await settle(pilot.app, pilot)
            await pilot.press("escape", "f5")
            await settle(pilot.app, pilot)
            await pilot.press("down", "down", "down", "space")  # CT LUMBAR SPINE forced in
            if stage != "plan":
                await pilot.press("r")
                await settle(pilot.app, pilot)
            if stage == "detail":
                await pilot.press("home", "enter")
            await pilot.wait_for_scheduled_animations()
            await pilot.pause()

        assert snap_compare(app, terminal_size=size, run_before=second_visit)


@pytest.mark.parametrize("size", SIZES)
def test_node_editor_showing_an_error(snap_compare, size):
    async def bad_port(pilot):
        await pilot.press("enter")
        pilot.app.screen.query_one("#port").value = "99999"
        await pilot.pause()

    assert snap_compare(still_app(), terminal_size=size, run_before=bad_port)
