"""`qrtui --demo`, and the demo PACS's fault knobs: one test per knob, showing what qrtui
does when a PACS behaves that way."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from textual.widgets import Checkbox

from qrtui import clock, worker
from qrtui.config import Config
from qrtui.demo import DEMO_REMOTE, DEMO_STORE, demo_config
from qrtui.demo.pacs import DemoPacs, Faults
from qrtui.demo.studies import dose_uids
from qrtui.events import RetrieveProgress
from qrtui.query import build_query
from qrtui.report import plan_json, retrieve_lines
from qrtui.store import FILE_MODE, INCOMING, INDEX_NAME, PROBE
from qrtui.tui.app import create_app
from qrtui.tui.screens import QueryScreen, ResultsScreen

TODAY = clock.today()
ALL = ("CT", "MG", "FL", "DX")


def stored(store: Path) -> set[str]:
    with sqlite3.connect(store / INDEX_NAME) as db:
        return {uid for (uid,) in db.execute("SELECT sop_instance_uid FROM instances")}


def expected(pacs: DemoPacs, groups=ALL) -> set[str]:
    return dose_uids(pacs.studies, groups, TODAY - timedelta(days=1))


def test_demo_no_tui_retrieves_the_dose_objects_and_nothing_else(tmp_path):
    data_home = tmp_path / "data"
    keep = data_home / "qrtui" / "keep-me"
    keep.parent.mkdir(parents=True)
    keep.write_text("not the demo's")
    env = {**os.environ, "XDG_DATA_HOME": str(data_home)}
    command = [sys.executable, "-m", "qrtui", "--demo", "--no-tui", "--json"]
    for _ in range(2):  # the second start empties the demo directory and does it again
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)["retrieve"]
        assert (
            summary["failed"] == 0 and not summary["gaps"] and summary["skipped_already_held"] == 0
        )
        assert "DEMO^PATIENT" not in result.stdout + result.stderr
    with DemoPacs() as reference:
        wanted = expected(reference)
    assert stored(data_home / "qrtui" / "demo" / "store") == wanted
    assert summary["stored"] == len(wanted)
    assert keep.read_text() == "not the demo's"


async def test_demo_tui_opens_on_the_query_form_and_retrieves(tmp_path):
    with DemoPacs() as pacs:
        config = demo_config(tmp_path, pacs)
        app = create_app(config, start="query", cursor_blink=False, echo_on_start=False)
        async with app.run_test(size=(80, 24)) as pilot:
            assert isinstance(app.screen, QueryScreen)
            for box in ("mg", "fl", "dx"):
                app.screen.query_one(f"#{box}", Checkbox).value = True
            await pilot.press("f5")
            results = app.screen
            assert isinstance(results, ResultsScreen)
            await app.workers.wait_for_complete()
            await pilot.pause()
            await pilot.press("r")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert results.retrieve_outcome and results.retrieve_outcome.status == 0
        assert stored(tmp_path / "store") == expected(pacs)


# ---------------------------------------------------------------- the knobs


def run(pacs: DemoPacs, tmp_path: Path, groups=ALL, **remote_changes) -> worker.JobOutcome:
    config = demo_config(tmp_path, pacs)
    remote = replace(config.remote(DEMO_REMOTE), **remote_changes)
    flags = {g.lower(): True for g in groups}
    params = build_query(today=TODAY, date_from="yesterday", **flags)
    return worker.run(config, remote, config.store(DEMO_STORE), params, dry_run=False)


@pytest.fixture
def pacs():
    with DemoPacs() as server:
        yield server


def test_knob_ignore_modalities_in_study(pacs, tmp_path):
    pacs.faults = Faults(ignore_modalities_in_study=True)
    outcome = run(pacs, tmp_path)
    assert outcome.status == 0
    assert any("ignores ModalitiesInStudy" in n for n in outcome.result.notices)
    assert stored(tmp_path / "store") == expected(pacs)


def test_knob_hidden_sop_class_description_and_counts_are_inspected_not_guessed(pacs, tmp_path):
    pacs.faults = Faults(
        hide_sop_class=True, hide_series_description=True, hide_instance_count=True
    )
    outcome = run(pacs, tmp_path)
    assert outcome.status == 0, outcome.summary
    assert outcome.summary.inspected > outcome.summary.discarded_after_inspection > 0
    assert stored(tmp_path / "store") == expected(pacs)


def test_knob_empty_image_level_answers(pacs, tmp_path):
    pacs.faults = Faults(empty_image_level=True)
    outcome = run(pacs, tmp_path)
    assert outcome.status == 0, outcome.summary
    assert stored(tmp_path / "store") == expected(pacs)


@pytest.mark.parametrize("status", [0xA700, 0xFE00, 0xB001])
def test_knob_capped_results_are_asked_again_in_halves_and_the_cap_is_remembered(
    pacs, tmp_path, status
):
    pacs.faults = Faults(cap_results=5, cap_status=status)
    outcome = run(pacs, tmp_path)
    assert outcome.status == 0, outcome.result.notices
    assert outcome.result.counts["study queries split (truncated answers)"] > 0
    assert stored(tmp_path / "store") == expected(pacs)

    learned = (tmp_path / "nodes.learned.toml").read_text()
    assert "result_cap = 5" in learned, "kept beside the configuration"
    pacs.faults = Faults(cap_results=5)  # next time it stops at 5 without a word
    again = plan_only(
        pacs, tmp_path, date_from="yesterday", ct=True, mg=True, fl=True, dx=True, dup=True
    )
    assert again.result.counts["study queries split (truncated answers)"] > 0
    assert not again.result.incomplete
    with_dose = {
        s.objects[0].StudyInstanceUID
        for s in pacs.studies
        if s.dose_uids and s.group in ALL and s.study_date >= TODAY - timedelta(days=1)
    }
    assert with_dose <= {p.study.study_instance_uid for p in outcome.result.plans}
    # the non-dose Enhanced SR read in the first run is known now: no longer planned
    assert {p.study.study_instance_uid for p in again.result.plans} == with_dose


def test_knob_capped_results_that_cannot_be_split_are_flagged(pacs, tmp_path):
    pacs.faults = Faults(cap_results=5, cap_status=0xA700)
    outcome = plan_only(pacs, tmp_path, ct=True)  # no dates: an open range cannot be halved
    assert outcome.result.counts["queries possibly incomplete"] == 1
    assert any("results may be incomplete" in n for n in outcome.result.notices)


def plan_only(pacs: DemoPacs, tmp_path: Path, **flags) -> worker.JobOutcome:
    config = demo_config(tmp_path, pacs)
    params = build_query(today=TODAY, **flags)
    return worker.plan(config, config.remote(DEMO_REMOTE), config.store(DEMO_STORE), params)


def test_knob_rejected_association(pacs, tmp_path):
    pacs.faults = Faults(reject_associations=True)
    outcome = run(pacs, tmp_path)
    assert outcome.status == 3 and "rejected" in outcome.message
    assert outcome.result is None


def test_knob_abort_mid_retrieve_then_the_next_run_completes(pacs, tmp_path):
    pacs.faults = Faults(abort_after=1)
    first = run(pacs, tmp_path, groups=("MG",))
    # every retrieve is aborted, C-GET and C-MOVE alike: lost twice, the node is unusable
    assert first.status == 3 and "lost" in first.message and first.summary.problems
    partial = stored(tmp_path / "store")
    assert partial < expected(pacs, ("MG",))
    # an object sent again on the re-opened association is stored once, and counted once
    assert first.summary.stored == len(partial) < first.summary.received
    pacs.faults = Faults()
    second = run(pacs, tmp_path, groups=("MG",))
    assert second.status == 0
    assert stored(tmp_path / "store") == expected(pacs, ("MG",))
    assert second.summary.skipped_already_held == len(partial)


def test_knob_delay_beyond_the_dimse_timeout(pacs, tmp_path):
    pacs.faults = Faults(delay=2.0)
    outcome = run(pacs, tmp_path, dimse_timeout=0.5)
    assert outcome.status == 3 and "timed out" in outcome.message


def test_knob_move_destination_unknown(pacs, tmp_path):
    pacs.faults = Faults(move_status=0xA801)
    outcome = run(pacs, tmp_path, retrieve="move")
    assert outcome.status == 1
    assert "does not know the move destination QRTUI_DEMO_STORE" in outcome.message
    assert outcome.summary.requests == 1, "no retry loop"


def test_knob_warning_with_failed_sop_instances(pacs, tmp_path):
    pacs.faults = Faults(move_status=0xB000)
    outcome = run(pacs, tmp_path, groups=("MG",))
    assert outcome.status == 1
    assert outcome.summary.failed >= 1
    assert any("0xB000" in p for p in outcome.summary.problems)


def test_knob_nonsense_sub_operation_counts(pacs, tmp_path):
    pacs.faults = Faults(nonsense_counts=True)
    outcome = run(pacs, tmp_path, groups=("MG", "DX"))
    assert outcome.status == 0, outcome.message
    assert stored(tmp_path / "store") == expected(pacs, ("MG", "DX"))
    summary = outcome.summary
    assert summary.completed == summary.received == len(expected(pacs, ("MG", "DX")))


def test_knob_warning_without_failed_list_or_counts_then_the_next_run_completes(pacs, tmp_path):
    pacs.faults = Faults(move_status=0xB000, hide_failed_list=True, nonsense_counts=True)
    first = run(pacs, tmp_path, groups=("MG",))
    assert first.status == 1
    assert any("0xB000" in p for p in first.summary.problems)
    assert stored(tmp_path / "store") < expected(pacs, ("MG",))
    pacs.faults = Faults()
    second = run(pacs, tmp_path, groups=("MG",))
    assert second.status == 0
    assert stored(tmp_path / "store") == expected(pacs, ("MG",))


def test_knob_max_associations_a_node_that_allows_one_gets_one(pacs, tmp_path):
    pacs.faults = Faults(max_associations=1)
    outcome = run(pacs, tmp_path, max_associations=4)
    assert outcome.status == 0, outcome.message
    assert stored(tmp_path / "store") == expected(pacs)


def test_knob_ignored_c_cancel_is_followed_by_an_abort(pacs, tmp_path):
    """Each retrieve is held after its first object: the cancel comes mid-retrieve, and the
    PACS would go on for ever but for the abort."""
    pacs.faults = Faults(ignore_cancel=True, hold_after=1)
    config: Config = demo_config(tmp_path, pacs)
    remote, store = config.remote(DEMO_REMOTE), config.store(DEMO_STORE)
    params = build_query(today=TODAY, date_from="yesterday", mg=True)
    planned = worker.plan(config, remote, store, params)
    cancel = threading.Event()

    def emit(event):
        if isinstance(event, RetrieveProgress) and event.received >= 1:
            cancel.set()

    outcome = worker.retrieve(config, remote, store, planned.result, emit=emit, cancel=cancel)
    assert outcome.summary.cancelled
    assert outcome.summary.stored == 1 < len(expected(pacs, ("MG",)))
    assert not any((tmp_path / "store" / ".incoming").iterdir())


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_knob_garbled_text_is_decoded_tolerantly(pacs, tmp_path):
    """An unknown character set, UTF-8 bytes and descriptions far over 64 characters."""
    pacs.faults = Faults(garbled_text=True)
    outcome = run(pacs, tmp_path)
    assert outcome.status == 0, outcome.message
    descriptions = [p.study.description for p in outcome.result.plans]
    assert descriptions and all(len(d) > 64 for d in descriptions)
    assert stored(tmp_path / "store") == expected(pacs)


def test_an_object_gone_between_query_and_retrieve_is_a_failure_not_a_success(pacs, tmp_path):
    config = demo_config(tmp_path, pacs)
    remote, store = config.remote(DEMO_REMOTE), config.store(DEMO_STORE)
    planned = worker.plan(config, remote, store, build_query(today=TODAY, date_from="1d", dx=True))
    gone = planned.result.to_fetch[0].picks[0].series.series_instance_uid
    pacs.objects = [o for o in pacs.objects if o.SeriesInstanceUID != gone]
    outcome = worker.retrieve(config, remote, store, planned.result)
    assert outcome.status == 1
    assert any("found nothing to send" in p for p in outcome.summary.problems)


def test_knob_a_sub_operation_failing_once_is_asked_again_and_the_run_succeeds(pacs, tmp_path):
    pacs.faults = Faults(fail_once=True)
    outcome = run(pacs, tmp_path, groups=("MG", "DX"))
    assert outcome.status == 0, outcome.summary
    assert outcome.summary.failed == 0
    assert stored(tmp_path / "store") == expected(pacs, ("MG", "DX"))
    retried = outcome.summary.requests - len(outcome.result.to_fetch)
    assert retried >= 1


def test_only_and_exclude_study_re_run_chosen_studies(pacs, tmp_path):
    """--only-study asks those studies by UID, whatever their date; --exclude-study leaves
    studies out of the plan."""
    old = next(s for s in pacs.studies if s.label == "ct_last_month")
    chest = next(s for s in pacs.studies if s.label == "ct_rdsr")
    uid_old, uid_chest = old.objects[0].StudyInstanceUID, chest.objects[0].StudyInstanceUID
    config = demo_config(tmp_path, pacs)
    remote, store = config.remote(DEMO_REMOTE), config.store(DEMO_STORE)
    only = build_query(today=TODAY, ct=True, only_studies=[uid_old])
    planned = worker.plan(config, remote, store, only)
    assert [p.study.study_instance_uid for p in planned.result.plans] == [uid_old]
    excluded = build_query(today=TODAY, date_from="yesterday", ct=True, exclude_studies=[uid_chest])
    planned = worker.plan(config, remote, store, excluded)
    assert uid_chest not in {p.study.study_instance_uid for p in planned.result.plans}
    assert (uid_chest, "excluded by the user") in {
        (s.study_instance_uid, r) for s, r in planned.result.dropped
    }
    done = subprocess.run(
        [sys.executable, "-m", "qrtui", "--no-tui", "--config", str(config.path), DEMO_REMOTE,
         DEMO_STORE, "-ct", "--only-study", "1.2.x"], capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2 and "--only-study '1.2.x' is not a UID" in done.stderr


@pytest.mark.parametrize(
    ("faults", "method"),
    [
        (Faults(), "C-GET"),
        (Faults(refuse_get=True), "C-MOVE; the node did not take C-GET"),
        (Faults(get_status=0xA702), "C-MOVE (C-GET for 1 requests); C-GET did not work (0xA702"),
    ],
)
def test_auto_uses_c_get_where_it_works_and_says_which_was_used(tmp_path, faults, method):
    """retrieve = "auto" (the default): C-GET where the node takes it and it works; C-MOVE
    otherwise, from the first request on, with every object stored either way."""
    with DemoPacs(faults=faults) as server:
        outcome = run(server, tmp_path)
        assert outcome.status == 0, outcome.summary
        assert outcome.summary.method.startswith(method), outcome.summary.method
        assert f"Retrieved with {outcome.summary.method}" in retrieve_lines(outcome.summary)
        assert stored(tmp_path / "store") == expected(server)


def test_auto_asks_a_request_short_under_c_get_once_more_with_c_move(pacs, tmp_path):
    pacs.faults = Faults(fail_once=True)
    outcome = run(pacs, tmp_path, groups=("MG", "DX"))
    assert outcome.status == 0, outcome.summary
    assert outcome.summary.methods.get("C-MOVE", 0) >= 1
    assert stored(tmp_path / "store") == expected(pacs, ("MG", "DX"))


@pytest.mark.parametrize("retrieve", ["get", "move"])
def test_received_objects_leave_no_temporary_file_behind(pacs, tmp_path, monkeypatch, retrieve):
    """Objects arrive in the store's own incoming area and are renamed into place: nothing is
    left in the system's temporary directory (pynetdicom left each C-GET object there), and
    nothing in the incoming area; stored files get the usual permissions."""
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    outcome = run(pacs, tmp_path, retrieve=retrieve)
    assert outcome.status == 0, outcome.message
    store = tmp_path / "store"
    assert stored(store) == expected(pacs)
    assert list(system_tmp.iterdir()) == []
    assert list((store / INCOMING).iterdir()) == []
    files = [p for p in store.rglob("*.dcm") if PROBE not in p.parts]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == FILE_MODE for p in files)


def test_the_plan_json_names_the_station_of_each_study_and_series(pacs, tmp_path):
    """Audits are per scanner: the plan says which, and null where the PACS did not (the
    demo PACS answers StationName for series, not for studies)."""
    outcome = plan_only(pacs, tmp_path, date_from="yesterday", ct=True, mg=True, fl=True, dx=True)
    document = json.loads(json.dumps(plan_json("demo", "store", outcome.params, outcome.result)))
    assert document["studies"]
    for study in document["studies"]:
        assert "station_name" in study and study["station_name"] is None
        for series in study["series"]:
            assert series["station_name"] == f"DEMO_{study['modality']}"
    first = outcome.result.plans[0]  # a PACS that names the study's station
    named = replace(first, study=replace(first.study, station_name="CT ROOM 1"))
    with_station = replace(outcome.result, plans=[named])
    planned = plan_json("demo", "store", outcome.params, with_station)["studies"]
    assert planned[0]["station_name"] == "CT ROOM 1"


def test_the_retrieve_totals_on_screen_never_go_back(tmp_path):
    """Four studies fetched at once: the totals each progress event carries (what the
    status line shows) count every request in flight, so they only grow."""
    from qrtui.events import RetrieveProgress

    seen: list[RetrieveProgress] = []
    with DemoPacs() as pacs:
        config = demo_config(tmp_path, pacs)
        params = build_query(today=TODAY, date_from="yesterday", **{g.lower(): True for g in ALL})
        outcome = worker.run(
            config, config.remote(DEMO_REMOTE), config.store(DEMO_STORE), params,
            dry_run=False, emit=lambda e: isinstance(e, RetrieveProgress) and seen.append(e),
        )  # fmt: skip
    assert outcome.status == 0 and outcome.summary is not None
    for name in ("studies_done", "completed", "received", "bytes"):
        values = [getattr(e, name) for e in seen]
        assert values == sorted(values), (name, values)
    assert seen[-1].received == outcome.summary.received
