"""A backfill in windows of a day, resumable (issue 26): a range longer than
qrtui.windows.STREAM_OVER_DAYS is planned, retrieved and marked done day by day;
interrupted and run again, it starts at the first day not done; run in days or in one
piece, the store, the plan and the history are the same."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from qrtui import windows, worker
from qrtui.config import RemoteNode
from qrtui.demo import DEMO_REMOTE, DEMO_STORE, demo_config
from qrtui.demo.pacs import DemoPacs, Faults
from qrtui.demo.studies import dose_uids
from qrtui.dicom.find import FindSession
from qrtui.events import Event, FunnelProgress, Notice, RetrieveProgress, WindowProgress
from qrtui.funnel import Funnel
from qrtui.funnel.counts import IMAGE_QUERIES, NO_DOSE, SERIES_QUERIES
from qrtui.query import build_query
from qrtui.report import plan_json
from qrtui.status import EXIT_PARTIAL, EXIT_UNREACHABLE
from qrtui.store import INDEX_NAME, Store
from qrtui.worker import streaming
from tests.test_promises import many_ct_studies

TODAY = date(2026, 3, 10)
DAYS = 10
FIRST, LAST = TODAY - timedelta(days=DAYS), TODAY - timedelta(days=1)
GROUPS = ("CT", "MG", "FL", "DX")


class Stop(KeyboardInterrupt):
    """What Ctrl-C or SIGTERM raises in the scripted run (qrtui.cli.run.interrupt)."""


def population() -> DemoPacs:
    pacs = DemoPacs(today=TODAY)  # its own 21 studies of yesterday, and one a month ago
    many_ct_studies(pacs, 30, days=DAYS)  # three a day over the ten days
    return pacs


def wanted(pacs: DemoPacs) -> set[str]:
    return {
        uid
        for n in range(1, DAYS + 1)
        for uid in dose_uids(pacs.studies, GROUPS, TODAY - timedelta(days=n))
    }


def job(
    pacs: DemoPacs,
    directory: Path,
    emit=lambda e: None,
    dry_run=False,
    window_studies=1,
    first: date = FIRST,
    cancel: threading.Event | None = None,
    on_window: streaming.OnWindow | None = None,
    **remote: object,
) -> worker.JobOutcome:
    """The range run as a backfill; by default a window a day."""
    config = demo_config(directory, pacs, window_studies=window_studies, **remote)
    flags = {g.lower(): True for g in GROUPS}
    params = build_query(
        today=TODAY, date_from=first.isoformat(), date_until=LAST.isoformat(), **flags
    )
    context = worker.RunContext(started=worker.RunContext().started.replace(
        year=TODAY.year, month=TODAY.month, day=TODAY.day
    ))  # fmt: skip
    return worker.run(
        config, config.remote(DEMO_REMOTE), config.store(DEMO_STORE), params,
        dry_run=dry_run, emit=emit, context=context, cancel=cancel, on_window=on_window,
    )  # fmt: skip


def lost_when(handler, lost):
    """The demo PACS's `handler`, except that a request for which `lost(event)` holds loses
    its association instead of an answer."""

    def answer(event):
        if lost(event):
            event.assoc.abort()
            return
        yield from handler(event)

    return answer


def files(store: Path) -> dict[str, str]:
    with sqlite3.connect(store / INDEX_NAME) as db:
        return dict(db.execute("SELECT sop_instance_uid, path FROM instances"))


def test_a_long_range_runs_day_by_day_and_says_how_far_it_is():
    params = build_query(today=TODAY, date_from=FIRST.isoformat(), ct=True)
    days = windows.day_windows(params, TODAY)
    assert days is not None and days[0] == FIRST and days[-1] == TODAY and len(days) == 11
    short = build_query(today=TODAY, date_from=(TODAY - timedelta(days=6)).isoformat(), ct=True)
    assert windows.day_windows(short, TODAY) is None  # a week or less: in one piece
    assert windows.day_windows(build_query(today=TODAY, ct=True), TODAY) is None


def test_interrupted_then_run_again_it_starts_at_the_first_day_not_done(tmp_path):
    """Stopped (as by Ctrl-C) inside the fifth day, after its study queries: run again, it
    says so, asks nothing of the four days done, and every dose object arrives exactly once."""
    seen: list[WindowProgress] = []

    def stop_inside_the_fifth_day(event: Event) -> None:
        if isinstance(event, WindowProgress):
            seen.append(event)
        if len(seen) == 4 and isinstance(event, FunnelProgress) and event.stage == "series query":
            raise Stop

    with population() as pacs:
        with pytest.raises(Stop):
            job(pacs, tmp_path, stop_inside_the_fifth_day)
        first_run = len(pacs.requests)
        assert [e.done for e in seen] == [1, 2, 3, 4] and seen[-1].total == DAYS
        again = job(pacs, tmp_path)
    assert again.status == 0, again.message
    assert again.result is not None and again.summary is not None
    assert again.result.notices[0] == f"resuming: 4 of {DAYS} days done"
    done = {(FIRST + timedelta(days=n)).strftime("%Y%m%d") for n in range(4)}
    asked_again = {day for _, what, _, day in pacs.requests[first_run:] if what == "C-FIND"}
    assert not asked_again & done, "a day done is not asked again"
    assert (FIRST + timedelta(days=4)).strftime("%Y%m%d") in asked_again
    assert Counter(pacs.sent).most_common(1)[0][1] == 1, "nothing fetched twice"
    assert set(files(tmp_path / "store")) == wanted(pacs)
    counts = again.result.counts
    assert counts[streaming.WINDOWS_TOTAL] == DAYS and counts[streaming.WINDOWS_DONE] == DAYS
    assert counts[streaming.WINDOWS_BEFORE] == 4
    with Store(tmp_path / "store") as store:
        (run,) = store.history.runs()  # the interrupted run is not in the history
    assert run.counts[streaming.WINDOWS_DONE] == DAYS and run.exit_status == 0


def test_a_run_in_days_keeps_the_same_store_plan_and_history_as_one_piece(tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "FIRST_STUDIES", 1)  # the first day fetched in two parts
    with population() as pacs:
        in_days = job(pacs, tmp_path / "days")
        monkeypatch.setattr(windows, "STREAM_OVER_DAYS", 365)
        whole = job(pacs, tmp_path / "whole")
    assert in_days.status == whole.status == 0
    assert in_days.result is not None and whole.result is not None
    assert streaming.WINDOWS_TOTAL not in whole.result.counts, "the one piece was one piece"
    days_store, whole_store = (
        files(tmp_path / "days" / "store"),
        files(tmp_path / "whole" / "store"),
    )
    assert days_store == whole_store and set(days_store) == wanted(pacs)

    def planned(outcome: worker.JobOutcome) -> dict:
        assert outcome.result is not None and outcome.params is not None
        doc = plan_json(DEMO_REMOTE, DEMO_STORE, outcome.params, outcome.result)
        stages = (
            "study responses", "duplicate responses merged", "removed: modality not asked",
            "removed: no dose object", "studies to retrieve", "studies undecided (inspect first)",
        )  # fmt: skip
        return {
            "studies": sorted(doc["studies"], key=lambda s: s["study_instance_uid"]),
            "dropped": sorted(doc["dropped"], key=lambda s: s["study_instance_uid"]),
            "per group": doc["studies_per_group"],
            "counts": {k: doc["counts"].get(k, 0) for k in stages},
        }

    assert planned(in_days) == planned(whole)

    def history(directory: Path) -> dict:
        with Store(directory / "store") as store:
            (run,) = store.history.runs()
        return {
            "window": (run.window_from, run.window_until), "planned": run.studies_planned,
            "status": run.exit_status, "retrieve": run.retrieve, "missing": run.missing,
        }  # fmt: skip

    assert history(tmp_path / "days") == history(tmp_path / "whole")


def test_a_dry_run_goes_day_by_day_too_and_marks_nothing_done(tmp_path):
    windows: list[WindowProgress] = []
    with population() as pacs:
        dry = job(
            pacs, tmp_path, lambda e: isinstance(e, WindowProgress) and windows.append(e), True
        )
        assert dry.status == 0 and dry.summary is None
        assert [w.done for w in windows] == list(range(1, DAYS + 1))
        assert windows[-1].eta_seconds == 0
        real = job(pacs, tmp_path)
    assert real.result is not None and real.result.counts[streaming.WINDOWS_BEFORE] == 0


def test_no_time_left_is_guessed_from_empty_days_alone(tmp_path):
    """A range that opens on days with no study: those windows go fast, so they give no
    estimate of the time left; the first window with studies does."""
    progress: list[WindowProgress] = []
    with population() as pacs:
        outcome = job(
            pacs, tmp_path, lambda e: isinstance(e, WindowProgress) and progress.append(e),
            first=FIRST - timedelta(days=15),
        )  # fmt: skip
    assert outcome.status == 0, outcome.message
    empty = [w for w in progress if w.received == 0]
    assert empty and all(w.eta_seconds is None and "left" not in w.line() for w in empty)
    assert progress[-1].eta_seconds is not None and progress[-1].received > 0


def test_days_asked_but_not_in_whole_are_not_called_done(tmp_path):
    """Every study query fails: each window is asked and none comes in whole. The progress
    says so (asked, not done), and the run's count of days done stays at 0."""
    progress: list[WindowProgress] = []
    pacs = population()
    pacs.faults = Faults(find_status=0xA700)
    with pacs:
        outcome = job(
            pacs, tmp_path, lambda e: isinstance(e, WindowProgress) and progress.append(e)
        )
    assert outcome.status == EXIT_PARTIAL and outcome.result is not None
    assert outcome.result.counts[windows.WINDOWS_DONE] == 0
    assert progress and all(w.done == 0 for w in progress)
    assert progress[-1].asked == DAYS
    assert progress[-1].line().startswith(f"days {DAYS}/{DAYS} asked, 0 done"), progress[-1].line()


def test_a_day_that_did_not_come_in_whole_is_not_done_and_is_asked_again(tmp_path):
    pacs = population()
    late = next(s for s in pacs.studies if s.label == "many9")  # ten days ago: the first day
    withheld = frozenset(late.dose_uids)
    pacs.faults = Faults(withhold=withheld)
    with pacs:
        short = job(pacs, tmp_path)
        assert short.status == 1 and not withheld & set(files(tmp_path / "store"))
        pacs.faults = Faults()
        again = job(pacs, tmp_path)
    assert again.status == 0, again.message
    assert again.result is not None
    assert again.result.notices[0] == f"resuming: {DAYS - 1} of {DAYS} days done"
    assert set(files(tmp_path / "store")) == wanted(pacs)


def withheld_then_again(
    tmp_path: Path, day: date
) -> tuple[list[WindowProgress], set, worker.JobOutcome]:
    """A run with the default window_studies, a dose object of `day` withheld; then run
    again with nothing withheld: the first run's windows, the dates the second asked."""
    pacs = population()
    late = next(s for s in pacs.studies if s.label.startswith("many") and s.study_date == day)
    withheld = frozenset(late.dose_uids)
    pacs.faults = Faults(withhold=withheld)
    seen: list[WindowProgress] = []
    with pacs:
        short = job(pacs, tmp_path, lambda e: isinstance(e, WindowProgress) and seen.append(e),
                    window_studies=RemoteNode.window_studies)  # fmt: skip
        assert short.status == 1 and not withheld & set(files(tmp_path / "store"))
        first_run = len(pacs.requests)
        pacs.faults = Faults()
        again = job(pacs, tmp_path, window_studies=RemoteNode.window_studies)
        asked_again = {day for _, what, _, day in pacs.requests[first_run:] if what == "C-FIND"}
    assert again.status == 0, again.message
    assert set(files(tmp_path / "store")) == wanted(pacs)
    return seen, asked_again - {""}, again


def test_windows_grow_with_what_they_hold_and_one_not_whole_is_asked_again(tmp_path):
    """With the default window_studies, the first window is a day (3 studies), the next 8
    days (the most it may grow), the last what is left. A study withheld inside the second
    window: none of its days is done, and the next run asks them all again, not the rest."""
    second = [FIRST + timedelta(days=n) for n in range(1, 9)]
    seen, asked_again, again = withheld_then_again(tmp_path, FIRST + timedelta(days=4))
    labels = [FIRST.isoformat(), f"{second[0]} to {second[-1]}", LAST.isoformat()]
    # the 8-day window is asked, and not done: the progress counts it as asked only
    assert [(w.day, w.asked, w.done) for w in seen] == list(
        zip(labels, [1, 9, 10], [1, 1, 2], strict=True)
    )
    assert again.result is not None
    assert again.result.notices[0] == f"resuming: 2 of {DAYS} days done"
    # the second window's days, from a day again; not the first day nor the last, done
    assert asked_again == {f"{second[0]:%Y%m%d}", f"{second[1]:%Y%m%d}-{second[-1]:%Y%m%d}"}


def test_every_day_of_a_window_that_came_in_whole_is_done(tmp_path):
    """A study withheld on the last day: the first two windows (nine days) came in whole."""
    _, asked_again, again = withheld_then_again(tmp_path, LAST)
    assert again.result is not None
    assert again.result.notices[0] == f"resuming: 9 of {DAYS} days done"
    assert asked_again == {f"{LAST:%Y%m%d}"}


def test_a_window_grows_from_a_day_by_what_the_days_so_far_held():
    grow, most = windows.WINDOW_GROWTH, windows.WINDOW_MOST_DAYS
    assert windows.next_window_days((0, 0), (0, 0), 500) == 1  # the first: a first object soon
    assert windows.next_window_days((1, 0), (1, 0), 500) == 2  # nothing yet: doubling
    assert windows.next_window_days((3, 0), (2, 0), 500) == 4
    assert windows.next_window_days((15, 0), (4, 0), 500) == 8
    assert windows.next_window_days((1, 3), (1, 3), 500) == grow  # at most 8x the last
    assert windows.next_window_days((9, 450), (8, 400), 500) == 10  # 50 a day: 500 in 10 days
    assert windows.next_window_days((20, 100), (4, 400), 500) == 5  # the busier rate counts
    assert windows.next_window_days((20, 100), (10, 0), 500) == 80  # a quiet week: capped
    assert windows.next_window_days((9, 4000), (4, 4000), 500) == 1  # busy: a day at a time
    assert windows.next_window_days((300, 10), (64, 1), 500) == most
    assert windows.next_window_days((5, 3), (5, 0), 1) == 1  # window_studies = 1: a day each
    assert windows.next_window_days((5, 0), (5, 0), 1) == 1
    days = [FIRST, FIRST + timedelta(days=1), FIRST + timedelta(days=3)]
    assert windows.next_window(days, 8) == days[:2]  # a window never spans a gap
    assert windows.next_window(days[2:], 8) == days[2:]


# ---------------------------------------------------------------- the scripted run


def scripted(config: Path, *more: str) -> list[str]:
    return [
        sys.executable, "-m", "qrtui", "--no-tui", "--config", str(config), DEMO_REMOTE,
        DEMO_STORE, "-ct", "-mg", "-fl", "-dx", "-f", FIRST.isoformat(), "-t", LAST.isoformat(),
        "--json", *more,
    ]  # fmt: skip


def test_the_json_of_a_run_in_days_is_one_document_with_every_study(tmp_path, monkeypatch):
    with population() as pacs:
        config = demo_config(tmp_path / "days", pacs, window_studies=1).path
        done = subprocess.run(scripted(config), capture_output=True, text=True, timeout=300)
        monkeypatch.setattr(windows, "STREAM_OVER_DAYS", 365)
        whole = job(pacs, tmp_path / "whole")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert whole.result is not None and whole.params is not None and whole.summary is not None
    one = plan_json(DEMO_REMOTE, DEMO_STORE, whole.params, whole.result)

    def by_uid(entries: list[dict]) -> list[dict]:
        return sorted(entries, key=lambda s: s["study_instance_uid"])

    assert by_uid(doc["studies"]) == by_uid(one["studies"]) and doc["studies"]
    assert by_uid(doc["dropped"]) == by_uid(one["dropped"]) and doc["dropped"]
    assert doc["studies_per_group"] == one["studies_per_group"]
    assert doc["retrieve"] == whole.summary.to_json() and doc["missing"] == []
    assert doc["counts"][streaming.WINDOWS_DONE] == DAYS and doc["run_id"] == 1
    with Store(tmp_path / "days" / "store") as store:
        (run,) = store.history.runs()
    assert run.studies_planned == len(one["studies"]) and run.retrieve == doc["retrieve"]
    custody = {name: plans_said(tmp_path / name / "store") for name in ("days", "whole")}
    assert custody["days"] == custody["whole"] and len(custody["days"]) > len(one["studies"])


def plans_said(store: Path) -> list[tuple[str, str]]:
    """What the run's plan said of each study, as the chain of custody keeps it."""
    with sqlite3.connect(store / INDEX_NAME) as db:
        return sorted(db.execute("SELECT study_uid, entry FROM run_studies"))


def hold_the_fifth_day(pacs: DemoPacs, day: int = 4) -> tuple[threading.Event, threading.Event]:
    """Every retrieve of the fifth day (or `day` days after the first) waits until released
    (held is set), then sends nothing: qrtui has stopped that request by then."""
    fifth = (FIRST + timedelta(days=day)).strftime("%Y%m%d")
    held, release = threading.Event(), threading.Event()
    serve = pacs._sub_operations

    def holding(event):
        if not release.is_set() and any(
            s.objects[0].StudyDate == fifth
            and s.objects[0].StudyInstanceUID == event.identifier.StudyInstanceUID
            for s in pacs.studies
        ):
            held.set()
            release.wait(60)
            return
        yield from serve(event)

    pacs._sub_operations = holding
    return held, release


def test_sigint_inside_a_day_then_run_again_fetches_everything_once(tmp_path):
    """The PACS holds every retrieve of the fifth day until SIGINT has come (then sends
    nothing for it): the JSON written so far is closed as one document; run again, the run
    resumes at that day, asks nothing of the days done, and no object is sent twice."""
    pacs = population()
    held, release = hold_the_fifth_day(pacs)
    with pacs:
        config = demo_config(tmp_path, pacs, window_studies=1).path
        proc = subprocess.Popen(
            scripted(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        try:
            assert held.wait(120), proc.communicate(timeout=30)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130 and "interrupted" in err, err
        stopped = json.loads(out)
        assert stopped["interrupted"] is True
        before = {(FIRST + timedelta(days=n)).strftime("%Y%m%d") for n in range(4)}
        assert {s["study_date"] for s in stopped["studies"]} == before, "written as each day ended"
        first_run = len(pacs.requests)
        again = subprocess.run(scripted(config), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["notices"][0] == f"resuming: 4 of {DAYS} days done"
    asked_again = {day for _, what, _, day in pacs.requests[first_run:] if what == "C-FIND"}
    assert not asked_again & before
    assert Counter(pacs.sent).most_common(1)[0][1] == 1, "nothing fetched twice"
    assert set(files(tmp_path / "store")) == wanted(pacs)


def test_empty_days_are_asked_on_associations_kept_from_one_window_to_the_next(tmp_path):
    """A window with nothing to retrieve leaves the funnel's associations open for the next:
    twenty empty days are not twenty associations opened and released."""
    windows: list[WindowProgress] = []
    with population() as pacs:
        config = demo_config(tmp_path, pacs, window_studies=1)  # a window a day
        empty = FIRST - timedelta(days=20), FIRST - timedelta(days=1)
        params = build_query(
            today=TODAY, date_from=empty[0].isoformat(), date_until=empty[1].isoformat(), mg=True
        )
        outcome = worker.run(
            config, config.remote(DEMO_REMOTE), config.store(DEMO_STORE), params,
            dry_run=False, emit=lambda e: isinstance(e, WindowProgress) and windows.append(e),
        )  # fmt: skip
    assert outcome.status == 0, outcome.message
    assert len(windows) == 20 and pacs.study_queries >= 20
    assert pacs.associations == 1


@pytest.mark.parametrize("first_studies", [streaming.FIRST_STUDIES, 1])
def test_a_node_that_takes_one_association_at_a_time_gives_a_whole_backfill(
    tmp_path, monkeypatch, first_studies
):
    """The funnel's kept associations are let go before a window's retrieve, which the node
    would otherwise refuse; before the first studies' early retrieve (1) as well."""
    monkeypatch.setattr(streaming, "FIRST_STUDIES", first_studies)
    with population() as pacs:
        pacs.faults = Faults(max_associations=1)
        outcome = job(pacs, tmp_path)
        assert outcome.status == 0, outcome.message
        assert set(files(tmp_path / "store")) == wanted(pacs)


@pytest.mark.parametrize("empty_days", [0, 3])
def test_the_first_studies_are_fetched_before_the_rest_of_their_day_is_asked(
    tmp_path, monkeypatch, empty_days
):
    """The first window that holds any study (after `empty_days` without) fetches its first
    studies before it asks for the series of the rest."""
    monkeypatch.setattr(streaming, "FIRST_STUDIES", 1)
    events: list[Event] = []
    with population() as pacs:
        outcome = job(pacs, tmp_path, emit=events.append, first=FIRST - timedelta(days=empty_days))
        assert outcome.status == 0 and set(files(tmp_path / "store")) == wanted(pacs)
    stored = next(i for i, e in enumerate(events) if isinstance(e, RetrieveProgress) and e.received)
    window_ends = next(
        i for i, e in enumerate(events) if i > stored and isinstance(e, WindowProgress)
    )
    assert events[window_ends].done == empty_days + 1, "the first day with studies"
    asked_after = [
        e.stage
        for e in events[stored:window_ends]
        if isinstance(e, FunnelProgress) and e.stage in ("series query", "image query")
    ]
    assert asked_after, "the day was decided whole before anything was fetched"
    told = [e.text for e in events[:stored] if isinstance(e, Notice)]
    assert "fetching the first 1 study; then the rest of the window" in told
    assert outcome.summary is not None
    assert outcome.summary.stored == len(wanted(pacs)), "each object stored once"


def test_a_dry_run_fetches_nothing_early(tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "FIRST_STUDIES", 1)
    events: list[Event] = []
    with population() as pacs:
        outcome = job(pacs, tmp_path, emit=events.append, dry_run=True)
    assert outcome.status == 0 and outcome.summary is None
    assert not any(isinstance(e, RetrieveProgress) for e in events)
    assert not (tmp_path / "store" / INDEX_NAME).exists()


def test_cancelled_while_the_first_studies_are_fetched_then_run_again_gets_all_once(
    tmp_path, monkeypatch
):
    """Cancelled in the first day's early retrieve: the rest of the day is not asked, the
    day is not done, what was planned for that part is handed on and kept in the chain of
    custody, and the run again fetches every object once."""
    monkeypatch.setattr(streaming, "FIRST_STUDIES", 1)
    pacs = population()
    held, release = hold_the_fifth_day(pacs, day=0)
    cancel = threading.Event()
    outcomes: list[worker.JobOutcome] = []

    handed: list[int] = []

    def run() -> None:
        on_window = lambda _, first, last, plans: handed.append(len(plans.plans))  # noqa: E731
        outcomes.append(job(pacs, tmp_path, cancel=cancel, on_window=on_window))

    with pacs:
        thread = threading.Thread(target=run)
        thread.start()
        assert held.wait(60)
        series_asked = sum(what == "C-FIND" for _, what, _, _ in pacs.requests)
        cancel.set()
        release.set()
        thread.join(120)
        (stopped,) = outcomes
        assert stopped.status != 0 and stopped.summary is not None and stopped.summary.cancelled
        assert sum(what == "C-FIND" for _, what, _, _ in pacs.requests) == series_asked
        assert handed == [1], "the early part, handed on"
        with sqlite3.connect(tmp_path / "store" / INDEX_NAME) as db:
            custody = db.execute("SELECT entry FROM run_studies").fetchall()
        assert len(custody) == 1 and '"outcome": "interrupted"' in custody[0][0]
        again = job(pacs, tmp_path)
    assert again.status == 0
    assert again.result is not None and not again.result.counts.get(streaming.WINDOWS_BEFORE)
    assert Counter(pacs.sent).most_common(1)[0][1] == 1, "nothing fetched twice"
    assert set(files(tmp_path / "store")) == wanted(pacs)


def test_a_node_gone_in_the_early_retrieve_ends_the_run_unreachable(tmp_path, monkeypatch):
    """Every retrieve loses its association as the first studies are fetched, in a run with
    a cancel event (as the TUI's): the run ends as unreachable, not as cancelled."""
    monkeypatch.setattr(streaming, "FIRST_STUDIES", 1)
    pacs = population()

    def gone(event):  # every retrieve's association lost: the session gives up
        event.assoc.abort()
        yield from ()

    pacs._sub_operations = gone
    with pacs:
        outcome = job(pacs, tmp_path, cancel=threading.Event())
    assert outcome.status == EXIT_UNREACHABLE, outcome.message
    assert "cancelled" not in outcome.message
    assert outcome.summary is not None and outcome.summary.stored == 0


def test_a_node_gone_in_a_series_query_leaves_the_users_cancel_alone(tmp_path):
    """The node drops every series query of a run with a cancel event (as the TUI's): the
    run ends unreachable and the event stays unset, so the face reports the failure, not a
    stop that nobody asked for."""
    pacs = population()
    pacs._on_find = lost_when(pacs._on_find, lambda e: e.identifier.QueryRetrieveLevel == "SERIES")
    cancel = threading.Event()
    with pacs:
        outcome = job(pacs, tmp_path, cancel=cancel)
    assert outcome.status == EXIT_UNREACHABLE, outcome.message
    assert not cancel.is_set(), "the node's failure is not the user's cancel"


@pytest.mark.parametrize("first_studies", [8, 1], ids=["early-part", "one-study-early"])
def test_a_retrieve_that_cannot_work_stops_the_backfill(tmp_path, monkeypatch, first_studies):
    """Every C-MOVE refused (the node does not know our store): the retrieve stops, as
    asking again cannot help, and so does the backfill, with a cancel event as the TUI's:
    not a window's queries and requests more, for every window of the range."""
    monkeypatch.setattr(streaming, "FIRST_STUDIES", first_studies)
    pacs = population()
    pacs.faults = Faults(move_status=0xA801)
    with pacs:
        outcome = job(pacs, tmp_path, cancel=threading.Event(), retrieve="move")
    moves = [r for r in pacs.requests if r[1] == "C-MOVE"]
    assert outcome.status == EXIT_PARTIAL and "cancelled" not in outcome.message
    assert len(moves) == 1, moves


def test_a_study_refused_among_the_first_leaves_its_day_not_done(tmp_path, monkeypatch):
    """The early part fails (the PACS refuses its study), the rest of the day comes in: the
    run is partial, that day is not done, and the run again asks it alone."""
    monkeypatch.setattr(streaming, "FIRST_STUDIES", 1)
    pacs = population()
    serve, refused = pacs._sub_operations, []

    def refuse_the_first(event):
        study = str(event.identifier.StudyInstanceUID)
        if refused and refused[0] != study:
            yield from serve(event)
            return
        refused.append(study)
        yield 1
        yield 0xA702, None  # refused: out of resources

    pacs._sub_operations = refuse_the_first
    with pacs:
        stopped = job(pacs, tmp_path)
        assert stopped.status == EXIT_PARTIAL, stopped.message
        pacs._sub_operations = serve
        again = job(pacs, tmp_path)
    assert again.status == 0 and again.result is not None
    assert again.result.notices[0] == f"resuming: {DAYS - 1} of {DAYS} days done"
    assert set(files(tmp_path / "store")) == wanted(pacs)


def test_a_funnel_decided_in_two_parts_counts_as_one_does():
    """The first studies decided, handed on, then the rest: the same plans and the same
    counts as one pass (series queries aside: the first part asks for its own list)."""
    flags = {g.lower(): True for g in GROUPS}
    params = build_query(today=TODAY, date_from=LAST.isoformat(), **flags)
    results, heads, shown = [], [], []
    with DemoPacs(today=TODAY) as pacs:  # its 21 studies of yesterday, of every kind
        node = RemoteNode("demo", pacs.aet, "127.0.0.1", pacs.port, timeout=10)
        for head in (0, 12):
            progress: dict[str, list[tuple[int, int | None]]] = {}
            shown.append(progress)

            def show(event, progress=progress):
                if isinstance(event, FunnelProgress) and event.stage.endswith("query"):
                    progress.setdefault(event.stage, []).append((event.done, event.total))

            with FindSession("QRTUI", node) as session:
                funnel = Funnel(session, node, params, emit=show, today=TODAY)
                results.append(funnel.run(head, heads.append))
    one, parts = results
    steps = shown[1]["series query"]  # on screen: one stage of the window's studies
    assert steps[-1] == shown[0]["series query"][-1], (steps, shown[0]["series query"])
    assert [done for done, _ in steps] == sorted(done for done, _ in steps), steps
    assert {total for _, total in steps} == {shown[0]["series query"][-1][1]}, steps
    for run in shown:  # image queries: one stage too, ending at the count of them
        steps = run["image query"]
        assert [done for done, _ in steps] == sorted(done for done, _ in steps), steps
        assert all(done <= total for done, total in steps), steps
        assert steps[-1] == (one.counts[IMAGE_QUERIES], one.counts[IMAGE_QUERIES]), steps
    assert len(heads) == 1 and 0 < len(heads[0]) <= 12 and all(p in parts.plans for p in heads[0])
    assert sorted(p.study.study_instance_uid for p in one.plans) == sorted(
        p.study.study_instance_uid for p in parts.plans
    )
    assert one.counts[NO_DOSE] > 0 and one.counts[IMAGE_QUERIES] > 0, "a population that tells"
    counted = {k: v for k, v in parts.counts.items() if k != SERIES_QUERIES}
    assert counted == {k: v for k, v in one.counts.items() if k != SERIES_QUERIES}
