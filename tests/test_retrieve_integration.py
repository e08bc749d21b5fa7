"""Query and retrieve end to end, as a user runs it: `qrtui --no-tui REMOTE STORE ...` against
a real Orthanc (C-MOVE and C-GET) and a real dcmqrscp (which hides SOP classes, so SR series
are fetched, inspected, and only the dose objects kept)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest

from qrtui import clock
from qrtui.store import INDEX_NAME
from tests.conftest import corpus_if_present, qrtui, require
from tests.servers import (
    DCMQRSCP_BIN,
    ORTHANC_BIN,
    Dcmqrscp,
    Orthanc,
    free_port,
    qrtui_modalities,
    wait_until_listening,
)
from tests.studies import PATIENT_ID, PATIENT_NAME, PopulationBuilder, build_population

TODAY = clock.today()
STORE_AET = "QRTUI_STORE"
GROUP_FLAGS = {"CT": "-ct", "MG": "-mg", "FL": "-fl", "DX": "-dx"}


@dataclass
class Pacs:
    orthanc_port: int
    dcmtk_port: int
    store_port: int


@pytest.fixture(scope="module")
def population(tmp_path_factory) -> PopulationBuilder:
    return build_population(corpus_if_present(), tmp_path_factory.mktemp("objects"), TODAY)


@pytest.fixture(scope="module")
def pacs(population, tmp_path_factory) -> Iterator[Pacs]:
    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    require(DCMQRSCP_BIN, "DCMTK is not installed (apt-get install dcmtk)")
    store_port = free_port()
    destination = {"store": (STORE_AET, "127.0.0.1", store_port)}
    known = qrtui_modalities(STORE_AET, store_port)
    orthanc = Orthanc(tmp_path_factory.mktemp("orthanc"), modalities=known).start()
    dcmtk = None
    try:
        orthanc.upload(population.files())
        dcmtk = Dcmqrscp(tmp_path_factory.mktemp("dcmqrscp"), hosts=destination)
        dcmtk.start(population.files())
        yield Pacs(orthanc.dicom_port, dcmtk.port, store_port)
    finally:
        orthanc.stop()
        if dcmtk:
            dcmtk.stop()


def write_config(tmp_path: Path, pacs: Pacs, store_port: int | None = None) -> Path:
    config = tmp_path / "config.toml"
    remotes = [
        ("orthanc", "ORTHANC", pacs.orthanc_port, "move"),
        ("orthanc-get", "ORTHANC", pacs.orthanc_port, "get"),
        ("dcmtk", "DCMQRSCP", pacs.dcmtk_port, "move"),
        ("dcmtk-get", "DCMQRSCP", pacs.dcmtk_port, "get"),
    ]
    text = "".join(
        f"[remotes.{name}]\naet = '{aet}'\nhost = '127.0.0.1'\nport = {port}\n"
        f"retrieve = '{how}'\ntimeout = 10\n"
        for name, aet, port, how in remotes
    )
    text += (
        f"[stores.local]\naet = '{STORE_AET}'\nport = {store_port or pacs.store_port}\n"
        f"bind = '127.0.0.1'\ndirectory = '{tmp_path / 'store'}'\n"
    )
    config.write_text(text)
    return config


def retrieve(config: Path, remote: str, *groups: str) -> tuple[int, dict, str]:
    flags = [GROUP_FLAGS[g] for g in groups]
    result = qrtui(config, remote, "local", *flags, "-f", "7d", "--json")
    assert "Traceback" not in result.stderr, result.stderr
    for output in (result.stdout, result.stderr):
        assert PATIENT_NAME not in output and PATIENT_ID not in output
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


def expected_objects(population: PopulationBuilder, groups: set[str]) -> set[str]:
    out = set()
    for study in population.studies.values():
        if study.group not in groups or (TODAY - study.study_date).days > 7:
            continue
        for label, idx in study.expect.items():
            uids = study.series[label].sop_uids
            out.update(uids if idx is None else [uids[i] for i in idx])
    return out


def stored_objects(store: Path) -> set[str]:
    """SOP instance UIDs indexed, after checking each file is complete and named by its UIDs."""
    with sqlite3.connect(store / INDEX_NAME) as db:
        rows = db.execute(
            "SELECT sop_instance_uid, study_uid, series_uid, path, size FROM instances"
        ).fetchall()
    found = set()
    for sop, study, series, path, size in rows:
        assert path == f"{study}/{series}/{sop}.dcm"
        file = store / path
        assert file.stat().st_size == size
        ds = pydicom.dcmread(file)
        assert ds.SOPInstanceUID == sop and ds.file_meta.MediaStorageSOPInstanceUID == sop
        found.add(sop)
    on_disk = {p.stem for p in store.glob("*/*/*.dcm") if not p.parts[-3].startswith(".")}
    assert on_disk == found, "every file is indexed and every row has its file"
    assert not any((store / ".incoming").iterdir()) and not any((store / ".probe").iterdir())
    return found


ALL = ("CT", "MG", "FL", "DX")


@pytest.mark.parametrize("remote", ["orthanc", "orthanc-get"])
def test_orthanc_retrieve_stores_exactly_the_dose_objects_then_nothing_twice(
    population, pacs, tmp_path, remote
):
    config = write_config(tmp_path, pacs)
    wanted = expected_objects(population, set(ALL))
    status, doc, stderr = retrieve(config, remote, *ALL)
    assert status == 0, stderr
    assert stored_objects(tmp_path / "store") == wanted
    summary = doc["retrieve"]
    assert summary["completed"] == summary["received"] == summary["stored"] == len(wanted)
    assert summary["failed"] == 0 and not summary["gaps"] and not summary["problems"], summary
    assert summary["bytes"] == sum(f.stat().st_size for f in (tmp_path / "store").glob("*/*/*"))

    status, again, stderr = retrieve(config, remote, *ALL)
    assert status == 0, stderr
    assert again["retrieve"]["received"] == 0
    assert again["retrieve"]["skipped_already_held"] == len(wanted)
    assert again["studies"] == []


def test_dcmqrscp_retrieve_inspects_unknown_sr_and_keeps_only_dose_objects(
    population, pacs, tmp_path
):
    config = write_config(tmp_path, pacs)
    wanted = expected_objects(population, set(ALL))
    status, doc, stderr = retrieve(config, "dcmtk", *ALL)
    assert status == 0, stderr
    assert stored_objects(tmp_path / "store") == wanted
    summary = doc["retrieve"]
    assert summary["inspected"] > summary["discarded_after_inspection"] > 0
    assert summary["failed"] == 0 and not summary["gaps"]

    # What was inspected is remembered: nothing is fetched again, not even to look at it.
    status, again, stderr = retrieve(config, "dcmtk", *ALL)
    assert status == 0, stderr
    assert again["retrieve"]["received"] == 0 and again["studies"] == []
    assert stored_objects(tmp_path / "store") == wanted


def test_dcmqrscp_c_get(population, pacs, tmp_path):
    config = write_config(tmp_path, pacs)
    status, _, stderr = retrieve(config, "dcmtk-get", "MG", "FL")
    assert status == 0, stderr
    assert stored_objects(tmp_path / "store") == expected_objects(population, {"MG", "FL"})


# ---------------------------------------------------------------- what goes wrong


@pytest.mark.parametrize("remote", ["orthanc", "dcmtk"])
def test_unknown_move_destination_says_what_the_pacs_must_register(pacs, tmp_path, remote):
    """dcmqrscp answers 0xA801; Orthanc 1.10 a bare 0xC000 for every request."""
    config = write_config(tmp_path, pacs)
    config.write_text(config.read_text().replace(f"aet = '{STORE_AET}'", "aet = 'NOT_REGISTERED'"))
    result = qrtui(config, remote, "local", "-ct", "-f", "7d")
    assert result.returncode == 1, result.stderr
    advice = f"register AE title NOT_REGISTERED, host 127.0.0.1, port {pacs.store_port}"
    assert advice in result.stderr and result.stderr.count(advice) == 1
    assert "Traceback" not in result.stderr
    problems = [line for line in result.stdout.splitlines() if line.startswith("Problem:")]
    assert 1 <= len(problems) <= 4, "no retry loop: at most three failed requests, then the stop"
    assert advice in problems[-1], "the last problem is the stop, with the advice"


def test_c_get_needs_an_embedded_store(pacs, tmp_path):
    config = write_config(tmp_path, pacs)
    config.write_text(
        config.read_text() + "[stores.dms]\naet = 'DMS'\nhost = '127.0.0.1'\nport = 1\n"
    )
    result = qrtui(config, "orthanc-get", "dms", "-ct")
    assert result.returncode == 2 and "needs an embedded store" in result.stderr


def test_a_store_in_use_is_refused_before_any_query(pacs, tmp_path):
    from qrtui.store import Store

    config = write_config(tmp_path, pacs)
    with Store(tmp_path / "store"):
        result = qrtui(config, "orthanc", "local", "-ct")
    assert result.returncode == 5  # skipped, not failed: the next run catches up
    assert "skipped: store" in result.stderr and "in use by another qrtui process" in result.stderr


@pytest.fixture
def single_study_orthanc(population, tmp_path) -> Iterator[tuple[Orthanc, int]]:
    """An Orthanc of its own, holding one CT study with an RDSR, for tests that change it."""
    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    store_port = free_port()
    known = qrtui_modalities(STORE_AET, store_port)
    orthanc = Orthanc(tmp_path / "orthanc", modalities=known).start()
    try:
        orthanc.upload(population.studies["ct_rdsr"].files)
        yield orthanc, store_port
    finally:
        orthanc.stop()


def test_a_second_rdsr_in_a_known_study_is_fetched_and_nothing_else(
    population, single_study_orthanc, tmp_path
):
    orthanc, store_port = single_study_orthanc
    config = write_config(tmp_path, Pacs(orthanc.dicom_port, 1, store_port))
    status, first, stderr = retrieve(config, "orthanc", "CT")
    assert status == 0 and first["retrieve"]["stored"] == 1, stderr

    builder = PopulationBuilder(corpus_if_present(), tmp_path / "more", TODAY)
    study = population.studies["ct_rdsr"]
    builder.studies["ct_rdsr"] = study
    known_files = list(study.files)
    builder.add(study, "rdsr2", builder.corpus_object("CT-RDSR-Siemens-Continued-2.dcm"))
    new_file = study.files[-1]
    study.files[:] = known_files  # the module's population stays as it was
    orthanc.upload([new_file])
    new_uid = pydicom.dcmread(new_file).SOPInstanceUID

    status, second, stderr = retrieve(config, "orthanc", "CT")
    assert status == 0, stderr
    assert second["retrieve"]["stored"] == 1 and second["retrieve"]["skipped_already_held"] == 1
    assert stored_objects(tmp_path / "store") == {new_uid, *study.series["rdsr"].sop_uids}


def test_success_with_nothing_received_is_reported_as_a_gap(population, tmp_path):
    """The PACS sends to another listener under our store's AE title: it reports success,
    we received nothing. DCMTK's storescp plays the other listener."""
    storescp = shutil.which("storescp")
    require(ORTHANC_BIN and storescp, "Orthanc and DCMTK are needed")
    elsewhere, our_port = free_port(), free_port()
    (tmp_path / "elsewhere").mkdir()
    log = tmp_path / "storescp.log"
    with log.open("wb") as out:
        other = subprocess.Popen(
            [storescp, "-aet", STORE_AET, "-od", str(tmp_path / "elsewhere"), str(elsewhere)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    wait_until_listening(elsewhere, other, log)
    known = qrtui_modalities(STORE_AET, elsewhere)
    orthanc = Orthanc(tmp_path / "orthanc", modalities=known).start()
    try:
        orthanc.upload(population.studies["ct_rdsr"].files)
        config = write_config(tmp_path, Pacs(orthanc.dicom_port, 1, our_port))
        status, doc, stderr = retrieve(config, "orthanc", "CT")
    finally:
        orthanc.stop()
        other.terminate()
        other.wait()
    assert status == 1, stderr
    assert doc["retrieve"]["received"] == 0
    assert len(doc["retrieve"]["gaps"]) == 1
    assert "PACS reported 1 completed, 0 received" in doc["retrieve"]["gaps"][0]
    assert list((tmp_path / "elsewhere").iterdir()), "the object went to the other listener"


def test_move_to_an_external_store_names_it_as_destination(population, pacs, tmp_path):
    """DCMTK's storescp plays a dose-management system that qrtui only names."""
    storescp = shutil.which("storescp")
    require(storescp, "DCMTK is not installed (apt-get install dcmtk)")
    received = tmp_path / "dms"
    received.mkdir()
    log = tmp_path / "storescp.log"
    with log.open("wb") as out:
        dms = subprocess.Popen(
            [storescp, "-aet", STORE_AET, "-od", str(received), str(pacs.store_port)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    wait_until_listening(pacs.store_port, dms, log)
    try:
        config = write_config(tmp_path, pacs)
        remotes_only = config.read_text().split("[stores.local]")[0]
        config.write_text(
            remotes_only
            + f"[stores.dms]\naet = '{STORE_AET}'\nhost = '127.0.0.1'\nport = {pacs.store_port}\n"
        )
        result = qrtui(config, "orthanc", "dms", "-mg", "-fl", "-f", "7d", "--json")
    finally:
        dms.terminate()
        dms.wait()
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["retrieve"]
    wanted = expected_objects(population, {"MG", "FL"})
    assert summary["completed"] == len(wanted) and summary["received"] == 0
    arrived = {pydicom.dcmread(p).SOPInstanceUID for p in received.iterdir()}
    assert arrived == wanted
    assert not (tmp_path / "store").exists(), "the embedded store was not used"
