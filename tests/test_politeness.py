"""Gentle on a clinical PACS (issue 26): per remote, `max_queries_per_second` and
`quiet_hours`, checked in the configuration, obeyed at the demo PACS on a virtual clock the
test controls (qrtui.clock.VirtualClock: waiting takes no time), shown by the probe."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from qrtui import clock, worker
from qrtui.config import ConfigError, load_config
from qrtui.demo import DEMO_REMOTE, DEMO_STORE, demo_config
from qrtui.demo.pacs import DemoPacs, Faults
from qrtui.demo.studies import dose_uids
from qrtui.events import Event, Notice
from qrtui.politeness import before_request, quiet_until
from qrtui.query import build_query
from tests.conftest import qrtui
from tests.test_promises import stored

TODAY = date(2026, 3, 10)
RETRIEVES = ("C-GET", "C-MOVE")


def at(hh: int, mm: int, ss: int = 0, day: date = TODAY) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss).astimezone()


def job(
    pacs: DemoPacs, tmp_path: Path, emit: Callable[[Event], None] = lambda e: None, **remote
) -> worker.JobOutcome:
    config = demo_config(tmp_path, pacs)
    node = replace(config.remote(DEMO_REMOTE), **remote)
    params = build_query(today=TODAY, date_from="yesterday", ct=True, mg=True, fl=True, dx=True)
    return worker.run(config, node, config.store(DEMO_STORE), params, dry_run=False, emit=emit)


def wanted(pacs: DemoPacs) -> set[str]:
    return dose_uids(pacs.studies, ("CT", "MG", "FL", "DX"), TODAY - timedelta(days=1))


# ---------------------------------------------------------------- the configuration

NODE = '[remotes.pacs]\naet = "A"\nhost = "h"\n'


def _written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("max_queries_per_second = 0", r"remotes\.pacs\.max_queries_per_second: 0 must be above"),
        ("max_queries_per_second = -2.5", r"max_queries_per_second: -2.5 must be above 0"),
        ('max_queries_per_second = "5"', r"max_queries_per_second: must be a number"),
        ('quiet_hours = "7-19"', r"remotes\.pacs\.quiet_hours: '7-19' is not a window like"),
        ('quiet_hours = "07:00-25:00"', r"quiet_hours: '07:00-25:00' is not a window like"),
        ('quiet_hours = "07:00"', r"quiet_hours: '07:00' is not a window like"),
        ('quiet_hours = "07:00-07:00"', r"quiet_hours: '07:00-07:00' starts and ends at the same"),
        ("quiet_hours = 7", r"quiet_hours: must be a string"),
        ("window_studies = 0", r"remotes\.pacs\.window_studies: 0 must be between 1 and"),
        ('window_studies = "500"', r"window_studies: must be"),
    ],
)
def test_each_politeness_mistake_is_one_line(tmp_path, text, pattern):
    path = _written(tmp_path, NODE + text + "\n")
    with pytest.raises(ConfigError, match=pattern) as caught:
        load_config(path)
    assert "\n" not in str(caught.value)


def test_a_politeness_mistake_exits_2_naming_the_key(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(NODE + 'quiet_hours = "19:00-07:60"\n[stores.s]\naet = "S"\ndirectory = "/s"\n')
    done = qrtui(path, "pacs", "s", "-ct", "--dry-run")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "remotes.pacs.quiet_hours" in done.stderr


def test_politeness_settings_are_read_and_default_to_none(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(NODE + 'max_queries_per_second = 4\nquiet_hours = "22:00-06:00"\n')
    node = load_config(path).remote("pacs")
    assert node.max_queries_per_second == 4.0 and node.quiet_hours == "22:00-06:00"
    path.write_text(NODE)
    node = load_config(path).remote("pacs")
    assert node.max_queries_per_second is None and node.quiet_hours is None


@pytest.mark.parametrize(
    ("spec", "now", "until"),
    [
        ("07:00-19:00", at(6, 59, 59), None),
        ("07:00-19:00", at(7, 0), at(19, 0)),
        ("07:00-19:00", at(18, 59, 59), at(19, 0)),
        ("07:00-19:00", at(19, 0), None),
        ("22:00-06:00", at(23, 30), at(6, 0, day=TODAY + timedelta(days=1))),  # past midnight
        ("22:00-06:00", at(1, 0), at(6, 0)),
        ("22:00-06:00", at(12, 0), None),
        (None, at(12, 0), None),
    ],
)
def test_quiet_hours_end_when_their_window_ends(spec, now, until):
    assert quiet_until(spec, now) == until


# ---------------------------------------------------------------- at the demo PACS


def test_requests_reach_the_pacs_no_faster_than_max_queries_per_second(tmp_path):
    """Every C-FIND and retrieve arrives at least 1/rate after the one before."""
    virtual = clock.VirtualClock(at(2, 0))
    with clock.use(virtual), DemoPacs(today=TODAY) as pacs:
        outcome = job(pacs, tmp_path, max_associations=1, max_queries_per_second=2.0)
    assert outcome.status == 0, outcome.message
    assert stored(tmp_path / "store") == wanted(pacs)
    times = [when for when, *_ in pacs.requests]
    assert len(times) > 10 and any(what in RETRIEVES for _, what, *_ in pacs.requests)
    gaps = [b - a for a, b in pairwise(times)]
    assert min(gaps) >= timedelta(seconds=0.5), gaps


def test_one_schedule_per_node_whichever_association_asks(tmp_path):
    """Four associations (threads) asking at once share the node's slots: no two requests
    are let go less than 1/rate apart."""
    node = replace(load_config(_written(tmp_path, NODE)).remote("pacs"), max_queries_per_second=4)
    virtual = clock.VirtualClock(at(2, 0))
    with clock.use(virtual), ThreadPoolExecutor(4) as pool:
        for _ in pool.map(lambda _: before_request(node), range(40)):
            pass
    slots = sorted(virtual.waits)
    assert len(slots) == 40 and min(b - a for a, b in pairwise(slots)) >= 0.25


def test_a_run_started_in_quiet_hours_waits_for_their_end_and_says_until_when(tmp_path):
    notices: list[str] = []
    virtual = clock.VirtualClock(at(12, 0))
    with clock.use(virtual), DemoPacs(today=TODAY) as pacs:
        outcome = job(
            pacs, tmp_path, lambda e: isinstance(e, Notice) and notices.append(e.text),
            quiet_hours="07:00-19:00",
        )  # fmt: skip
    assert outcome.status == 0, outcome.message
    assert notices[0] == f"{DEMO_REMOTE}: quiet hours (07:00-19:00): paused until 2026-03-10 19:00"
    assert min(when for when, *_ in pacs.requests) >= at(19, 0)
    assert stored(tmp_path / "store") == wanted(pacs)


def test_quiet_hours_that_begin_mid_study_pause_before_the_next_study_not_inside_it(tmp_path):
    """The clock jumps into quiet hours at the first request of a study that needs two: its
    second request still goes; no other study starts before the quiet hours end."""
    virtual = clock.VirtualClock(at(6, 0))
    notices: list[str] = []
    with clock.use(virtual), DemoPacs(today=TODAY, faults=Faults(hide_sop_class=True)) as pacs:
        config = demo_config(tmp_path / "plan", pacs)
        params = build_query(today=TODAY, date_from="yesterday", ct=True, mg=True, fl=True, dx=True)
        planned = worker.plan(config, config.remote(DEMO_REMOTE), config.store(DEMO_STORE), params)
        assert planned.result is not None
        two = next(
            p.study.study_instance_uid
            for p in planned.result.to_fetch
            if len(p.picks) + len(p.probe) >= 2
        )
        serve = pacs._sub_operations

        def jump_at_its_first_request(event):  # the PACS runs in this process
            if str(event.identifier.StudyInstanceUID) == two and virtual.now() < at(7, 0):
                virtual.set(at(7, 0))
            yield from serve(event)

        pacs._sub_operations = jump_at_its_first_request
        outcome = job(
            pacs, tmp_path, lambda e: isinstance(e, Notice) and notices.append(e.text),
            max_associations=1, quiet_hours="07:00-19:00",
        )  # fmt: skip
    assert outcome.status == 0, outcome.message
    retrieves = [(when, study) for when, what, study, _ in pacs.requests if what in RETRIEVES]
    inside = [study for when, study in retrieves if at(7, 0) <= when < at(19, 0)]
    assert inside and set(inside) == {two}, "the study in flight finishes, and only it"
    after = {study for when, study in retrieves if when >= at(19, 0)}
    assert after and two not in after
    assert (
        notices.count(f"{DEMO_REMOTE}: quiet hours (07:00-19:00): paused until 2026-03-10 19:00")
        == 1
    )


def test_the_scripted_run_says_until_when_it_waits(tmp_path, monkeypatch):
    monkeypatch.setenv("QRTUI_CLOCK", "2026-03-10T08:15:00")  # the child's virtual clock
    with DemoPacs(today=TODAY) as pacs:
        config = demo_config(tmp_path, pacs).path
        text = config.read_text().replace(
            f"[remotes.{DEMO_REMOTE}]\n", f"[remotes.{DEMO_REMOTE}]\nquiet_hours = '07:00-19:00'\n"
        )
        config.write_text(text)
        done = qrtui(config, DEMO_REMOTE, DEMO_STORE, "-ct", "-f", "2026-03-09", "--json")
    assert done.returncode == 0, done.stderr
    assert "quiet hours (07:00-19:00): paused until 2026-03-10 19:00" in done.stderr
    assert json.loads(done.stdout)["retrieve"]["stored"] > 0


def test_the_probe_reports_both_settings(tmp_path):
    with DemoPacs(today=TODAY) as pacs:
        config = demo_config(tmp_path, pacs).path
        text = config.read_text().replace(
            f"[remotes.{DEMO_REMOTE}]\n",
            f"[remotes.{DEMO_REMOTE}]\nmax_queries_per_second = 20\nquiet_hours = '23:00-05:00'\n",
        )
        config.write_text(text)
        report = json.loads(qrtui(config, "--probe", DEMO_REMOTE, "--json").stdout)
        lines = qrtui(config, "--probe", DEMO_REMOTE).stdout
    assert report["max_queries_per_second"] == 20 and report["quiet_hours"] == "23:00-05:00"
    assert "politeness (config.toml): at most 20 requests a second; quiet hours 23:00-05:00" in (
        lines
    )
