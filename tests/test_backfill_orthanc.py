"""A backfill against a real Orthanc (issue 26): stopped by SIGINT inside a day and run
again, it resumes at that day, asks nothing of the days done and fetches every dose object
once; run in days, its store, JSON, history and chain of custody equal those of the same
query run in one piece. Orthanc's Lua logs every C-FIND it is asked and holds the study
query of one day on demand."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from qrtui import clock, windows, worker
from qrtui.config import load_config
from qrtui.query import build_query
from qrtui.report import plan_json
from qrtui.store import INDEX_NAME, Store
from qrtui.worker import streaming
from tests.conftest import require
from tests.servers import ORTHANC_BIN, Orthanc, free_port, qrtui_modalities
from tests.studies import CT_IMAGE, PopulationBuilder, synthetic_image
from tests.test_never_miss import STORE_AET, config_for, ct_study
from tests.test_retrieve_integration import stored_objects

TODAY = clock.today()
DAYS = 10
FIRST, LAST = TODAY - timedelta(days=DAYS), TODAY - timedelta(days=1)
HELD = FIRST + timedelta(days=4)  # the fifth day
RANGE = ("-ct", "-f", FIRST.isoformat(), "-t", LAST.isoformat())


def _lua(work: Path, held: date) -> str:
    """Every C-FIND logged (level and study date); the study query of `held` waits, once,
    until the test releases it (bounded: a minute)."""
    return textwrap.dedent(
        f"""
        function IncomingFindRequestFilter(query, origin)
          local level = query['0008,0052'] or ''
          local dates = query['0008,0020'] or ''
          local log = io.open('{work}/finds.log', 'a')
          log:write(level .. ' ' .. dates .. '\\n')
          log:close()
          if level == 'STUDY' and string.find(dates, '{held:%Y%m%d}', 1, true) then
            local released = io.open('{work}/release', 'r')
            if released == nil then
              io.open('{work}/held', 'w'):close()
              for _ = 1, 3000 do
                released = io.open('{work}/release', 'r')
                if released ~= nil then break end
                os.execute('sleep 0.02')
              end
            end
            if released ~= nil then released:close() end
          end
          return query
        end
        """
    )


# a window a day (window_studies = 1), so that a day can be held and resumed at
DAY_BY_DAY = "timeout = 10\nwindow_studies = 1\n"


@dataclass
class Backfill:
    work: Path
    config: Path
    rdsrs: dict[date, set[str]]  # each day's dose objects
    orthanc: Orthanc

    def command(self, *more: str) -> list[str]:
        return [
            sys.executable, "-m", "qrtui", "--no-tui", "--config", str(self.config),
            "pacs", "local", *RANGE, "--json", *more,
        ]  # fmt: skip

    def finds(self) -> list[tuple[str, str]]:
        log = self.work / "finds.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [(level, dates) for level, _, dates in (line.partition(" ") for line in lines)]


@pytest.fixture
def backfill(tmp_path: Path) -> Iterator[Backfill]:
    """Orthanc holding two CT studies with an RDSR on each of ten days, and one a day with
    images only (dropped: no dose object)."""
    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    work = tmp_path / "lua"
    work.mkdir()
    script = work / "backfill.lua"
    script.write_text(_lua(work, HELD))
    store_port = free_port()
    orthanc = Orthanc(
        tmp_path / "orthanc", modalities=qrtui_modalities(STORE_AET, store_port),
        extra={"LuaScripts": [str(script)]},
    ).start()  # fmt: skip
    try:
        b = PopulationBuilder(None, tmp_path / "objects", TODAY)
        rdsrs: dict[date, set[str]] = {}
        for n in range(1, DAYS + 1):
            day = TODAY - timedelta(days=n)
            rdsrs[day] = {ct_study(b, f"ct{n}a", n, "091500"), ct_study(b, f"ct{n}b", n, "143000")}
            images = b.study(f"ct{n}c", "CT HEAD", days_ago=n, group="CT")
            b.add(images, "img", synthetic_image(CT_IMAGE, "CT"), "Axial")
        orthanc.add(b.files())
        config = config_for(tmp_path, {"pacs": (orthanc.aet, orthanc.dicom_port)}, store_port)
        config.write_text(config.read_text().replace("timeout = 10\n", DAY_BY_DAY))
        yield Backfill(work, config, rdsrs, orthanc)
    finally:
        orthanc.stop()


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    """Until Orthanc's Lua says it holds the query (an event, polled), or qrtui ended."""
    deadline = clock.monotonic() + 120
    while not path.exists():
        if proc.poll() is not None or clock.monotonic() > deadline:
            raise AssertionError(f"the fifth day's query never came: {proc.communicate()}")
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(0.05)


def interrupted(
    backfill: Backfill, proc: subprocess.Popen[str], interrupt: Callable[[], object]
) -> tuple[str, str]:
    """Once the fifth day's study query is held: `interrupt`, then what the run wrote. The
    day is let go whatever happens; the run must have ended as interrupted, cleanly."""
    try:
        _wait_for(backfill.work / "held", proc)
        interrupt()
        out, err = proc.communicate(timeout=60)
    finally:
        (backfill.work / "release").touch()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "interrupted" in err, err
    assert "Traceback" not in err, err
    return out, err


def test_sigint_inside_a_day_then_run_again_resumes_and_fetches_each_object_once(backfill):
    proc = subprocess.Popen(
        backfill.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    out, _ = interrupted(backfill, proc, lambda: proc.send_signal(signal.SIGINT))
    stopped = json.loads(out)  # what was written stays one document
    assert stopped["interrupted"] is True
    before = [FIRST + timedelta(days=n) for n in range(4)]
    assert {s["study_date"] for s in stopped["studies"]} == {f"{d:%Y%m%d}" for d in before}
    store = backfill.config.parent / "store"
    assert stored_objects(store) == set().union(*(backfill.rdsrs[d] for d in before))

    asked_first = len(backfill.finds())
    again = subprocess.run(backfill.command(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["notices"][:1] == [f"resuming: 4 of {DAYS} days done"]
    asked = [dates for level, dates in backfill.finds()[asked_first:] if level == "STUDY"]
    assert asked, "the resumed run asked its days"
    for day in before:
        assert not any(f"{day:%Y%m%d}" in dates for dates in asked), f"{day} asked again"
    after = [d for d in backfill.rdsrs if d not in before]
    retrieve = doc["retrieve"]
    assert retrieve["received"] == sum(len(backfill.rdsrs[d]) for d in after), retrieve
    assert retrieve["skipped_already_held"] == 0, "no object of a day done was fetched twice"
    assert stored_objects(store) == set().union(*backfill.rdsrs.values())
    with Store(store) as index:
        runs = index.history.runs()
    assert len(runs) == 1 and runs[0].counts[streaming.WINDOWS_BEFORE] == 4


@pytest.mark.parametrize("windows_grow", [False, True], ids=["a-day-each", "grown"])
def test_a_run_in_days_equals_the_same_query_in_one_piece(
    backfill, tmp_path, monkeypatch, windows_grow
):
    """Each window a day, or windows grown to hold about window_studies (the default)."""
    (backfill.work / "release").touch()  # no day held
    if windows_grow:
        text = backfill.config.read_text().replace(DAY_BY_DAY, "timeout = 10\n")
        backfill.config.write_text(text)
    days = subprocess.run(backfill.command(), capture_output=True, text=True, timeout=600)
    assert days.returncode == 0, days.stderr
    doc = json.loads(days.stdout)
    assert doc["counts"][streaming.WINDOWS_DONE] == DAYS
    asked = {dates for level, dates in backfill.finds() if level == "STUDY"}
    if windows_grow:  # 3 studies on the first day: the next window 8 days, then what is left
        second = f"{FIRST + timedelta(days=1):%Y%m%d}-{FIRST + timedelta(days=8):%Y%m%d}"
        assert asked == {f"{FIRST:%Y%m%d}", second, f"{LAST:%Y%m%d}"}
    else:
        assert asked == {f"{FIRST + timedelta(days=n):%Y%m%d}" for n in range(DAYS)}

    whole, whole_store = _in_one_piece(backfill, tmp_path, monkeypatch)
    assert whole.result and whole.summary and whole.params
    one = plan_json("pacs", "local", whole.params, whole.result)

    def by_uid(entries: list[dict]) -> list[dict]:
        return sorted(entries, key=lambda s: s["study_instance_uid"])

    assert by_uid(doc["studies"]) == by_uid(one["studies"]) and len(doc["studies"]) == 2 * DAYS
    assert by_uid(doc["dropped"]) == by_uid(one["dropped"]) and len(doc["dropped"]) == DAYS
    assert doc["studies_per_group"] == one["studies_per_group"]
    assert doc["retrieve"] == whole.summary.to_json() and doc["missing"] == []
    _same_stores(backfill, tmp_path / "store", whole_store)


def test_the_first_studies_fetched_early_leave_the_store_and_history_of_one_piece(
    backfill, tmp_path, monkeypatch
):
    """The first day's first study is fetched before the rest of the day is asked; the
    store, the chain of custody and the history are those of the query in one piece."""
    (backfill.work / "release").touch()  # no day held
    monkeypatch.setattr(streaming, "FIRST_STUDIES", 1)
    config = load_config(backfill.config)
    params = build_query(
        today=TODAY, date_from=FIRST.isoformat(), date_until=LAST.isoformat(), ct=True
    )
    days = worker.run(
        config, config.remote("pacs"), config.store("local"), params, dry_run=False,
        on_window=lambda *window: None,
    )  # fmt: skip
    assert days.status == 0, days.message
    _, whole_store = _in_one_piece(backfill, tmp_path, monkeypatch)
    _same_stores(backfill, tmp_path / "store", whole_store)


def _in_one_piece(
    backfill: Backfill, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[worker.JobOutcome, Path]:
    """The same query in one piece, into a store of its own."""
    whole_dir = tmp_path / "whole"
    text = backfill.config.read_text().replace(str(tmp_path / "store"), str(whole_dir / "store"))
    whole_dir.mkdir()
    (whole_dir / "config.toml").write_text(text)
    config = load_config(whole_dir / "config.toml")
    monkeypatch.setattr(windows, "STREAM_OVER_DAYS", 365)
    params = build_query(
        today=TODAY, date_from=FIRST.isoformat(), date_until=LAST.isoformat(), ct=True
    )
    whole = worker.run(config, config.remote("pacs"), config.store("local"), params, dry_run=False)
    assert whole.status == 0, whole.message
    return whole, whole_dir / "store"


def _same_stores(backfill: Backfill, days: Path, whole: Path) -> None:
    stores = {"days": days, "whole": whole}
    assert stored_objects(stores["days"]) == stored_objects(stores["whole"])
    assert stored_objects(stores["days"]) == set().union(*backfill.rdsrs.values())
    custody = {name: _plans_said(path) for name, path in stores.items()}
    assert custody["days"] == custody["whole"] and len(custody["days"]) == 3 * DAYS
    runs = {}
    for name, path in stores.items():
        with Store(path) as index:
            (runs[name],) = index.history.runs()
    for field in ("studies_planned", "retrieve", "exit_status", "missing", "window_from"):
        assert getattr(runs["days"], field) == getattr(runs["whole"], field), field


def _plans_said(store: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(store / INDEX_NAME) as db:
        return sorted(db.execute("SELECT study_uid, entry FROM run_studies"))
