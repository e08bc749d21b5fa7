"""Promises of the README that no test would have noticed breaking (issue 23, items 2, 4, 5,
6 and 8): each test here was checked to fail with the promise broken.

The demo PACS misbehaves on purpose; Orthanc is the independent DICOM stack."""

from __future__ import annotations

import json
import tomllib
from datetime import date, timedelta
from pathlib import Path

import pytest

from qrtui.demo import demo_config
from qrtui.demo.pacs import DemoPacs, Faults
from qrtui.demo.studies import CT_IMAGE, StudyBuilder, dose_uids, rdsr
from qrtui.store import INDEX_NAME
from tests.conftest import qrtui, require
from tests.servers import ORTHANC_BIN, Orthanc, free_port, qrtui_modalities
from tests.studies import PopulationBuilder, synthetic_image

TODAY = date(2026, 3, 10)
YESTERDAY = TODAY - timedelta(days=1)
WINDOW = ("-f", YESTERDAY.isoformat(), "-t", TODAY.isoformat())
PATIENT_KEYS = frozenset({"PatientName", "PatientID", "PatientBirthDate"})


def stored(store: Path) -> set[str]:
    import sqlite3

    with sqlite3.connect(store / INDEX_NAME) as db:
        return {uid for (uid,) in db.execute("SELECT sop_instance_uid FROM instances")}


def scripted(config: Path, *flags: str) -> tuple[int, dict, str]:
    done = qrtui(config, *flags, "--json")
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def learned_cap(tmp_path: Path) -> object:
    path = tmp_path / "nodes.learned.toml"
    if not path.exists():
        return None
    return tomllib.loads(path.read_text())["nodes"].get("demo", {}).get("result_cap")


# ---------------------------------------------------------------- 2. a dropped association


def test_a_dropped_association_is_reopened_once_and_the_request_asked_again(tmp_path):
    with DemoPacs(today=TODAY, faults=Faults(abort_after=1, abort_once=True)) as pacs:
        config = demo_config(tmp_path, pacs).path
        # C-MOVE alone: under "auto" a first C-GET that fails is asked again with C-MOVE
        config.write_text(config.read_text().replace("[remotes.demo]\n", "[remotes.demo]\n"
                                                     "retrieve = 'move'\n"))  # fmt: skip
        status, doc, stderr = scripted(config, "demo", "demo-store", "-mg", *WINDOW)
    assert status == 0, stderr
    assert stored(tmp_path / "store") == dose_uids(pacs.studies, ("MG",), YESTERDAY)
    assert doc["retrieve"]["problems"] == [] and doc["retrieve"]["gaps"] == []
    assert doc["retrieve"]["stored"] == len(stored(tmp_path / "store"))  # each counted once


# ---------------------------------------------------------------- 5. silent caps


def many_ct_studies(pacs: DemoPacs, count: int, days: int, time: str | None = None) -> set[str]:
    """`count` CT studies spread over the `days` days before TODAY (at one time, if given);
    each holds an image and an RDSR. Returns the RDSRs' UIDs."""
    b = StudyBuilder(TODAY)
    wanted = set()
    for n in range(count):
        s = b.study(f"many{n}", f"CT {n}", "CT", days_ago=1 + n % days)
        b.images(s, 1, CT_IMAGE, "CT", 1)
        b.add(s, 2, rdsr(), "Dose Report", dose=True)
        if time is not None:
            for o in s.objects:
                o.StudyTime = time
        pacs.add_study(s)
        wanted |= s.dose_uids
    return wanted


@pytest.mark.parametrize(
    ("window", "cut"),
    [
        (("-sd", YESTERDAY.isoformat()), 2),  # the day before and after the second
        (("-f", (TODAY - timedelta(days=6)).isoformat(), "-t", TODAY.isoformat()), 4),
    ],
)
def test_two_hundred_studies_at_one_second_cost_a_few_study_queries(tmp_path, window, cut):
    """A complete answer of 200 CT studies at one StudyTime: halving down to that second
    took 17 splits and 38 study queries. Now the window is cut around the second (the rest
    asked once, for studies a cap hid) and the second re-asked with fewer keys, counted."""
    pacs = DemoPacs(today=TODAY)
    pacs.studies.clear()  # the demo's own studies would make the answer 210
    pacs.objects.clear()
    wanted = many_ct_studies(pacs, 200, days=1, time="101500")
    with pacs:
        config = demo_config(tmp_path, pacs)
        status, doc, stderr = scripted(config.path, "demo", "demo-store", "-ct", *window)
    assert status == 0, stderr
    per_modality = 3  # CT, PT, NM
    assert pacs.study_queries == per_modality + 1 + cut  # + the fewer keys' re-ask
    assert doc["counts"]["study queries asked again"] == 1 + cut
    assert any("no sign of a cap" in n for n in doc["notices"]), doc["notices"]
    assert stored(tmp_path / "store") == wanted


def test_a_window_cut_around_one_second_still_finds_what_a_silent_cap_hid(tmp_path):
    """A PACS that stops at 100 with success shows only studies of 10:15:00 of a day that
    holds five more at 14:00: the rest of the day, asked once, finds them; the cap is
    learned, and the second itself, still answering 100, is reported as cut short."""
    pacs = DemoPacs(today=TODAY, faults=Faults(cap_results=100))
    pacs.studies.clear()
    pacs.objects.clear()
    many_ct_studies(pacs, 150, days=1, time="101500")
    b = StudyBuilder(TODAY)
    later = set()
    for n in range(5):  # after the others, so that the capped answer leaves them out
        s = b.study(f"later{n}", f"CT later {n}", "CT", days_ago=1)
        b.images(s, 1, CT_IMAGE, "CT", 1)
        b.add(s, 2, rdsr(), "Dose Report", dose=True)
        for o in s.objects:
            o.StudyTime = "140000"
        pacs.add_study(s)
        later |= s.dose_uids
    with pacs:
        config = demo_config(tmp_path, pacs)
        status, doc, stderr = scripted(
            config.path, "demo", "demo-store", "-ct", "-sd", YESTERDAY.isoformat()
        )
    assert status == 1, stderr
    assert any("stopped at 100 matches; its halves found 5 more" in n for n in doc["notices"])
    assert "10:15:00-10:15:00: 100 matches, as many as demo returns at most (100)" in stderr
    assert later <= stored(tmp_path / "store")


def test_a_silent_cap_found_by_halving_is_learned_and_nothing_missed(tmp_path):
    pacs = DemoPacs(today=TODAY, faults=Faults(cap_results=100))  # stops at 100, Success
    wanted = many_ct_studies(pacs, 150, days=2)
    with pacs:
        config = demo_config(tmp_path, pacs)
        days = ("-f", (TODAY - timedelta(days=2)).isoformat(), "-t", TODAY.isoformat())
        status, doc, stderr = scripted(config.path, "demo", "demo-store", "-ct", *days)
    assert status == 0, stderr
    assert any("stopped at 100 matches; its halves found" in n for n in doc["notices"])
    assert learned_cap(tmp_path) == 100
    assert wanted <= stored(tmp_path / "store")


def test_a_cap_on_the_answer_size_is_beaten_by_fewer_keys_and_fetched_by_uid(tmp_path):
    """150 studies at one date and second: no window splits them. The PACS caps only wide
    answers (many return keys): asked with the matching keys alone it names all 150, and the
    50 it left out are fetched by their UIDs."""
    pacs = DemoPacs(today=TODAY, faults=Faults(cap_results=100, cap_keys=8))
    wanted = many_ct_studies(pacs, 150, days=1, time="101500")
    with pacs:
        config = demo_config(tmp_path, pacs)
        day = ("-sd", YESTERDAY.isoformat())
        status, doc, stderr = scripted(config.path, "demo", "demo-store", "-ct", *day)
    assert status == 0, stderr
    assert doc["counts"].get("queries possibly incomplete", 0) == 0
    planned = {s["study_instance_uid"] for s in doc["studies"]}
    assert len(planned & {o.StudyInstanceUID for s in pacs.studies for o in s.objects}) >= 150
    assert wanted <= stored(tmp_path / "store")


def test_a_silent_cap_over_one_second_is_reported_not_taken_as_whole(tmp_path):
    """150 studies at one second, a PACS that stops at 100 whatever it is asked: the second
    cannot be split and fewer keys bring the same 100. Its wider windows prove the cap, so
    that answer is reported as cut short (before, 50 studies went missing with status 0)."""
    pacs = DemoPacs(today=TODAY, faults=Faults(cap_results=100))
    many_ct_studies(pacs, 150, days=1, time="101500")
    with pacs:
        config = demo_config(tmp_path, pacs)
        day = ("-sd", YESTERDAY.isoformat(), "--dry-run")
        status, _, stderr = scripted(config.path, "demo", "demo-store", "-ct", *day)
    assert status == 1
    assert "10:15:00-10:15:00: 100 matches, as many as demo returns at most (100)" in stderr


def test_halves_that_lose_studies_of_the_whole_answer_are_reported(tmp_path):
    """A silent cap makes the day's answer round; its halves by time never name one study of
    it (a PACS that fails to match that study's time): the gap is reported, status 1."""
    pacs = DemoPacs(today=TODAY)
    wanted = many_ct_studies(pacs, 150, days=1)
    lost = next(s for s in pacs.studies if s.label == "many7").objects[0].StudyInstanceUID
    pacs.faults = Faults(cap_results=100, unmatched_by_time=frozenset({lost}))
    with pacs:
        config = demo_config(tmp_path, pacs)
        day = ("-sd", YESTERDAY.isoformat())
        status, _, stderr = scripted(config.path, "demo", "demo-store", "-ct", *day)
    assert status == 1
    assert "the split windows missed 1 of the" in stderr
    assert wanted <= stored(tmp_path / "store")  # the whole answer's studies are still fetched


# ---------------------------------------------------------------- 6. no patient identifiers asked


@pytest.mark.parametrize("groups", [("-ct", "-mg", "-fl", "-dx"), ("-sr",)])
def test_no_identifier_asks_for_patient_names_ids_or_birth_dates(tmp_path, groups):
    with DemoPacs(today=TODAY, faults=Faults(hide_sop_class=True)) as pacs:
        config = demo_config(tmp_path, pacs)
        status, _, stderr = scripted(config.path, "demo", "demo-store", *groups, *WINDOW)
        owed = qrtui(config.path, "--probe", "demo", "-f", YESTERDAY.isoformat())
        asked = list(pacs.identifiers)
    assert status == 0 and owed.returncode == 0, stderr + owed.stderr
    assert len(asked) > 10
    assert not [a & PATIENT_KEYS for a in asked if a & PATIENT_KEYS]


# ---------------------------------------------------------------- 4, 8. Orthanc, not the demo


@pytest.fixture
def orthanc_population(tmp_path):
    """Three generated CT studies of yesterday and one of ten days ago, in an Orthanc that
    refuses C-GET to qrtui (AllowGet false in DicomModalities) and knows its store for
    C-MOVE. Yields the configuration, yesterday's RDSRs and the old study (UID, RDSR)."""
    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    b = PopulationBuilder(None, tmp_path / "objects", TODAY)
    rdsrs, studies = set(), []
    for n in range(3):
        s = b.study(f"ct{n}", f"CT {n}", group="CT")
        s.study_time = f"10{n}500"
        b.add(s, "img", synthetic_image(CT_IMAGE, "CT"), "Axial")
        b.add(s, "rdsr", b.corpus_object("CT-RDSR-GEPixelMed.dcm"))
        rdsrs.add(s.series["rdsr"].sop_uids[0])
        studies.append(s.uid)
    old = b.study("old", "CT OLD", days_ago=10, group="CT")
    b.add(old, "img", synthetic_image(CT_IMAGE, "CT"), "Axial")
    b.add(old, "rdsr", b.corpus_object("CT-RDSR-GEPixelMed.dcm"))
    store_port = free_port()
    modalities = qrtui_modalities("QRTUI_STORE", store_port)
    refusing_get = {
        name: {"AET": aet, "Host": host, "Port": port, "AllowGet": False}
        for name, (aet, host, port) in modalities.items()
    }
    orthanc = Orthanc(
        tmp_path / "orthanc", modalities=modalities, extra={"DicomModalities": refusing_get}
    ).start()
    orthanc.upload(b.files())
    config = tmp_path / "config.toml"
    config.write_text(
        f"[remotes.pacs]\naet = 'ORTHANC'\nhost = '127.0.0.1'\nport = {orthanc.dicom_port}\n"
        "timeout = 10\n"
        f"[stores.local]\naet = 'QRTUI_STORE'\nport = {store_port}\nbind = '127.0.0.1'\n"
        f"directory = '{tmp_path / 'store'}'\n"
    )
    try:
        yield config, rdsrs, (old.uid, old.series["rdsr"].sop_uids[0])
    finally:
        orthanc.stop()


def test_auto_falls_back_to_c_move_where_orthanc_refuses_c_get(orthanc_population, tmp_path):
    config, rdsrs, _ = orthanc_population
    status, doc, stderr = scripted(config, "pacs", "local", "-ct", *WINDOW)
    assert status == 0, stderr
    assert doc["retrieve"]["method"].startswith("C-MOVE"), doc["retrieve"]["method"]
    assert "C-GET did not work" in doc["retrieve"]["method"]
    assert stored(tmp_path / "store") == rdsrs


def test_a_node_the_probe_found_refusing_c_get_gets_c_move_alone(orthanc_population, tmp_path):
    config, rdsrs, _ = orthanc_population
    probe = qrtui(config, "--probe", "pacs", "--save", "--json", "-f", YESTERDAY.isoformat())
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout)["c_get"] is False
    status, doc, stderr = scripted(config, "pacs", "local", "-ct", *WINDOW)
    assert status == 0, stderr
    assert doc["retrieve"]["method"] == "C-MOVE"  # no C-GET tried at all
    assert stored(tmp_path / "store") == rdsrs


def test_a_study_owed_by_a_failed_run_is_fetched_by_the_next_from_orthanc(
    orthanc_population, tmp_path
):
    """The store cannot write a study of ten days ago (a file stands where its folder
    goes): that study is owed; the next --since-last run, looking only from yesterday, asks
    for it by UID and fetches it."""
    config, rdsrs, (study_uid, old_rdsr) = orthanc_population
    profile = "\n[profiles.nightly]\nremote = 'pacs'\nstore = 'local'\ngroups = ['ct']\n"
    config.write_text(config.read_text() + profile)
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / study_uid).write_text("in the way")
    since = ("--profile", "nightly", "--since-last", "-f")
    status, doc, stderr = scripted(config, *since, (TODAY - timedelta(days=10)).isoformat())
    assert status == 1, stderr
    assert [m["study_instance_uid"] for m in doc["missing"]] == [study_uid]
    (tmp_path / "store" / study_uid).unlink()
    status, doc, stderr = scripted(config, *since, YESTERDAY.isoformat())
    assert status == 0, stderr
    assert stored(tmp_path / "store") == rdsrs | {old_rdsr}
    assert doc["counts"].get("owed studies asked again", 0) == 1


def test_a_cap_orthanc_repeats_is_learned(tmp_path):
    """LimitFindResults: Orthanc cuts every answer at the same count with 0xFE00; seen twice,
    the cap is learned and kept in nodes.learned.toml."""
    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    b = PopulationBuilder(None, tmp_path / "objects", TODAY)
    for n in range(12):
        s = b.study(f"ct{n}", f"CT {n}", days_ago=1 + n % 3, group="CT")
        s.study_time = f"{8 + n % 10:02d}1500"
        b.add(s, "img", synthetic_image(CT_IMAGE, "CT"), "Axial")
        b.add(s, "rdsr", b.corpus_object("CT-RDSR-GEPixelMed.dcm"))
    store_port = free_port()
    orthanc = Orthanc(
        tmp_path / "orthanc", modalities=qrtui_modalities("QRTUI_STORE", store_port),
        extra={"LimitFindResults": 5},
    )  # fmt: skip
    orthanc.start()
    try:
        orthanc.upload(b.files())
        config = tmp_path / "config.toml"
        config.write_text(
            f"[remotes.pacs]\naet = 'ORTHANC'\nhost = '127.0.0.1'\nport = {orthanc.dicom_port}\n"
            f"[stores.local]\naet = 'QRTUI_STORE'\nport = {store_port}\nbind = '127.0.0.1'\n"
            f"directory = '{tmp_path / 'store'}'\n"
        )
        week = ("-f", (TODAY - timedelta(days=6)).isoformat(), "-t", TODAY.isoformat())
        status, doc, stderr = scripted(config, "pacs", "local", "-ct", *week, "--dry-run")
    finally:
        orthanc.stop()
    assert status == 0, stderr
    assert len(doc["studies"]) == 12
    learned = tomllib.loads((tmp_path / "nodes.learned.toml").read_text())
    assert learned["nodes"]["pacs"]["result_cap"] == 5
