"""The TUI tells the truth at a glance (issue 27): each test drives the demo PACS at 80x24
with Pilot and checks a word on the screen against what the rules and the store say."""

from __future__ import annotations

from textual.widgets import Static

from qrtui.demo.pacs import DemoPacs
from qrtui.tui.screens.study import StudyDetailScreen
from tests.test_tui_results import column, cursor_to, demo_app, planned, settle, study_uid

GROUPS = {"CT", "MG", "FL", "DX", "SR", "-"}


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
            await planned(app, pilot)
            await pilot.press("r")
            await settle(app, pilot)
            await pilot.press("escape")
            results = await planned(app, pilot)
            await pilot.press("a")  # every dropped study forced in
            await pilot.pause()
            assert set(column(results, "Grp").values()) <= GROUPS
            status = str(results.query_one("#status", Static).render())
            assert "/" not in status.split("(")[1].split(")")[0], status
