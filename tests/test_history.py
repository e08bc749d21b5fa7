"""The continuing job (issue 14): saved queries, --since-last checkpoints, studies still owed,
and the run history, against a real Orthanc and the demo PACS."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from qrtui import clock
from qrtui.demo import DEMO_REMOTE, DEMO_STORE, demo_config
from qrtui.demo.pacs import DemoPacs, Faults
from qrtui.demo.studies import DemoStudy, dose_uids
from qrtui.store import INDEX_NAME
from tests.conftest import corpus_if_present, qrtui, require
from tests.servers import ORTHANC_BIN, Orthanc, free_port, qrtui_modalities
from tests.studies import CT_IMAGE, PopulationBuilder, synthetic_image
from tests.test_retrieve_integration import stored_objects

TODAY = clock.today()
STORE_AET = "QRTUI_STORE"


def as_json(done: subprocess.CompletedProcess[str]) -> dict:
    assert done.stdout, done.stderr
    return json.loads(done.stdout)


def write_config(tmp_path: Path, pacs_port: int, store_port: int, profile: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"[remotes.pacs]\naet = 'ORTHANC'\nhost = '127.0.0.1'\nport = {pacs_port}\ntimeout = 5\n"
        f"[stores.local]\naet = '{STORE_AET}'\nport = {store_port}\nbind = '127.0.0.1'\n"
        f"directory = '{tmp_path / 'store'}'\n"
        "[profiles.nightly]\nremote = 'pacs'\nstore = 'local'\ngroups = ['ct', 'mg']\n"
        "exclude = ['research']\noverlap = '1d'\n" + profile
    )
    return path


def ct_study(b: PopulationBuilder, label: str, days_ago: int, description: str = "CT CHEST") -> str:
    study = b.study(label, description, days_ago=days_ago, group="CT")
    b.add(study, "img", synthetic_image(CT_IMAGE, "CT"), "Axial")
    b.add(study, "rdsr", b.corpus_object("CT-RDSR-GEPixelMed.dcm"))
    return study.series["rdsr"].sop_uids[0]


def checkpoint(store: Path, key: str) -> str | None:
    with sqlite3.connect(store / INDEX_NAME) as db:
        row = db.execute("SELECT until FROM checkpoints WHERE query_key = ?", (key,)).fetchone()
    return row[0] if row else None


def test_a_nightly_profile_with_since_last_never_leaves_a_gap(tmp_path):
    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    b = PopulationBuilder(corpus_if_present(), tmp_path / "objects", TODAY)
    first = {ct_study(b, "yesterday", 1)}
    ct_study(b, "research", 1, "CT CHEST RESEARCH")  # the profile excludes it
    store_port = free_port()
    orthanc = Orthanc(tmp_path / "orthanc", modalities=qrtui_modalities(STORE_AET, store_port))
    orthanc.start()
    store = tmp_path / "store"
    try:
        orthanc.upload(b.files())
        config = write_config(tmp_path, orthanc.dicom_port, store_port)

        # 1. A profile run, the first with --since-last: yesterday to now, and it says so.
        done = qrtui(config, "--profile", "nightly", "--since-last", "--json")
        assert done.returncode == 0, done.stderr
        doc = as_json(done)
        assert doc["profile"] == "nightly" and doc["query"]["desc_exclude"] == ["research"]
        assert any("no complete run of nightly yet" in n for n in doc["notices"])
        assert doc["query"]["date_from"] == (TODAY - timedelta(days=1)).isoformat()
        assert stored_objects(store) == first
        after_first = checkpoint(store, "nightly")
        assert after_first is not None

        # 2. Only what was added in between.
        before = set(b.files())
        added = {ct_study(b, "today", 0)}
        orthanc.upload([f for f in b.files() if f not in before])
        doc = as_json(qrtui(config, "--profile", "nightly", "--since-last", "--json"))
        assert doc["retrieve"]["received"] == 1 and doc["retrieve"]["stored"] == 1
        assert stored_objects(store) == first | added

        # 3. Twice in a row: nothing new, exit 0.
        done = qrtui(config, "--profile", "nightly", "--since-last", "--json")
        assert done.returncode == 0 and as_json(done)["retrieve"]["received"] == 0

        # 4. The last complete run was four days ago (as if the nights since were missed);
        # meanwhile a study of three days ago reached the PACS late, and the PACS is down.
        four_days_ago = (clock.now() - timedelta(days=4)).isoformat("T", "seconds")
        with sqlite3.connect(store / INDEX_NAME) as db:
            db.execute(
                "UPDATE checkpoints SET until = ? WHERE query_key = 'nightly'", (four_days_ago,)
            )
        before = set(b.files())
        late = {ct_study(b, "late", 3)}
        orthanc.upload([f for f in b.files() if f not in before])
        orthanc.stop()
        done = qrtui(config, "--profile", "nightly", "--since-last", "--json")
        assert done.returncode == 3, done.stderr
        assert "pacs" in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert checkpoint(store, "nightly") == four_days_ago, "a failed run moves nothing"

        # 5. The PACS is back: the next run covers the whole missed window.
        orthanc.start()
        config = write_config(tmp_path, orthanc.dicom_port, store_port)
        done = qrtui(config, "--profile", "nightly", "--since-last", "--json")
        assert done.returncode == 0, done.stderr
        doc = as_json(done)
        assert doc["query"]["date_from"] == (TODAY - timedelta(days=5)).isoformat()
        assert stored_objects(store) == first | added | late
        assert checkpoint(store, "nightly") > four_days_ago
    finally:
        orthanc.stop()

    # The morning check: every run, newest first, with what it did.
    history = as_json(qrtui(config, "--history", "local", "--json"))
    runs = history["runs"]
    assert [r["exit_status"] for r in runs] == [0, 3, 0, 0, 0]
    assert [r["retrieve"]["stored"] if r["retrieve"] else None for r in runs] == [1, None, 0, 1, 1]
    assert [r["studies_planned"] for r in runs] == [1, 0, 0, 1, 1]
    for run in runs:
        assert run["profile"] == "nightly" and run["remote"] == "pacs" and run["missing"] == []
        assert {"started", "finished", "window", "message", "retrieve"} <= set(run)
        assert set(run["window"]) == {"from", "until"}
    assert runs[1]["message"].startswith("remote pacs:") and runs[1]["counts"] == {}
    assert runs[0]["window"]["from"] == (TODAY - timedelta(days=5)).isoformat()
    assert set(runs[0]["retrieve"]) == set(doc["retrieve"]), "the same keys as a run's retrieve"
    assert json.dumps(history).count("Synthetic") == 0, "no patient data"
    text = qrtui(config, "--history", "local", "--limit", "2")
    assert text.returncode == 0 and len(text.stdout.strip().splitlines()) == 3
    assert "exit 3" in text.stdout and "profile nightly" in text.stdout


SINCE_LAST = (DEMO_REMOTE, DEMO_STORE, "-ct", "--since-last", "--json")


def owe_the_old_study(
    pacs: DemoPacs, config: Path
) -> tuple[DemoStudy, str, subprocess.CompletedProcess[str]]:
    """A backfill of a month (-f 31d) whose PACS refuses one old study, which is owed."""
    old = next(s for s in pacs.studies if s.label == "ct_last_month")
    old_uid = old.objects[0].StudyInstanceUID
    pacs.faults = Faults(fail_studies=frozenset({old_uid}))
    return old, old_uid, qrtui(config, *SINCE_LAST, "-f", "31d")


def test_a_failed_study_is_owed_and_fetched_by_a_later_run_whatever_its_date(tmp_path):
    """A backfill of a month (-f 31d) fails one old study; the nightly run, which looks only
    from yesterday, still asks for it by UID and fetches it."""
    with DemoPacs() as pacs:
        config = demo_config(tmp_path, pacs)
        old, old_uid, done = owe_the_old_study(pacs, config.path)
        args = SINCE_LAST
        assert done.returncode == 1, done.stderr
        doc = as_json(done)
        assert [m["study_instance_uid"] for m in doc["missing"]] == [old_uid]
        assert "0xA702" in doc["missing"][0]["reason"]

        pacs.faults = Faults()
        done = qrtui(config.path, *args)
        assert done.returncode == 0, done.stderr
        doc = as_json(done)
        assert doc["query"]["date_from"] == (TODAY - timedelta(days=1)).isoformat()
        assert doc["counts"]["owed studies asked again"] == 1
        assert doc["missing"] == [] and doc["retrieve"]["stored"] == len(old.dose_uids)
        wanted = dose_uids(pacs.studies, ("CT",), TODAY - timedelta(days=31))
        assert stored_objects(tmp_path / "store") == wanted

        history = as_json(qrtui(config.path, "--history", DEMO_STORE, "--json"))["runs"]
        assert [r["exit_status"] for r in history] == [0, 1]
        assert history[1]["missing"][0]["study_instance_uid"] == old_uid
        assert history[0]["missing"] == []
        done = qrtui(config.path, *args)
        assert (
            done.returncode == 0 and as_json(done)["counts"].get("owed studies asked again", 0) == 0
        )


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ("remote = 'nowhere'\nstore = 'local'\ngroups = ['ct']", "profiles.p.remote: no remote 'nowhere'"),
        ("remote = 'pacs'\nstore = 'local'\ngroups = ['us']", "profiles.p.groups: unknown group 'us'"),
        ("remote = 'pacs'\nstore = 'local'\ngroups = ['ct']\noverlap = 'a week'", "profiles.p.overlap:"),
    ],
)  # fmt: skip
def test_a_bad_profile_is_one_line_exit_2(tmp_path, profile, message):
    config = write_config(tmp_path, 1, free_port(), f"[profiles.p]\n{profile}\n")
    done = qrtui(config, "--profile", "p", "--since-last")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(config) in lines[0], done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "daily"], "no profile 'daily' (known: nightly)"),
        (["--profile", "nightly", "--since-last", "-t", "today"], "--since-last runs to now"),
        (["pacs", "local", "-ct", "--overlap", "2d"], "--overlap only applies to --since-last"),
        (["--profile", "nightly", "--since-last", "--overlap", "2w"], "is not Nd (days) or Nh"),
        (["--history", "local", "--limit", "0"], "--limit must be at least 1"),
    ],
)
def test_since_last_and_history_usage_errors(tmp_path, args, message):
    config = write_config(tmp_path, 1, free_port())
    done = qrtui(config, *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_flags_override_the_profile(tmp_path):
    with DemoPacs() as pacs:
        config = demo_config(tmp_path, pacs)
        text = config.path.read_text() + (
            f"[profiles.p]\nremote = '{DEMO_REMOTE}'\nstore = '{DEMO_STORE}'\ngroups = ['ct']\n"
            "exclude = ['neck']\n"
        )
        config.path.write_text(text)
        done = qrtui(
            config.path,
            "--profile",
            "p",
            "-mg",
            "-e",
            "screening",
            "-f",
            "1d",
            "--dry-run",
            "--json",
        )
        assert done.returncode == 0, done.stderr
        doc = as_json(done)
        assert doc["query"]["groups"] == ["MG"] and doc["query"]["desc_exclude"] == ["screening"]
        assert {s["modality"] for s in doc["studies"]} == {"MG"}


def test_history_of_a_store_without_runs_and_of_an_external_store(tmp_path):
    config = write_config(tmp_path, 1, free_port())
    config.write_text(config.read_text() + "[stores.dms]\naet = 'DMS'\nhost = '127.0.0.1'\n")
    done = qrtui(config, "--history", "local")
    assert done.returncode == 0 and "No runs recorded" in done.stdout
    assert as_json(qrtui(config, "--history", "local", "--json"))["runs"] == []
    done = qrtui(config, "--history", "dms")
    assert done.returncode == 2 and "only an embedded store keeps a history" in done.stderr


@pytest.mark.parametrize(
    ("fault", "more"),
    [
        (Faults(reject_associations=True), ("-f", "31d")),  # in days: stopped in the first
        (Faults(refuse_retrieves=True), ()),  # one piece: asked, then the retrieve refused
    ],
)
def test_a_study_owed_stays_owed_until_a_run_reaches_it(tmp_path, fault, more):
    """A run that stops before it reached an owed study (a run in days asks them in its
    first window; a retrieve may be refused its association) has settled nothing: the
    study is still owed, says why where it was asked, and the next run fetches it."""
    with DemoPacs() as pacs:
        config = demo_config(tmp_path, pacs)
        old, old_uid, owed = owe_the_old_study(pacs, config.path)
        args = SINCE_LAST
        assert owed.returncode == 1, owed.stderr

        pacs.faults = fault
        stopped = qrtui(config.path, *args, *more)
        assert stopped.returncode == 3, stopped.stderr
        if fault.refuse_retrieves:
            missing = {m["study_instance_uid"]: m["reason"] for m in as_json(stopped)["missing"]}
            assert missing[old_uid].startswith("not reached: remote"), missing

        pacs.faults = Faults()
        done = qrtui(config.path, *args)
        assert done.returncode == 0, done.stderr
        assert as_json(done)["counts"]["owed studies asked again"] == 1, "it was forgotten"
        assert set(old.dose_uids) <= stored_objects(tmp_path / "store")
