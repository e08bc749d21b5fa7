"""Never trust a PACS (issue 22): a PACS that sends less than it listed, answers for other
studies or dates, sends what nobody asked for, mislabels objects, or fails every query.
Each case runs the scripted command against the demo PACS misbehaving on purpose, and
checks the exit status, the line on stderr, the store, its index and the learned file.

The clock is the test's own: the demo PACS's studies and every window are dated from
TODAY, a fixed day, and every window is closed."""

from __future__ import annotations

import json
import sqlite3
import tomllib
from datetime import date, timedelta
from pathlib import Path

import pytest

from qrtui.demo import demo_config
from qrtui.demo.pacs import DemoPacs, Faults
from qrtui.demo.studies import CT_IMAGE, SECONDARY_CAPTURE, StudyBuilder, dose_uids, rdsr
from qrtui.store import INDEX_NAME, UNASKED
from tests.conftest import qrtui

TODAY = date(2026, 3, 10)
YESTERDAY = TODAY - timedelta(days=1)
RDSR_CLASS = "1.2.840.10008.5.1.4.1.1.88.67"
WINDOW = ("-f", YESTERDAY.isoformat(), "-t", TODAY.isoformat())


def index_rows(store: Path) -> dict[str, tuple[str, str, str]]:
    """SOP instance UID -> (study UID, SOP class, kind), as the index holds them."""
    with sqlite3.connect(store / INDEX_NAME) as db:
        rows = db.execute("SELECT sop_instance_uid, study_uid, sop_class_uid, kind FROM instances")
        return {uid: (study, cls, kind) for uid, study, cls, kind in rows}


def files_of(store: Path, study_uid: str) -> list[Path]:
    return sorted(store.rglob(f"{study_uid}/**/*.dcm"))


def study(pacs: DemoPacs, label: str) -> str:
    return next(s for s in pacs.studies if s.label == label).objects[0].StudyInstanceUID


def five_rdsrs(pacs: DemoPacs) -> list[str]:
    """A CT study whose one SR series holds five RDSRs (continued reports)."""
    b = StudyBuilder(TODAY)
    s = b.study("ct_five_rdsrs", "CT CONTINUED", "CT")
    b.images(s, 1, CT_IMAGE, "CT", 1)
    for _ in range(5):
        b.add(s, 2, rdsr(), "Dose Report", dose=True)
    pacs.add_study(s)
    return [str(o.SOPInstanceUID) for o in s.objects if o.SOPClassUID == RDSR_CLASS]


def scripted(tmp_path: Path, pacs: DemoPacs, *flags: str):
    config = demo_config(tmp_path, pacs)
    done = qrtui(config.path, "demo", "demo-store", *flags, *WINDOW, "--json")
    return done, json.loads(done.stdout) if done.stdout.strip() else {}


def expected(pacs: DemoPacs, groups: tuple[str, ...]) -> set[str]:
    return dose_uids(pacs.studies, groups, YESTERDAY)


# ---------------------------------------------------------------- 1. less than listed


def test_a_pacs_that_sends_fewer_objects_than_it_listed_leaves_the_study_owed(tmp_path):
    pacs = DemoPacs(today=TODAY)
    rdsrs = five_rdsrs(pacs)
    pacs.faults = Faults(withhold=frozenset(rdsrs[3:]))
    with pacs:
        done, doc = scripted(tmp_path, pacs, "-ct")
        assert done.returncode == 1, done.stderr
        study_uid = study(pacs, "ct_five_rdsrs")
        assert f"study {study_uid}: 2 of the 5 objects the PACS listed did not arrive" in (
            done.stderr
        )
        held = index_rows(tmp_path / "store")
        assert set(rdsrs[:3]) <= held.keys() and not set(rdsrs[3:]) & held.keys()
        assert [m["study_instance_uid"] for m in doc["missing"]] == [study_uid]
        assert doc["retrieve"]["gaps"]

        pacs.faults = Faults()  # the PACS mended: the next run fetches the two, and only them
        again, doc = scripted(tmp_path, pacs, "-ct")
        assert again.returncode == 0, again.stderr
        assert doc["retrieve"]["stored"] == 2
        assert set(rdsrs) <= index_rows(tmp_path / "store").keys()


def test_a_shortfall_against_the_plan_is_asked_once_more_by_instance(tmp_path):
    pacs = DemoPacs(today=TODAY)
    rdsrs = five_rdsrs(pacs)
    pacs.faults = Faults(withhold=frozenset(rdsrs[3:]), withhold_once=True)
    with pacs:
        done, doc = scripted(tmp_path, pacs, "-ct")
    assert done.returncode == 0, done.stderr
    assert set(rdsrs) <= index_rows(tmp_path / "store").keys()
    assert index_rows(tmp_path / "store").keys() == expected(pacs, ("CT",))
    assert doc["retrieve"]["gaps"] == [] and doc["missing"] == []


@pytest.mark.parametrize("once", [False, True], ids=["withheld", "withheld once"])
def test_a_whole_series_short_of_its_count_is_asked_again_else_owed(tmp_path, once):
    """MG images are fetched as a whole series, unlisted: the series answer's count
    (NumberOfSeriesRelatedInstances) is what the plan knows of them."""
    with DemoPacs(today=TODAY) as pacs:
        mg = next(s for s in pacs.studies if s.label == "mg_images")
        images = sorted(str(o.SOPInstanceUID) for o in mg.objects)
        pacs.faults = Faults(withhold=frozenset(images[:1]), withhold_once=once)
        done, doc = scripted(tmp_path, pacs, "-mg")
    rows = index_rows(tmp_path / "store")
    if once:
        assert done.returncode == 0, done.stderr
        assert rows.keys() == expected(pacs, ("MG",))
    else:
        assert done.returncode == 1, done.stderr
        assert "1 of the 4 objects the PACS counted in the series did not arrive" in done.stderr
        assert rows.keys() == expected(pacs, ("MG",)) - set(images[:1])
        assert [m["study_instance_uid"] for m in doc["missing"]] == [mg.objects[0].StudyInstanceUID]


# ---------------------------------------------------------------- 2. other studies, other dates


def test_series_answered_for_another_study_are_dropped_and_never_filed(tmp_path):
    with DemoPacs(today=TODAY) as pacs:
        asked, other = study(pacs, "ct_rdsr"), study(pacs, "ct_last_month")
        pacs.faults = Faults(  # miscounted: series are asked study by study
            foreign_series={asked: other}, lowest_key_only=True, miscount_series=True
        )
        done, doc = scripted(tmp_path, pacs, "-ct")
    assert done.returncode == 0, done.stderr
    assert doc["counts"]["answers for another study or series dropped"] == 2
    store = tmp_path / "store"
    assert index_rows(store).keys() == expected(pacs, ("CT",))
    assert files_of(store, other) == []


def test_objects_nobody_asked_for_are_set_aside_and_reported(tmp_path):
    with DemoPacs(today=TODAY) as pacs:
        other = study(pacs, "ct_last_month")
        pacs.faults = Faults(also_send=other)
        done, doc = scripted(tmp_path, pacs, "-ct")
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("qrtui: incomplete: ")
    problems = doc["retrieve"]["problems"]
    assert any("did not ask for; set aside in .unasked/, not indexed" in p for p in problems)
    store = tmp_path / "store"
    rows = index_rows(store)
    assert rows.keys() == expected(pacs, ("CT",))
    assert other not in {study for study, _, _ in rows.values()}
    assert files_of(store / UNASKED, other)
    assert not [p for p in files_of(store, other) if UNASKED not in p.parts]


def test_study_answers_outside_the_asked_dates_are_dropped(tmp_path):
    with DemoPacs(today=TODAY, faults=Faults(ignore_dates=True)) as pacs:
        done, doc = scripted(tmp_path, pacs, "-ct")
        other = study(pacs, "ct_last_month")
    assert done.returncode == 0, done.stderr
    assert doc["counts"]["removed: answers outside the asked dates or times"] >= 1
    assert index_rows(tmp_path / "store").keys() == expected(pacs, ("CT",))
    assert files_of(tmp_path / "store", other) == []


# ---------------------------------------------------------------- 3. the object says what it is


def test_the_index_takes_the_sop_class_from_the_object_not_the_command(tmp_path):
    with DemoPacs(today=TODAY, faults=Faults(store_as=SECONDARY_CAPTURE)) as pacs:
        done, doc = scripted(tmp_path, pacs, "-ct")
    assert done.returncode == 0, done.stderr
    rows = index_rows(tmp_path / "store")
    assert rows.keys() == expected(pacs, ("CT",))
    rdsr_rows = [
        rows[o.SOPInstanceUID] for o in pacs.objects if o.SOPInstanceUID in rows
        and o.SOPClassUID == RDSR_CLASS
    ]  # fmt: skip
    assert rdsr_rows and all(cls == RDSR_CLASS and kind == "RDSR" for _, cls, kind in rdsr_rows)
    notes = doc["retrieve"]["sender_notes"]
    assert any(f"sent as SOP class {SECONDARY_CAPTURE}, but is {RDSR_CLASS}" in n for n in notes)


# ---------------------------------------------------------------- 6, 7. caps and failures


def learned(tmp_path: Path) -> dict[str, object]:
    path = tmp_path / "nodes.learned.toml"
    if not path.exists():
        return {}
    return dict(tomllib.loads(path.read_text())["nodes"].get("demo", {}))


def test_one_failure_status_teaches_no_cap(tmp_path):
    faults = Faults(cap_results=1, cap_status=0xA700, cap_times=1)
    with DemoPacs(today=TODAY, faults=faults) as pacs:
        done, doc = scripted(tmp_path, pacs, "-ct", "-mg")
    assert done.returncode == 0, done.stderr
    assert "result_cap" not in learned(tmp_path)
    assert not any("cap" in notice for notice in doc["notices"]), doc["notices"]
    assert index_rows(tmp_path / "store").keys() == expected(pacs, ("CT", "MG"))


def test_the_same_count_cut_short_twice_is_learned_as_the_cap(tmp_path):
    with DemoPacs(today=TODAY, faults=Faults(cap_results=2, cap_status=0xA700)) as pacs:
        done, _ = scripted(tmp_path, pacs, "-mg")
    assert done.returncode == 0, done.stderr
    assert learned(tmp_path)["result_cap"] == 2
    assert index_rows(tmp_path / "store").keys() == expected(pacs, ("MG",))


def test_a_learned_cap_that_a_complete_answer_contradicts_is_forgotten(tmp_path):
    with DemoPacs(today=TODAY) as pacs:
        config = demo_config(tmp_path, pacs)
        (tmp_path / "nodes.learned.toml").write_text("[nodes.demo]\nresult_cap = 1\n")
        done = qrtui(config.path, "demo", "demo-store", "-ct", *WINDOW)
    assert done.returncode == 0, done.stderr
    assert "more than the cap learned before (1): that cap is forgotten" in done.stdout
    assert "result_cap" not in learned(tmp_path)


def test_a_pacs_failing_every_study_query_is_reported_not_split_for_an_hour(tmp_path):
    with DemoPacs(today=TODAY, faults=Faults(find_status=0xA700)) as pacs:
        config = demo_config(tmp_path, pacs)
        week = ("-f", (TODAY - timedelta(days=6)).isoformat(), "-t", TODAY.isoformat())
        done = qrtui(config.path, "demo", "demo-store", "-mg", *week)
        asked = pacs.study_queries
    assert done.returncode == 1, done.stderr
    assert "failed twice" in done.stderr
    # a week is split by days, not seconds: 13 queries for the days, 7 asked again
    assert asked <= 2 * 7 - 1 + 7
    assert "result_cap" not in learned(tmp_path)


def test_splitting_stops_at_its_budget_and_says_so(tmp_path, monkeypatch):
    from qrtui import worker
    from qrtui.demo import DEMO_REMOTE, DEMO_STORE
    from qrtui.funnel import counts
    from qrtui.query import build_query

    monkeypatch.setattr(counts, "SPLIT_QUERIES_AT_LEAST", 6)
    monkeypatch.setattr(counts, "SPLIT_QUERIES_PER_DAY", 1)
    with DemoPacs(today=TODAY, faults=Faults(cap_results=1, cap_status=0xA700)) as pacs:
        config = demo_config(tmp_path, pacs)
        params = build_query(today=TODAY, date_from=YESTERDAY.isoformat(),
                             date_until=TODAY.isoformat(), mg=True)  # fmt: skip
        outcome = worker.run(
            config, config.remote(DEMO_REMOTE), config.store(DEMO_STORE), params, dry_run=True
        )
        asked = pacs.study_queries
    assert outcome.status == 1
    assert "split budget is spent" in outcome.message
    assert asked <= 1 + 6


# ---------------------------------------------------------------- 8. why, on stderr


def test_an_object_qrtui_refuses_is_named_in_the_problem(tmp_path):
    with DemoPacs(today=TODAY, faults=Faults(misname_instance=True)) as pacs:
        done, doc = scripted(tmp_path, pacs, "-dx")
    assert done.returncode == 1
    assert done.stderr.startswith("qrtui: ")
    why = "the command and the dataset name different instances (0xA900)"
    assert why in done.stderr
    assert all(why in p for p in doc["retrieve"]["problems"])
    assert index_rows(tmp_path / "store") == {}


@pytest.mark.parametrize(
    "faults",
    [Faults(move_status=0xB000), Faults(also_send="x"), Faults(find_status=0xA700)],
    ids=["a failed sub-operation", "an unasked object", "a failed query"],
)
def test_every_exit_one_says_why_on_stderr_also_with_json(tmp_path, faults):
    with DemoPacs(today=TODAY) as pacs:
        if faults.also_send:
            faults.also_send = study(pacs, "ct_last_month")
        pacs.faults = faults
        done, _ = scripted(tmp_path, pacs, "-mg")
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith("qrtui: ")]
    assert lines and "see the summary" not in lines[0], done.stderr
    assert any(word in lines[0] for word in ("incomplete", "failed", "refused")), lines
