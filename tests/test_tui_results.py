"""The results screen for daily work (issue 18) and the dose it shows (issue 17), driven by
Pilot against the demo PACS: choose what to fetch, see each study's fate and dose, filter,
details, and patient context on demand only."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from textual.widgets import DataTable, Input, RichLog, Static

from qrtui import clock
from qrtui.demo import DEMO_STORE, demo_config
from qrtui.demo.pacs import DemoPacs, Faults
from qrtui.demo.studies import dose_uids
from qrtui.store import INDEX_NAME
from qrtui.tui.app import create_app
from qrtui.tui.screens import QueryScreen, ResultsScreen
from qrtui.tui.screens.study import StudyDetailScreen

ALL = ("CT", "MG", "FL", "DX")


async def settle(app, pilot) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()


def stored(tmp_path: Path) -> set[str]:
    with sqlite3.connect(tmp_path / "store" / INDEX_NAME) as db:
        return {uid for (uid,) in db.execute("SELECT sop_instance_uid FROM instances")}


PATIENT_KEYS = frozenset({"PatientName", "PatientID", "PatientBirthDate"})


def demo_app(tmp_path: Path, pacs: DemoPacs):
    config = demo_config(tmp_path, pacs)
    return create_app(config, start="query", demo=True, cursor_blink=False, echo_on_start=False)


async def planned(app, pilot) -> ResultsScreen:
    assert isinstance(app.screen, QueryScreen)
    await pilot.press("f5")
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, ResultsScreen) and screen.phase == "planned"
    return screen


async def retrieved(app, pilot) -> ResultsScreen:
    """The demo form's plan, fetched whole."""
    results = await planned(app, pilot)
    await pilot.press("r")
    await settle(app, pilot)
    return results


def cursor_to(screen: ResultsScreen, uid: str) -> None:
    table = screen.query_one("#studies", DataTable)
    table.move_cursor(row=table.get_row_index(uid))


def study_uid(pacs: DemoPacs, label: str) -> str:
    return next(s for s in pacs.studies if s.label == label).objects[0].StudyInstanceUID


def column(screen: ResultsScreen, header: str) -> dict[str, str]:
    table = screen.query_one("#studies", DataTable)
    index = [str(c.label) for c in table.ordered_columns].index(header)
    return {str(key.value): str(table.get_row(key)[index]) for key in table.rows}


async def test_the_demo_form_ticks_every_modality(tmp_path):
    with DemoPacs() as pacs:
        app = demo_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)):
            form = app.screen
            assert all(form.query_one(f"#{g.lower()}").value for g in ALL)


async def test_two_studies_left_out_are_not_fetched_and_the_history_says_so(tmp_path):
    with DemoPacs() as pacs:
        app = demo_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            results = await planned(app, pilot)
            left_out = [study_uid(pacs, "ct_rdsr"), study_uid(pacs, "mg_images")]
            for uid in left_out:
                cursor_to(results, uid)
                await pilot.press("space")
            assert column(results, "")[left_out[0]] == "✗"
            status = str(results.query_one("#status", Static).render())
            fetched = len(results.plan_outcome.result.to_fetch) - 2
            assert status.startswith(f"Plan: {fetched} to fetch")
            await pilot.press("r")
            await settle(app, pilot)
            assert results.retrieve_outcome.status == 0
            outcomes = column(results, "Outcome")
            assert outcomes[left_out[0]] == "left out"
            assert outcomes[study_uid(pacs, "rf_images_only")] == "dropped: no dose"
            assert outcomes[study_uid(pacs, "ct_philips")].startswith("stored")
    wanted = dose_uids(pacs.studies, ALL, clock.today() - timedelta(days=1))
    skipped = {
        uid
        for s in pacs.studies
        if s.objects[0].StudyInstanceUID in left_out
        for uid in s.dose_uids
    }
    assert skipped and stored(tmp_path) == wanted - skipped
    history = subprocess.run(
        [sys.executable, "-m", "qrtui", "--no-tui", "--config", str(tmp_path / "config.toml"),
         "--history", DEMO_STORE, "--json"], capture_output=True, text=True, check=True,
    )  # fmt: skip
    run = json.loads(history.stdout)["runs"][0]
    assert run["face"] == "tui" and sorted(run["query"]["exclude_studies"]) == sorted(left_out)
    assert run["counts"]["removed: excluded by the user"] == 2


async def test_a_dropped_study_can_be_forced_in_and_x_drops_it_again(tmp_path):
    with DemoPacs() as pacs:
        app = demo_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            results = await planned(app, pilot)
            images_only = study_uid(pacs, "ct_images_only")
            cursor_to(results, images_only)
            assert column(results, "Decision")[images_only] == "dropped: no dose"
            await pilot.press("space")
            assert column(results, "")[images_only] == "!"
            assert column(results, "Decision")[images_only] == "forced in"
            await pilot.press("enter")
            detail = str(app.screen.query_one("#study-detail", Static).render())
            assert "forced in by you; the rule dropped it: no RDSR, Enhanced SR" in detail
            await pilot.press("escape", "x")
            assert column(results, "")[images_only] == "✗"
            await pilot.press("space", "r")
            await settle(app, pilot)
            assert column(results, "Outcome")[images_only] == "stored 2"
    forced = next(s for s in pacs.studies if s.label == "ct_images_only")
    assert {o.SOPInstanceUID for o in forced.objects} <= stored(tmp_path)


async def test_filter_by_description_station_group_or_decision(tmp_path):
    with DemoPacs() as pacs:
        app = demo_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            results = await planned(app, pilot)
            table = results.query_one("#studies", DataTable)
            everything = table.row_count
            await pilot.press("slash", *"mammo")
            assert 0 < table.row_count < everything
            assert all("MAMMO" in r.study.description for r in results.shown)
            results.query_one("#filter", Input).value = "dropped"
            await pilot.pause()
            assert {r.plan for r in results.shown} == {None}
            await pilot.press("enter")  # the filter stays; the table has the keys again
            assert table.has_focus and {r.plan for r in results.shown} == {None}
            assert isinstance(app.screen, ResultsScreen), "Enter ends the filter, opens nothing"
            await pilot.press("slash", "escape")  # Esc in the filter field clears it
            assert table.row_count == everything and table.has_focus


async def test_each_row_shows_its_fate_and_dose_and_a_failed_one_says_why(tmp_path):
    with DemoPacs() as pacs:
        failing = study_uid(pacs, "rf_rdsr")
        pacs.faults = Faults(fail_studies=frozenset({failing}))
        app = demo_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            results = await retrieved(app, pilot)
            assert results.retrieve_outcome.status == 1
            outcomes, doses = column(results, "Outcome"), column(results, "Dose")
            assert outcomes[failing] == "failed"
            assert outcomes[study_uid(pacs, "ct_rdsr")] == "stored 1"
            assert outcomes[study_uid(pacs, "ct_esr_report")] == "discarded"
            assert doses[study_uid(pacs, "ct_rdsr")] == "DLP 412.5 mGy.cm"
            assert doses[study_uid(pacs, "ct_philips")] == "dose page held"
            assert doses[failing] == "-"
            cursor_to(results, failing)
            await pilot.press("enter")
            detail = str(app.screen.query_one("#study-detail", Static).render())
            assert "Outcome: failed" in detail and "0xA702" in detail
            await pilot.press("escape", "g")
            problems = str(app.screen.query_one("#text", Static).render())
            assert "0xA702" in problems


async def test_the_detail_view_lists_series_decision_and_dose_events(tmp_path):
    with DemoPacs() as pacs:
        app = demo_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            results = await retrieved(app, pilot)
            cursor_to(results, study_uid(pacs, "ct_rdsr"))
            await pilot.press("enter")
            assert isinstance(app.screen, StudyDetailScreen)
            detail = str(app.screen.query_one("#study-detail", Static).render())
            for expected in ("CT CHEST", "Decision (RDSR): retrieve: RDSR", "Series: 2",
                             "fetch whole (RDSR)", "Outcome: stored", "Dose: RDSR",
                             "DLP total: 412.5 mGy.cm"):  # fmt: skip
                assert expected in detail, (expected, detail)


async def test_patient_context_only_on_request_and_gone_after(tmp_path):
    with DemoPacs() as pacs:
        app = demo_app(tmp_path, pacs)
        async with app.run_test(size=(120, 40)) as pilot:
            results = await planned(app, pilot)
            table = results.query_one("#studies", DataTable)

            def screen_text() -> str:
                cells = [str(c) for key in table.rows for c in table.get_row(key)]
                log = [str(line) for line in results.query_one("#log", RichLog).lines]
                return " ".join(cells + log + [str(results.query_one("#status").render())])

            assert "DEMO-0" not in screen_text() and "DEMO^PATIENT" not in screen_text()
            assert not any(PATIENT_KEYS & asked for asked in pacs.identifiers)
            await pilot.press("P")
            await settle(app, pilot)
            asked_with_toggle = [PATIENT_KEYS & asked for asked in pacs.identifiers]
            assert any(asked_with_toggle) and "PatientBirthDate" not in set().union(
                *asked_with_toggle
            )
            shown = screen_text()
            assert "[PHI shown]" in shown and "DEMO-0" in shown
            cursor_to(results, study_uid(pacs, "ct_rdsr"))
            await pilot.press("enter")
            detail = str(app.screen.query_one("#study-detail", Static).render())
            assert "[PHI shown] patient DEMO^PATIENT" in detail
            await pilot.press("escape", "P")
            await pilot.pause()
            assert results.patients is None
            assert "DEMO-0" not in screen_text() and "PHI shown" not in screen_text()
            asked_before_retrieve = len(pacs.identifiers)
            await pilot.press("r")
            await settle(app, pilot)
            assert not any(PATIENT_KEYS & a for a in pacs.identifiers[asked_before_retrieve:])
    history = subprocess.run(
        [sys.executable, "-m", "qrtui", "--no-tui", "--config", str(tmp_path / "config.toml"),
         "--history", DEMO_STORE, "--json"], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "DEMO-0" not in history and "DEMO^PATIENT" not in history


async def test_nothing_is_cut_at_80x24(tmp_path):
    """Every table and footer fits 80 columns: nothing scrolls sideways, in every phase."""
    from textual.widgets import Footer

    def fits(screen) -> list[str]:
        cut = []
        for widget in [*screen.query(DataTable), *screen.query(Footer)]:
            if widget.display and widget.virtual_size.width > widget.size.width:
                cut.append(f"{type(screen).__name__} {widget}: {widget.virtual_size.width}")
        return cut

    with DemoPacs() as pacs:
        app = demo_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            problems = fits(app.screen)
            results = await planned(app, pilot)
            problems += fits(results)
            await pilot.press("P")
            await settle(app, pilot)
            problems += fits(results)
            await pilot.press("P", "r")
            await settle(app, pilot)
            problems += fits(results)
            await pilot.press("escape", "escape")
            nodes = app.screen
            problems += fits(nodes)
            table = nodes.query_one("#nodes", DataTable)
            table.move_cursor(row=table.get_row_index(f"s:{DEMO_STORE}"))
            await pilot.pause()
            problems += fits(nodes)
            await pilot.press("h")
            await settle(app, pilot)
            problems += fits(app.screen)
            await pilot.press("escape", "s")  # the store's Summary
            await settle(app, pilot)
            assert app.screen.SUB_TITLE == "Summary"
            problems += fits(app.screen)
            await pilot.press("escape", "n")  # a second visit: held rows, one forced in
            results = await planned(app, pilot)
            await pilot.press("down", "down", "down", "space", "r")
            await settle(app, pilot)
            problems += fits(results)
    assert problems == []


async def test_a_study_shows_where_its_dose_objects_were_delivered(tmp_path):
    """Issue 25: after a retrieve, the log says what each destination took, and a study's
    detail says what became of its objects at each destination, and why not."""
    from dataclasses import replace

    from qrtui.config import Destination, save_config
    from tests.servers import free_port

    with DemoPacs() as pacs:
        config = demo_config(tmp_path, pacs)
        config = save_config(replace(
            config,
            stores=(replace(config.stores[0], forward=("folder", "openrem")),),
            destinations=(
                Destination("folder", directory=tmp_path / "import-folder"),
                Destination("openrem", aet="OPENREM", host="127.0.0.1", port=free_port()),
            ),
        ))  # fmt: skip
        app = create_app(config, start="query", demo=True, cursor_blink=False,
                         echo_on_start=False)  # fmt: skip
        async with app.run_test(size=(80, 24)) as pilot:
            results = await retrieved(app, pilot)
            log = " ".join(str(line) for line in results.query_one("#log", RichLog).lines)
            assert "delivered -> folder: sent" in log
            assert "delivered -> openrem: sent 0, queued" in log
            cursor_to(results, study_uid(pacs, "ct_rdsr"))
            await pilot.press("enter")
            detail = str(app.screen.query_one("#study-detail", Static).render())
            assert "-> folder: sent 1" in detail, detail
            assert "-> openrem: queued 1 (connection refused" in detail, detail


async def test_the_summary_screen_spreads_doses_filters_and_exports_the_cli_s_csv(tmp_path):
    """Issue 27, item 15: per station the spread of the audited value, one row per study,
    a group filter, and the CSV of `qrtui summary --csv` written where the user confirms."""
    from qrtui.tui.screens.summary import AskScreen, SummaryScreen

    with DemoPacs() as pacs:
        app = demo_app(tmp_path, pacs)
        config = app.config
        async with app.run_test(size=(80, 24)) as pilot:
            await retrieved(app, pilot)
            await pilot.press("escape", "escape")
            nodes = app.screen
            table = nodes.query_one("#nodes", DataTable)
            table.move_cursor(row=table.get_row_index(f"s:{DEMO_STORE}"))
            await pilot.press("s")
            await settle(app, pilot)
            summary = app.screen
            assert isinstance(summary, SummaryScreen)
            rows = summary.query_one("#summary-table", DataTable)
            assert rows.row_count == len(summary.rows) > 0
            spreads = str(summary.query_one("#spreads", Static).render())
            assert "CT DEMO_CT" in spreads and "DLP" in spreads and "mGy.cm" in spreads
            target = tmp_path / "summary.csv"
            await pilot.press("e")
            ask = app.screen
            assert isinstance(ask, AskScreen)
            ask.query_one("#answer", Input).value = str(target)
            await pilot.press("enter")
            await pilot.pause()
            await pilot.press("g")  # CT only
            assert {r["group"] for r in summary.shown} == {"CT"}
            assert rows.row_count == len(summary.shown) < len(summary.rows)
            assert "MG " not in str(summary.query_one("#spreads", Static).render())
    cli = subprocess.run(
        [sys.executable, "-m", "qrtui", "summary", "--config", str(config.path), DEMO_STORE,
         "--csv"], capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert target.read_bytes() == cli.stdout.replace("\n", "\r\n").encode()
