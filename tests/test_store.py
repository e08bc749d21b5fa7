"""The embedded store: safe paths, atomic files, the index, the lock, and the Storage SCP as
DCMTK's storescu and echoscu meet it through `qrtui --listen`."""

from __future__ import annotations

import contextlib
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE

from qrtui import clock
from qrtui.config import StoreNode
from qrtui.dicom.storescp import Receiver, StorageSCP
from qrtui.store import INDEX_NAME, Store, StoreBusy, StoredInstance, UnsafeUID, safe_uid
from tests.conftest import corpus_if_present, require, require_corpus
from tests.servers import free_port
from tests.studies import PATIENT_ID, PATIENT_NAME, PopulationBuilder

STORESCU = shutil.which("storescu")
ECHOSCU = shutil.which("echoscu")
RDSR_CLASS = "1.2.840.10008.5.1.4.1.1.88.67"


@pytest.mark.parametrize(
    "uid",
    ["1.2.3", "1.2.840.10008.5.1.4.1.1.88.67", "1.2.3\0", "1.2.3 ", "1" + ".1" * 31],
)
def test_safe_uid_accepts_digits_and_dots(uid):
    assert safe_uid(uid) == uid.rstrip("\0 ")


@pytest.mark.parametrize(
    "uid",
    ["", "..", "../1.2", "1.2/../3", "/etc/passwd", "1.2\\3", "1.2\x003", "1..2", ".1", "1.",
     "1" * 65, "\uff11.\uff12", None, 12],
)  # fmt: skip
def test_safe_uid_refuses_anything_else(uid):
    with pytest.raises(UnsafeUID):
        safe_uid(uid)


def instance(
    store: Store, sop: str, study: str = "1.2.3", series: str = "1.2.3.4"
) -> StoredInstance:
    return StoredInstance(
        sop, RDSR_CLASS, study, series, "SR", store.path_for(study, series, sop), 5, "PACS"
    )


def test_held_needs_the_file_and_a_second_process_is_locked_out(tmp_path):
    with Store(tmp_path / "s") as store:
        store.add(b"DICOM", instance(store, "1.1"))
        store.add(b"DICOM", instance(store, "1.2"))
        assert store.held("1.2.3") == {"1.1", "1.2"}
        (tmp_path / "s" / "1.2.3" / "1.2.3.4" / "1.2.dcm").unlink()
        assert store.held("1.2.3") == {"1.1"}, "a row without its file is not held"
        with pytest.raises(StoreBusy, match="in use by another qrtui process"):
            Store(tmp_path / "s")
    Store(tmp_path / "s").close()  # released with the first


def test_leftover_temporary_files_are_removed_and_never_indexed(tmp_path):
    directory = tmp_path / "s"
    Store(directory).close()
    (directory / ".incoming" / "1.2.dcm.123.tmp").write_bytes(b"half a file")
    (directory / ".probe" / "1.3.dcm").write_bytes(b"never inspected")
    with Store(directory) as store:
        assert not any((directory / ".incoming").iterdir())
        assert not any((directory / ".probe").iterdir())
        assert list(store.instances()) == []


# ---------------------------------------------------------------- the SCP over the network


@pytest.fixture
def rdsr_files(tmp_path) -> list[Path]:
    builder = PopulationBuilder(corpus_if_present(), tmp_path / "objects", clock.today())
    study = builder.study("ct", "CT CHEST")
    builder.add(study, "rdsr", builder.corpus_object("CT-RDSR-Siemens_Flash-TAP-SS.dcm"))
    builder.add(study, "rdsr", builder.corpus_object("CT-RDSR-GEPixelMed.dcm"))
    builder.add(study, "mg", builder.corpus_object("MG-Im-GE_Seno_1_ForPresentation.dcm"))
    return study.files


def send(
    node: StoreNode, datasets: list[Dataset], command_uids: list[str] | None = None
) -> list[int]:
    """C-STORE each dataset with pynetdicom; returns the statuses."""
    ae = AE(ae_title="SENDER")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID)
    assoc = ae.associate("127.0.0.1", node.port, ae_title=node.aet)
    assert assoc.is_established
    statuses = []
    try:
        for i, ds in enumerate(datasets):
            if command_uids:  # pynetdicom takes the command's UID from the dataset: patch it
                original = ds.SOPInstanceUID
                status = _send_with_command_uid(assoc, ds, command_uids[i])
                ds.SOPInstanceUID = original
            else:
                status = assoc.send_c_store(ds)
            statuses.append(int(status.Status))
    finally:
        assoc.release()
    return statuses


def _send_with_command_uid(assoc, ds: Dataset, command_uid: str):
    from pynetdicom.dimse_primitives import C_STORE

    original = C_STORE.AffectedSOPInstanceUID.fset

    def force(self, value):
        original(self, command_uid)

    C_STORE.AffectedSOPInstanceUID = property(C_STORE.AffectedSOPInstanceUID.fget, force)
    try:
        return assoc.send_c_store(ds)
    finally:
        C_STORE.AffectedSOPInstanceUID = property(C_STORE.AffectedSOPInstanceUID.fget, original)


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if p.is_file()}


def test_a_duplicate_instance_is_one_file_and_one_row(listening_store, rdsr_files):
    node, store, _receiver = listening_store
    ds = pydicom.dcmread(rdsr_files[0])
    assert send(node, [ds, ds]) == [0, 0]
    assert [i.sop_instance_uid for i in store.instances()] == [ds.SOPInstanceUID]
    stored = store.path_for(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    assert pydicom.dcmread(stored).SOPInstanceUID == ds.SOPInstanceUID
    assert len([p for p in files_under(node.directory) if p.suffix == ".dcm"]) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("SOPInstanceUID", "../../../escaped"),
        ("SOPInstanceUID", "/tmp/escaped"),
        ("SeriesInstanceUID", "..\\..\\escaped"),
        ("StudyInstanceUID", "1.2.3/../../../escaped"),
        ("StudyInstanceUID", ""),
        ("SeriesInstanceUID", "1." + "2" * 70),
    ],
)
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_hostile_uids_are_refused_and_nothing_is_written(
    listening_store, rdsr_files, tmp_path, field, value
):
    node, store, receiver = listening_store
    ds = pydicom.dcmread(rdsr_files[0])
    setattr(ds, field, value)
    before = files_under(tmp_path)
    assert send(node, [ds]) == [0xA900]
    assert files_under(tmp_path) == before
    assert list(store.instances()) == [] and receiver.refused == 1


def test_command_naming_another_instance_than_the_dataset_is_refused(
    listening_store, rdsr_files, tmp_path
):
    node, store, _ = listening_store
    ds = pydicom.dcmread(rdsr_files[0])
    assert send(node, [ds], command_uids=[generate_uid()]) == [0xA900]
    assert list(store.instances()) == []


def _open_store_footprint(directory: Path) -> int:
    """Bytes a fresh store takes while open (index, WAL, shared memory)."""
    with Store(directory):
        return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def test_disk_full_answers_out_of_resources_and_leaves_no_partial_file(
    small_disk, rdsr_files, tmp_path
):
    # room for the store, one object and its index rows, not two objects
    disk = small_disk(_open_store_footprint(tmp_path / "measure") // 1024 + 160)
    node = StoreNode(
        "local", "QRTUI_STORE", free_port(), directory=disk / "store", bind="127.0.0.1"
    )
    copies = []
    for _ in range(4):  # 80 KB each
        ds = pydicom.dcmread(rdsr_files[2])
        ds.Rows = ds.Columns = 200
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelData = bytes(80_000)
        ds.SOPInstanceUID = generate_uid()
        copies.append(ds)
    with Store(node.directory) as store:
        receiver = Receiver(store)
        with StorageSCP(node, receiver):
            statuses = send(node, copies)
        indexed = {i.sop_instance_uid for i in store.instances()}
    assert statuses[0] == 0 and 0xA700 in statuses
    accepted = {ds.SOPInstanceUID for ds, s in zip(copies, statuses, strict=True) if s == 0}
    assert indexed == accepted
    on_disk = {p.stem for p in (disk / "store").glob("*/*/*.dcm")}
    assert on_disk == accepted, "no file without a row, no partial file"
    assert not any((disk / "store" / ".incoming").iterdir())
    assert receiver.write_errors and receiver.write_errors[0] == "disk full"


# ---------------------------------------------------------------- qrtui --listen


@pytest.fixture
def listener(tmp_path) -> Iterator[tuple[subprocess.Popen[str], StoreNode]]:
    require(STORESCU and ECHOSCU, "DCMTK is not installed (apt-get install dcmtk)")
    node = StoreNode(
        "local", "QRTUI_STORE", free_port(), directory=tmp_path / "store", bind="127.0.0.1"
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f"[stores.local]\naet = '{node.aet}'\nport = {node.port}\nbind = '127.0.0.1'\n"
        f"directory = '{node.directory}'\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "qrtui", "--no-tui", "--config", str(config), "--listen", "local"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout
    first = proc.stdout.readline()  # blocks until the listener says it is ready
    assert "listening as QRTUI_STORE" in first, first + proc.stderr.read() if proc.stderr else ""
    yield proc, node
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()


def test_listen_stores_what_storescu_sends_and_stops_cleanly_on_sigterm(listener, rdsr_files):
    proc, node = listener
    echo = subprocess.run(
        [ECHOSCU, "-aec", node.aet, "127.0.0.1", str(node.port)], capture_output=True, timeout=30
    )
    assert echo.returncode == 0, echo.stderr
    push = subprocess.run(
        [STORESCU, "-aet", "MODALITY", "-aec", node.aet, "127.0.0.1", str(node.port),
         *map(str, rdsr_files)],
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert push.returncode == 0, push.stderr
    assert proc.stdout
    seen = ""
    while "MODALITY from" not in seen:  # logged once the listener saw the release
        line = proc.stdout.readline()
        assert line, seen + (proc.stderr.read() if proc.stderr else "")
        seen += line
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    out = seen + out
    assert proc.returncode == 0, err
    assert "MODALITY from 127.0.0.1: 3 stored" in out
    assert "stopped: 3 stored, 0 refused" in out
    assert PATIENT_NAME not in out + err and PATIENT_ID not in out + err
    assert node.directory
    with sqlite3.connect(node.directory / INDEX_NAME) as db:
        rows = db.execute("SELECT sop_instance_uid, sending_aet FROM instances").fetchall()
    sent = {pydicom.dcmread(f).SOPInstanceUID for f in rdsr_files}
    assert {uid for uid, _ in rows} == sent and {aet for _, aet in rows} == {"MODALITY"}
    for path in rdsr_files:  # stored as sent, byte for byte after the file meta
        original = pydicom.dcmread(path)
        stored = pydicom.dcmread(
            node.directory / original.StudyInstanceUID / original.SeriesInstanceUID
            / f"{original.SOPInstanceUID}.dcm"
        )  # fmt: skip
        assert stored == original


def test_a_second_listener_on_the_same_store_is_refused(listener, tmp_path):
    _, _node = listener
    result = subprocess.run(
        [sys.executable, "-m", "qrtui", "--no-tui", "--config", str(tmp_path / "config.toml"),
         "--listen", "local"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 3
    assert "in use by another qrtui process" in result.stderr and "Traceback" not in result.stderr


def test_a_large_object_is_received_in_bounded_memory_and_stored_byte_for_byte(listener, tmp_path):
    """150 MB of pixel data: the listener writes it as it arrives instead of holding it."""
    proc, node = listener
    ds = pydicom.dcmread(require_corpus() / "MG-Im-GE_Seno_1_ForPresentation.dcm")
    ds.Rows, ds.Columns = 7500, 10000
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.SamplesPerPixel = 16, 16, 15, 1
    ds.PixelData = bytes(range(256)) * (7500 * 10000 * 2 // 256)
    ds.SOPInstanceUID = generate_uid()
    big = tmp_path / "big.dcm"
    ds.save_as(big, enforce_file_format=True)
    del ds
    push = subprocess.run(
        [STORESCU, "-aec", node.aet, "127.0.0.1", str(node.port), str(big)],
        capture_output=True, timeout=300,
    )  # fmt: skip
    assert push.returncode == 0, push.stderr
    peak_kb = _peak_rss_kb(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    sent = pydicom.dcmread(big)
    assert node.directory
    stored_path = (
        node.directory
        / sent.StudyInstanceUID
        / sent.SeriesInstanceUID
        / f"{sent.SOPInstanceUID}.dcm"
    )
    assert pydicom.dcmread(stored_path) == sent
    print(f"listener peak RSS {peak_kb} kB for a 150 MB object")
    assert peak_kb < 150_000 * 0.8, f"peak RSS {peak_kb} kB for a 150 MB object"


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")
