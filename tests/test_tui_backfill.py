"""A long range in the TUI (issue 26): the form asks whether to run it as a backfill; the
backfill runs day by day with days done, objects, bytes, rate and time left on screen;
cancelled, the days done stay done and the next backfill of the same query resumes; q
stops it first and exits as an interrupted run."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

from textual.widgets import Input, ProgressBar, Static

from qrtui.demo import demo_config
from qrtui.demo.pacs import DemoPacs
from qrtui.tui.app import create_app
from qrtui.tui.screens import QueryScreen, ResultsScreen
from qrtui.tui.screens.backfill import BackfillScreen
from qrtui.tui.screens.confirm import ChoiceScreen
from tests.test_backfill import (
    DAYS,
    FIRST,
    LAST,
    TODAY,
    files,
    hold_the_fifth_day,
    population,
    wanted,
)  # fmt: skip


def backfill_app(tmp_path, pacs: DemoPacs):
    config = demo_config(tmp_path, pacs, window_studies=1)  # a window a day
    return create_app(
        config, today=lambda: TODAY, start="query", demo=True, cursor_blink=False,
        echo_on_start=False,
    )  # fmt: skip


async def settle(app, pilot) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()


async def backfilled(app, pilot):
    """The ten days asked for and run as a backfill, to the end: its screen."""
    await ask_for_the_range(app, pilot)
    await pilot.press("b")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, BackfillScreen)
    await settle(app, pilot)
    return screen


async def ask_for_the_range(app, pilot) -> None:
    """The form filled with the ten days; F5 asks how to run them."""
    form = app.screen
    assert isinstance(form, QueryScreen)
    form.query_one("#date_from", Input).value = FIRST.isoformat()
    form.query_one("#date_until", Input).value = LAST.isoformat()
    await pilot.press("f5")
    await pilot.pause()
    assert isinstance(app.screen, ChoiceScreen)


@contextlib.asynccontextmanager
async def held_backfill(tmp_path, pacs: DemoPacs) -> AsyncIterator[tuple]:
    """A backfill started from the form and held inside its fifth day: (app, pilot, its
    screen, the event that releases the day); released on the way out, whatever happens."""
    held, release = hold_the_fifth_day(pacs)
    with pacs:
        app = backfill_app(tmp_path, pacs)
        try:
            async with app.run_test(size=(80, 24)) as pilot:
                await ask_for_the_range(app, pilot)
                await pilot.press("b")
                screen = app.screen
                assert await asyncio.to_thread(held.wait, 60)
                yield app, pilot, screen, release
        finally:
            release.set()


def status(screen) -> str:
    return str(screen.query_one("#status", Static).render())


def log(screen) -> str:
    return "\n".join(line.text for line in screen.query_one("#log").lines)


async def test_a_long_range_runs_as_a_backfill_with_its_progress(tmp_path):
    with population() as pacs:
        app = backfill_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await backfilled(app, pilot)
            assert status(screen).startswith(f"Backfill done: {DAYS} of {DAYS} days;"), status(
                screen
            )
            days = [line for line in log(screen).splitlines() if " to fetch, " in line]
            assert [line[:10] for line in days] == [
                (FIRST + timedelta(days=n)).isoformat() for n in range(DAYS)
            ]
            assert screen.query_one("#days", ProgressBar).progress == DAYS
    assert set(files(tmp_path / "store")) == wanted(pacs)


async def test_p_plans_the_whole_range_as_before(tmp_path):
    with population() as pacs:
        app = backfill_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            await ask_for_the_range(app, pilot)
            await pilot.press("p")
            await settle(app, pilot)
            assert isinstance(app.screen, ResultsScreen) and app.screen.phase == "planned"


async def test_a_cancelled_backfill_resumes_at_the_first_day_not_done(tmp_path):
    pacs = population()
    async with held_backfill(tmp_path, pacs) as (app, pilot, screen, release):
        line = status(screen)  # the day's progress line, before the cancel
        await pilot.press("c")
        assert status(screen).startswith("Stopping:"), status(screen)
        release.set()
        await settle(app, pilot)
        assert status(screen).startswith(f"Stopped after 4 of {DAYS} days"), status(screen)
        assert line.startswith(f"days 4/{DAYS} done ("), line
        await pilot.press("escape")
        await ask_for_the_range(app, pilot)
        await pilot.press("b")
        await settle(app, pilot)
        again = app.screen
        assert f"resuming: 4 of {DAYS} days done" in log(again)
        assert status(again).startswith(f"Backfill done: {DAYS} of {DAYS} days;")
    assert set(files(tmp_path / "store")) == wanted(pacs)
    assert Counter(pacs.sent).most_common(1)[0][1] == 1, "nothing fetched twice"


async def test_q_during_a_backfill_stops_it_then_exits_as_interrupted(tmp_path):
    async with held_backfill(tmp_path, population()) as (app, pilot, screen, release):
        await pilot.press("q")
        assert status(screen).startswith("Stopping: cancelling the backfill"), status(screen)
        release.set()
        quitting = [w for w in app.workers if w.group == "quit"]
        assert quitting
        await quitting[0].wait()
    assert app.return_code == 130


async def test_a_backfill_whose_node_goes_away_says_so_not_stopped(tmp_path):
    """Every retrieve loses its association: the screen tells the node's failure (status 3),
    not "Stopped after", which would read as the user's own cancel."""
    pacs = population()

    def gone(event):
        event.assoc.abort()
        yield from ()

    pacs._sub_operations = gone
    with pacs:
        app = backfill_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await backfilled(app, pilot)
            assert status(screen).startswith(
                f"Backfill ended (status 3), 0 of {DAYS} days done: remote demo"
            ), status(screen)


async def test_the_backfill_question_is_read_whole_at_80_columns(tmp_path):
    """The question wraps inside its dialog rather than lose its end at the border."""
    from textual.widgets import Label

    with population() as pacs:
        app = backfill_app(tmp_path, pacs)
        async with app.run_test(size=(80, 24)) as pilot:
            await ask_for_the_range(app, pilot)
            question = app.screen.query(Label).first()
            inside = app.screen.query_one("#dialog").content_region
            assert str(question.render()).endswith("plan the whole range first?")
            assert question.region.right <= inside.right, (question.region, inside)
