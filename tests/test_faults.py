"""Faults a hospital meets at 2 a.m. (issue 7, first part): configuration mistakes caught
before any network traffic, a retrieve that never ends, unsolicited senders."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pydicom
import pytest

from qrtui import clock, worker
from qrtui.config import StoreNode
from qrtui.demo import DEMO_REMOTE, DEMO_STORE, demo_config
from qrtui.demo.pacs import DemoPacs, Faults
from qrtui.demo.studies import dose_uids
from qrtui.dicom.storescp import Receiver, StorageSCP
from qrtui.query import build_query
from qrtui.store import Store
from tests.conftest import require, require_corpus
from tests.servers import free_port

STORESCU = shutil.which("storescu")


def scripted(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qrtui", "--no-tui", "--config", str(config), *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def config_with(tmp_path: Path, remote_port: int, directory: Path, store_port: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"[remotes.pacs]\naet = 'PACS'\nhost = '127.0.0.1'\nport = {remote_port}\n"
        f"[stores.local]\naet = 'STORE'\nport = {store_port}\nbind = '127.0.0.1'\n"
        f"directory = '{directory}'\n"
    )
    return path


def test_a_store_directory_that_is_a_file_is_a_usage_error_before_any_query(
    tmp_path, silent_listener
):
    """The remote is a port that never answers: reaching it would take the timeout."""
    (tmp_path / "store").write_text("a file")
    config = config_with(tmp_path, silent_listener, tmp_path / "store", free_port())
    result = scripted(config, "pacs", "local", "-ct")
    assert result.returncode == 2, result.stderr
    assert "is not a directory" in result.stderr and "timed out" not in result.stderr


def test_a_listen_port_in_use_stops_the_run_with_status_3_before_any_query(
    tmp_path, silent_listener
):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = config_with(tmp_path, silent_listener, tmp_path / "store", port)
        result = scripted(config, "pacs", "local", "-ct")
    assert result.returncode == 3, result.stderr  # the exit-status table: cannot listen
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_a_retrieve_that_keeps_sending_pending_is_stopped_at_its_deadline(tmp_path):
    """The PACS holds every retrieve after its first object: only the deadline ends it."""
    with DemoPacs(faults=Faults(hold_after=1)) as pacs:
        config = demo_config(tmp_path, pacs)
        remote = replace(config.remote(DEMO_REMOTE), retrieve_deadline=1.0)
        params = build_query(today=clock.today(), date_from="yesterday", mg=True)
        outcome = worker.run(config, remote, config.store(DEMO_STORE), params, dry_run=False)
    assert outcome.status == 3
    assert "no final answer within 1 s (retrieve_deadline)" in outcome.message
    assert outcome.summary is not None and outcome.summary.problems


@pytest.fixture
def guarded_store(tmp_path):
    node = StoreNode(
        "local", "STORE", free_port(), directory=tmp_path / "store", bind="127.0.0.1",
        allowed_aets=("PACS_A",),
    )  # fmt: skip
    lines: list[str] = []
    assert node.directory
    with Store(node.directory) as store, StorageSCP(node, Receiver(store), log=lines.append):
        yield node, store, lines


def test_only_allowed_calling_ae_titles_may_send(guarded_store):
    require(STORESCU, "DCMTK is not installed (apt-get install dcmtk)")
    node, store, lines = guarded_store
    rdsr = require_corpus() / "CT-RDSR-GEPixelMed.dcm"

    def send(aet: str) -> int:
        return subprocess.run(
            [STORESCU, "-aet", aet, "-aec", node.aet, "127.0.0.1", str(node.port), str(rdsr)],
            capture_output=True, timeout=30,
        ).returncode  # fmt: skip

    assert send("INTRUDER") != 0
    assert list(store.instances()) == []
    assert any("INTRUDER" in line and "rejected" in line for line in lines)
    assert send("PACS_A") == 0
    assert len(list(store.instances())) == 1
    assert not any("GEPixelMed" in line for line in lines)


def test_only_allowed_sender_addresses_may_connect(tmp_path):
    require(STORESCU, "DCMTK is not installed (apt-get install dcmtk)")
    rdsr = require_corpus() / "CT-RDSR-GEPixelMed.dcm"
    sent: list[int] = []
    for allowed in (("127.0.0.2", "10.0.0.0/8"), ("127.0.0.0/8",)):
        node = StoreNode(
            "local", "STORE", free_port(), directory=tmp_path / "store", bind="127.0.0.1",
            allowed_addresses=allowed,
        )  # fmt: skip
        lines: list[str] = []
        assert node.directory
        with Store(node.directory) as store, StorageSCP(node, Receiver(store), log=lines.append):
            command = [STORESCU, "-aec", "STORE", "127.0.0.1", str(node.port), str(rdsr)]
            sent.append(subprocess.run(command, capture_output=True, timeout=30).returncode)
            sent.append(len(list(store.instances())))
        if allowed[0] == "127.0.0.2":
            assert lines == ["127.0.0.1: refused (address not allowed)"]
    assert sent[:2] != [0, 0] and sent[1] == 0, "refused, and nothing stored"
    assert sent[2:] == [0, 1], "let in from an allowed network"


def test_disk_full_mid_retrieve_fails_the_run_and_the_next_run_completes(small_disk, tmp_path):
    disk = small_disk(512)

    with DemoPacs() as pacs:
        config = demo_config(tmp_path, pacs)
        store_node = replace(config.store(DEMO_STORE), directory=disk / "store")
        config = replace(config, stores=(store_node,))
        remote = config.remote(DEMO_REMOTE)
        params = build_query(today=clock.today(), date_from="yesterday", mg=True, dx=True)
        Store(disk / "store").close()  # the index exists before the disk fills
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        filler = disk / "filler"
        filler.write_bytes(bytes(free - 56 * 1024))  # the index WAL and two or three objects

        first = worker.run(config, remote, store_node, params, dry_run=False)
        assert first.status == 1 and first.summary is not None
        assert first.summary.failed >= 1
        assert any("could not be written (disk full)" in p for p in first.summary.problems)
        held_after_first = _indexed(disk / "store")
        wanted = dose_uids(pacs.studies, ("MG", "DX"), clock.today() - timedelta(days=1))
        assert held_after_first < wanted
        files = {path.stem for path in (disk / "store").glob("*/*/*.dcm")}
        assert files == held_after_first, "every file indexed, and every row with its file"

        filler.unlink()
        second = worker.run(config, remote, store_node, params, dry_run=False)
        assert second.status == 0, second.summary
        assert _indexed(disk / "store") == wanted
        assert second.summary.skipped_already_held == len(held_after_first), (
            held_after_first,
            second.result.counts,
            [(p.study.description, p.reason) for p in second.result.plans],
        )


def _indexed(store: Path) -> set[str]:
    import sqlite3

    from qrtui.store import INDEX_NAME

    with sqlite3.connect(store / INDEX_NAME) as db:
        return {uid for (uid,) in db.execute("SELECT sop_instance_uid FROM instances")}


@pytest.mark.parametrize("retrieve", ["auto", "move"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_killed_mid_retrieve_leaves_only_whole_indexed_files_and_the_next_run_completes(
    tmp_path, signum, retrieve
):
    """The PACS holds each retrieve after its first object until released: the signal
    provably comes while qrtui is still retrieving, however busy the machine. With C-MOVE
    the PACS holds its sub-association to the store open: qrtui must abort it to stop (it
    is released only after qrtui has ended, or the bound of communicate() has passed)."""
    with DemoPacs(faults=Faults(hold_after=1)) as pacs:
        config = demo_config(tmp_path, pacs)
        if retrieve == "move":
            text = config.path.read_text()
            config.path.write_text(text.replace("[remotes.demo]\n", "[remotes.demo]\n"
                                                "retrieve = 'move'\n"))  # fmt: skip
        command = [
            sys.executable, "-m", "qrtui", "--no-tui", "--config", str(config.path),
            DEMO_REMOTE, DEMO_STORE, "-mg", "-dx", "-f", "yesterday",
        ]  # fmt: skip
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=_default_sigint,
        )  # fmt: skip
        try:
            assert pacs.holding.wait(60), proc.communicate(timeout=30)
            proc.send_signal(signum)
            _, err = proc.communicate(timeout=30)
        finally:
            pacs.release()
            if proc.poll() is None:
                proc.kill()
        if signum == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL
        else:
            assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
        store = tmp_path / "store"
        kept = _indexed(store)
        for path in store.glob("*/*/*.dcm"):
            assert path.stem in kept, "no file outside the index"
            assert pydicom.dcmread(path).SOPInstanceUID == path.stem, "and every file whole"

        pacs.faults = Faults()
        again = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        wanted = dose_uids(pacs.studies, ("MG", "DX"), clock.today() - timedelta(days=1))
        assert _indexed(store) == wanted
        assert not any((store / ".incoming").iterdir())


def _default_sigint() -> None:
    """Ctrl-C as a terminal delivers it: a test run in the background of a shell script
    starts with SIGINT ignored, and a child would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def stalling_peer():
    """Accepts, sends the first bytes of an A-ASSOCIATE-AC PDU, then says nothing more."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.sendall(b"\x02\x00\x00\x00\x00\xff")  # type 2, length 255, then nothing
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_peer_that_stalls_mid_pdu_fails_within_the_timeout(tmp_path, stalling_peer):
    config = tmp_path / "config.toml"
    config.write_text(
        f"[remotes.pacs]\naet = 'PACS'\nhost = '127.0.0.1'\nport = {stalling_peer}\ntimeout = 2\n"
        f"[stores.local]\naet = 'STORE'\nport = {free_port()}\nbind = '127.0.0.1'\n"
        f"directory = '{tmp_path / 'store'}'\n"
    )
    result = scripted(config, "pacs", "local", "-ct")  # a hang would pass scripted()'s bound
    assert result.returncode == 3, result.stderr
    assert "pacs" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "within 2 s" in result.stderr, "ended by the association timeout, and says so"
    echo = scripted(config, "--echo")
    assert echo.returncode == 3


def test_a_peer_announcing_a_huge_pdu_is_cut_off_without_reading_it(tmp_path):
    """An A-ASSOCIATE-AC announcing 4 GB, followed by endless zeros: qrtui reads none of it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    sent = [0]

    def flood() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"\x02\x00\xff\xff\xff\xf0")
            try:
                while sent[0] < 2_000_000_000:
                    conn.sendall(bytes(1 << 20))
                    sent[0] += 1 << 20
            except OSError:
                pass  # qrtui closed the connection

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    config = tmp_path / "config.toml"
    config.write_text(
        f"[remotes.pacs]\naet = 'PACS'\nhost = '127.0.0.1'\nport = {server.getsockname()[1]}\n"
    )
    result = scripted(config, "--echo")
    thread.join(timeout=30)
    server.close()
    assert result.returncode == 3
    assert sent[0] < 64 * (1 << 20), f"{sent[0]} bytes were taken in before the cut"


ENDLESS_FIND_SCP = """
import sys
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.dimse_messages import C_FIND_RSP
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification

encode = C_FIND_RSP.encode_msg
sent = [0]


def endless(self, context_id, max_pdu):
    for primitive in encode(self, context_id, max_pdu):
        if primitive.presentation_data_value_list[0][1][0] & 1:
            yield primitive  # the command set, then dataset fragments that never end
    while True:
        primitive = P_DATA()
        primitive.presentation_data_value_list = [[context_id, b"\\x00" + bytes(16000)]]
        sent[0] += 16000
        yield primitive


C_FIND_RSP.encode_msg = endless


def answer(event):
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    yield 0xFF00, ds


ae = AE("PACS")
ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
ae.add_supported_context(Verification)
server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_FIND, answer)])
print(server.server_address[1], flush=True)
sys.stdin.read()
server.shutdown()
print(sent[0], flush=True)
"""


# Runs a command and prints its peak RSS (kB) and exit status. A child forked from the test
# process would count the test process's pages from before its exec in ru_maxrss; one forked
# from this small, freshly started launcher does not.
MEASURED = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(usage.ru_maxrss, os.waitstatus_to_exitcode(status), flush=True)
"""


def test_a_response_that_never_ends_is_cut_off_in_bounded_memory(tmp_path):
    """Each C-FIND answer is an identifier of endless 16 kB fragments, never the last one."""
    peer = subprocess.Popen(
        [sys.executable, "-c", ENDLESS_FIND_SCP], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert peer.stdout
        port = int(peer.stdout.readline())
        config = config_with(tmp_path, port, tmp_path / "store", free_port())
        query = subprocess.run(
            [sys.executable, "-c", MEASURED, sys.executable, "-m", "qrtui", "--no-tui",
             "--config", str(config), "pacs", "local", "-ct", "--dry-run"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        sent = int(peer.communicate("", timeout=30)[0])
    peak_kb, status = (int(v) for v in query.stdout.split())
    assert sent > 8 * 1024 * 1024, "the peer really flooded"
    assert status == 3, query.stderr
    assert len(query.stderr.strip().splitlines()) == 1, query.stderr
    assert peak_kb < 200 * 1024, f"peak RSS {peak_kb} kB"


def test_sigterm_during_a_c_move_from_orthanc_stops_at_once_and_keeps_only_whole_files(
    tmp_path,
):
    """Orthanc sends 250 MG images over its sub-association to our store; SIGTERM as soon
    as the first is indexed. qrtui ends with 130; what it kept is whole and indexed; the
    next run fetches the rest. (Orthanc stops sending once the request is aborted; a PACS
    that holds its sub-association open is the C-MOVE case of the test above.)"""
    import sqlite3

    from tests.conftest import require
    from tests.servers import ORTHANC_BIN, Orthanc, qrtui_modalities
    from tests.studies import PopulationBuilder, synthetic_image
    from tests.test_never_miss import STORE_AET, config_for

    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    day = date(2026, 3, 9)
    b = PopulationBuilder(None, tmp_path / "objects", day + timedelta(days=1))
    study = b.study("mg", "MAMMO SCREENING", group="MG")
    for _ in range(250):
        b.add(study, "img", synthetic_image("1.2.840.10008.5.1.4.1.1.1.2", "MG"), "MG images")
    store_port = free_port()
    orthanc = Orthanc(tmp_path / "orthanc", modalities=qrtui_modalities(STORE_AET, store_port))
    orthanc.start()
    try:
        orthanc.upload(b.files())
        config = config_for(tmp_path, {"pacs": ("ORTHANC", orthanc.dicom_port)}, store_port)
        command = [
            sys.executable, "-m", "qrtui", "--no-tui", "--config", str(config), "pacs",
            "local", "-mg", "-sd", day.isoformat(),
        ]  # fmt: skip
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        index = tmp_path / "store" / ".qrtui-index.sqlite"
        try:
            for _ in range(1200):  # until the first object is indexed (a bound, not a pace)
                with (
                    contextlib.suppress(sqlite3.Error),
                    contextlib.closing(sqlite3.connect(f"file:{index}?mode=ro", uri=True)) as db,
                ):
                    if db.execute("SELECT COUNT(*) FROM instances").fetchone()[0]:
                        break
                threading.Event().wait(0.05)
            assert proc.poll() is None, "the move ended before the signal: nothing proved"
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130 and "interrupted" in err, err
        kept = _indexed(tmp_path / "store")
        assert 0 < len(kept) < 250
        for path in (tmp_path / "store").glob("*/*/*.dcm"):
            assert path.stem in kept and pydicom.dcmread(path).SOPInstanceUID == path.stem
        again = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        assert _indexed(tmp_path / "store") == set(study.series["img"].sop_uids)
    finally:
        orthanc.stop()
