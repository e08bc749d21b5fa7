"""The store keeps what it says it keeps (issue 22, items 4 and 5): two objects of one SOP
Instance UID in two studies both stay held; a durable write syncs the directory before the
index row; `--verify` finds rows without files, files without rows and cut-short files,
and `--repair` mends the index so that the next run fetches again what was lost."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pydicom
import pytest

from qrtui import summary
from qrtui.demo import demo_config
from qrtui.demo.pacs import DemoPacs
from qrtui.demo.studies import StudyBuilder, dose_uids, rdsr
from qrtui.store import INDEX_NAME, Store
from qrtui.store import index as store_module
from qrtui.verify import DAMAGED
from tests.conftest import qrtui, require, require_corpus
from tests.servers import ORTHANC_BIN, Orthanc, qrtui_modalities

TODAY = date(2026, 3, 10)
YESTERDAY = TODAY - timedelta(days=1)
WINDOW = ("-f", YESTERDAY.isoformat(), "-t", TODAY.isoformat())
STORESCU = shutil.which("storescu")


def rows(store: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(store / INDEX_NAME) as db:
        return set(db.execute("SELECT study_uid, sop_instance_uid FROM instances"))


def twin_rdsrs(out: Path) -> tuple[list[Path], str, tuple[str, str]]:
    """Two RDSRs of two studies that share one SOP Instance UID, as files."""
    b = StudyBuilder(YESTERDAY)
    first, second = b.study("twin_a", "CT CHEST", "CT"), b.study("twin_b", "CT HEAD", "CT")
    b.add(first, 1, rdsr(), "Dose Report", dose=True)
    b.add(second, 1, rdsr(), "Dose Report", dose=True)
    shared = first.objects[0].SOPInstanceUID
    second.objects[0].SOPInstanceUID = second.objects[0].file_meta.MediaStorageSOPInstanceUID = (
        shared
    )
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, ds in enumerate((first.objects[0], second.objects[0])):
        paths.append(out / f"twin{n}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    studies = (first.objects[0].StudyInstanceUID, second.objects[0].StudyInstanceUID)
    return paths, shared, studies


def test_one_sop_uid_in_two_studies_both_stay_held_and_summed(listening_store, tmp_path):
    require(STORESCU, "DCMTK is not installed (apt-get install dcmtk)")
    node, store, receiver = listening_store
    files, shared, (study_a, study_b) = twin_rdsrs(tmp_path / "objects")
    for _ in range(2):  # the same pair again changes nothing and is not reported again
        for path in files:
            sent = subprocess.run(
                [STORESCU, "-aec", node.aet, "127.0.0.1", str(node.port), str(path)],
                capture_output=True, timeout=60,
            )  # fmt: skip
            assert sent.returncode == 0, sent.stderr
    assert rows(node.directory) == {(study_a, shared), (study_b, shared)}
    assert store.held(study_a) == store.held(study_b) == {shared}
    assert len(receiver.sender_notes) == 1 and study_a in receiver.sender_notes[0]
    studies = {row["study_instance_uid"] for row in summary.json_rows(
        summary.rows(summary.study_doses(store, None, None))
    )}  # fmt: skip
    assert studies == {study_a, study_b}


def test_an_index_keyed_on_the_sop_uid_alone_is_rekeyed_when_opened(tmp_path):
    directory = tmp_path / "store"
    directory.mkdir()
    with sqlite3.connect(directory / INDEX_NAME) as db:  # the schema stores had until 2026-12
        db.executescript(
            "CREATE TABLE instances (sop_instance_uid TEXT PRIMARY KEY, sop_class_uid TEXT NOT "
            "NULL, study_uid TEXT NOT NULL, series_uid TEXT NOT NULL, modality TEXT NOT NULL, "
            "path TEXT NOT NULL, size INTEGER NOT NULL, received_at TEXT NOT NULL, "
            "sending_aet TEXT NOT NULL);"
            "CREATE TABLE dose (sop_instance_uid TEXT PRIMARY KEY, study_uid TEXT NOT NULL, "
            "summary TEXT NOT NULL);"
            "INSERT INTO instances VALUES ('1.5', '1.2', '1.1', '1.1.1', 'SR', "
            "'1.1/1.1.1/1.5.dcm', 5, 'then', 'PACS');"
            "INSERT INTO dose VALUES ('1.5', '1.1', '{}');"
        )
    with Store(directory) as store:
        assert [i.sop_instance_uid for i in store.instances()] == ["1.5"]
        assert store.doses.of_study("1.1") == ["{}"]
        with store._mutex, store._transaction():  # a second study may now hold the same UID
            store._db.execute(
                "INSERT INTO instances VALUES ('1.5', '1.2', '1.9', '1.9.1', 'SR', "
                "'1.9/1.9.1/1.5.dcm', 5, 'now', 'PACS', 'RDSR')"
            )
    assert rows(directory) == {("1.1", "1.5"), ("1.9", "1.5")}


def test_the_corpus_twins_both_arrive_from_orthanc_and_stay_held(tmp_path):
    """RF-RDSR-Siemens-Zee.dcm and its _adjusted copy share a SOP Instance UID, in two
    studies: fetched from a real Orthanc, both are indexed, and a second run fetches
    nothing (before, each replaced the other's row and the first study flapped)."""
    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    corpus = require_corpus()
    out = tmp_path / "objects"
    out.mkdir()
    studies = set()
    for name in ("RF-RDSR-Siemens-Zee.dcm", "RF-RDSR-Siemens-Zee_adjusted.dcm"):
        ds = pydicom.dcmread(corpus / name)
        ds.StudyDate = YESTERDAY.strftime("%Y%m%d")
        ds.save_as(out / name)
        studies.add(str(ds.StudyInstanceUID))
    shared = str(ds.SOPInstanceUID)
    from tests.servers import free_port
    from tests.test_never_miss import STORE_AET, config_for

    store_port = free_port()
    orthanc = Orthanc(tmp_path / "orthanc", modalities=qrtui_modalities(STORE_AET, store_port))
    orthanc.start()
    try:
        orthanc.upload(sorted(out.iterdir()))
        config = config_for(tmp_path, {"pacs": ("ORTHANC", orthanc.dicom_port)}, store_port)
        first = qrtui(config, "pacs-get", "local", "-sr", *WINDOW, "--json")
        second = qrtui(config, "pacs-get", "local", "-sr", *WINDOW, "--json")
    finally:
        orthanc.stop()
    assert first.returncode == 0, first.stderr
    assert rows(tmp_path / "store") == {(study, shared) for study in studies}
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["retrieve"]["received"] == 0


def test_a_durable_write_syncs_the_directory_before_the_index_row(tmp_path, monkeypatch):
    events: list[tuple[str, str]] = []
    real_sync = store_module.sync_directory

    def sync(folder: Path) -> None:
        events.append(("sync", str(folder)))
        real_sync(folder)

    monkeypatch.setattr(store_module, "sync_directory", sync)
    with Store(tmp_path / "store") as store:
        real_index = store._index

        def index(instance):
            events.append(("index", str(instance.path.parent)))
            return real_index(instance)

        monkeypatch.setattr(store, "_index", index)
        path = store.path_for("1.2", "1.2.3", "1.2.3.4")
        store.add(b"DICM", store_module.StoredInstance(
            "1.2.3.4", "1.2", "1.2", "1.2.3", "SR", path, 4, "PACS"
        ))  # fmt: skip
    folder = str(path.parent)
    assert events.index(("sync", folder)) < events.index(("index", folder))
    # the new study and series folders are made durable in their parents too
    assert ("sync", str(tmp_path / "store")) in events
    assert ("sync", str(path.parent.parent)) in events


# ---------------------------------------------------------------- verify and repair


@pytest.fixture
def filled_store(tmp_path):
    """A store a demo run filled, with its configuration; the PACS still serving."""
    with DemoPacs(today=TODAY) as pacs:
        config = demo_config(tmp_path, pacs)
        done = qrtui(config.path, "demo", "demo-store", "-ct", "-mg", *WINDOW)
        assert done.returncode == 0, done.stderr
        yield config.path, tmp_path / "store", pacs


def test_verify_and_repair_a_store_whose_files_were_removed_cut_or_unindexed(filled_store):
    config, store, pacs = filled_store
    assert qrtui(config, "--verify", "demo-store").returncode == 0
    files = sorted(p for p in store.rglob("*.dcm") if p.relative_to(store).parts[0][0] != ".")
    gone, cut, unindexed = files[0], files[1], files[2]
    gone.unlink()
    cut.write_bytes(cut.read_bytes()[:100])
    with sqlite3.connect(store / INDEX_NAME) as db:
        db.execute("DELETE FROM instances WHERE sop_instance_uid = ?", (unindexed.stem,))

    found = qrtui(config, "--verify", "demo-store", "--json")
    assert found.returncode == 1 and "disagree with the index" in found.stderr
    report = json.loads(found.stdout)
    relative = {p: str(p.relative_to(store)) for p in (gone, cut, unindexed)}
    assert report["rows_without_files"] == [relative[gone]]
    assert [m.split(":")[0] for m in report["size_mismatches"]] == [relative[cut]]
    assert report["files_without_rows"] == [relative[unindexed]]

    repaired = qrtui(config, "--verify", "demo-store", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert qrtui(config, "--verify", "demo-store").returncode == 0
    assert (store / DAMAGED / relative[cut]).is_file()
    assert unindexed.stem in {sop for _, sop in rows(store)}

    again = qrtui(config, "demo", "demo-store", "-ct", "-mg", *WINDOW, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["retrieve"]["stored"] == 2  # the lost and the cut one
    assert {sop for _, sop in rows(store)} == dose_uids(pacs.studies, ("CT", "MG"), YESTERDAY)
    assert gone.is_file() and cut.stat().st_size > 100
