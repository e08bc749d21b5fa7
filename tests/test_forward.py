"""Delivery (issue 25): what a run fetched is forwarded to OpenREM's store node (a real Orthanc
whose Lua script routes each object by SOP class to a folder per importer, as OpenREM's
does), to DCMTK's storescp, to a folder and to a command; exactly once, with a ledger.

Every case runs the scripted command against the demo PACS (generated studies, dated from
TODAY: the test's own clock) and checks exit status, JSON, history and what arrived."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pydicom
import pytest

from qrtui import worker
from qrtui.config import Config, Profile, save_config
from qrtui.config.destinations import Destination
from qrtui.demo import DEMO_REMOTE, DEMO_STORE, demo_config
from qrtui.demo.pacs import DemoPacs
from qrtui.demo.studies import dose_uids
from qrtui.query import build_query
from qrtui.status import EXIT_UNREACHABLE
from qrtui.store import INDEX_NAME, Store
from tests.conftest import qrtui, require
from tests.servers import ORTHANC_BIN, Orthanc, free_port, wait_until_listening
from tests.studies import rdsr_store
from tests.test_backfill import lost_when

TODAY = date(2026, 3, 10)
YESTERDAY = TODAY - timedelta(days=1)
WINDOW = ("-f", YESTERDAY.isoformat(), "-t", TODAY.isoformat())
GROUPS = ("ct", "mg", "fl", "dx")
STORESCP = __import__("shutil").which("storescp")
STORESCU = __import__("shutil").which("storescu")
MG_IMAGE = "1.2.840.10008.5.1.4.1.1.1.2"

# OpenREM's store node routes by SOP class (openrem_orthanc_config.lua): dose SRs to the RDSR
# importer, mammography to openrem_mg, DX/CR to openrem_dx, Philips dose pages to ctphilips.
ROUTES = {
    "1.2.840.10008.5.1.4.1.1.88.67": "rdsr", "1.2.840.10008.5.1.4.1.1.88.22": "rdsr",
    "1.2.840.10008.5.1.4.1.1.88.33": "rdsr", "1.2.840.10008.5.1.4.1.1.88.68": "rdsr",
    MG_IMAGE: "mg",
    "1.2.840.10008.5.1.4.1.1.1.2.1": "mg", "1.2.840.10008.5.1.4.1.1.1.1": "dx",
    "1.2.840.10008.5.1.4.1.1.1.1.1": "dx", "1.2.840.10008.5.1.4.1.1.1": "dx",
    "1.2.840.10008.5.1.4.1.1.7": "ctphilips",
}  # fmt: skip


def _lua(root: Path) -> str:
    table = ",\n".join(f"  ['{cls}'] = '{importer}'" for cls, importer in ROUTES.items())
    return textwrap.dedent(
        """
        local routes = {
        %s
        }
        function OnStoredInstance(instanceId, tags, metadata, origin)
          local importer = routes[tags['SOPClassUID']] or 'unrouted'
          local log = io.open('%s/received.log', 'a')
          log:write(importer .. ' ' .. tags['SOPInstanceUID'] .. '\\n')
          log:close()
          local out = io.open('%s/' .. importer .. '/' .. tags['SOPInstanceUID'] .. '.dcm', 'wb')
          out:write(RestApiGet('/instances/' .. instanceId .. '/file'))
          out:close()
        end
        """
    ) % (table, root, root)


class OpenremNode(Orthanc):
    """An Orthanc set up as OpenREM's store node, importers replaced by folders."""

    @property
    def routed(self) -> Path:
        return self.workdir / "routed"

    def start(self) -> OpenremNode:
        for importer in {*ROUTES.values(), "unrouted"}:
            (self.routed / importer).mkdir(parents=True, exist_ok=True)
        script = self.workdir / "openrem.lua"
        script.write_text(_lua(self.routed))
        self.extra = {**self.extra, "LuaScripts": [str(script)]}
        super().start()
        return self

    def received(self) -> list[str]:
        """One line per object Orthanc took in, in order: `importer SOPInstanceUID`."""
        log = self.routed / "received.log"
        return log.read_text().split("\n")[:-1] if log.exists() else []

    def instance_uids(self) -> set[str]:
        import urllib.request

        base = f"http://127.0.0.1:{self.http_port}"
        with urllib.request.urlopen(f"{base}/instances?expand", timeout=30) as answer:
            return {i["MainDicomTags"]["SOPInstanceUID"] for i in json.load(answer)}


@pytest.fixture
def openrem(tmp_path: Path) -> Iterator[OpenremNode]:
    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    node = OpenremNode(tmp_path / "openrem", aet="OPENREM")
    yield node
    node.stop()


def configure(
    tmp_path: Path, pacs: DemoPacs, *destinations: Destination, on_profile: bool = False
) -> Config:
    """The demo's configuration with these destinations, forwarded to by the store (or by a
    profile `nightly`, the store's own list left empty)."""
    config = demo_config(tmp_path, pacs)
    names = tuple(d.name for d in destinations)
    store = replace(config.stores[0], forward=() if on_profile else names)
    profile = Profile("nightly", "demo", store.name, groups=GROUPS, forward=names)
    config = replace(
        config, stores=(store,), destinations=destinations,
        profiles=(profile,) if on_profile else (),
    )  # fmt: skip
    return save_config(config)


def dicom_destination(name: str, aet: str, port: int) -> Destination:
    return Destination(name, aet=aet, host="127.0.0.1", port=port, timeout=5.0)


def run(config: Config, *flags: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    done = qrtui(config.path, *flags, *WINDOW, "--json")
    return done, json.loads(done.stdout) if done.stdout.strip() else {}


def held(config: Config) -> dict[str, Path]:
    """SOP instance UID -> file, of every object the store indexes."""
    directory = config.stores[0].directory
    assert directory is not None
    with sqlite3.connect(directory / INDEX_NAME) as db:
        rows = db.execute("SELECT sop_instance_uid, path FROM instances").fetchall()
    return {uid: directory / path for uid, path in rows}


# ------------------------------------------------------------------ OpenREM's store node


def test_a_profile_run_delivers_every_dose_object_once_routed_by_sop_class(tmp_path, openrem):
    pacs = DemoPacs(today=TODAY)
    with pacs:
        openrem.start()
        config = configure(
            tmp_path, pacs, dicom_destination("openrem", "OPENREM", openrem.dicom_port),
            on_profile=True,
        )  # fmt: skip
        done, doc = run(config, "--profile", "nightly")
        assert done.returncode == 0, done.stderr
        stored = held(config)
        assert set(stored) == dose_uids(pacs.studies, [g.upper() for g in GROUPS], YESTERDAY)
        assert doc["forward"]["openrem"]["sent"] == len(stored)
        assert doc["forward"]["openrem"]["queued"] == 0
        assert doc["retrieve"]["discarded_after_inspection"] > 0  # fetched, read, not queued
        received = openrem.received()
        assert sorted(line.split()[1] for line in received) == sorted(stored)  # each once
        assert openrem.instance_uids() == set(stored)
        for line in received:
            importer, uid = line.split()
            cls = str(pydicom.dcmread(stored[uid], stop_before_pixels=True).SOPClassUID)
            assert importer == ROUTES.get(cls, "unrouted"), (cls, importer)
            routed = pydicom.dcmread(openrem.routed / importer / f"{uid}.dcm")
            assert routed == pydicom.dcmread(stored[uid])  # Orthanc writes its own file meta
        assert {line.split()[0] for line in received} >= {"rdsr", "mg", "dx"}

        again, doc = run(config, "--profile", "nightly")
        assert again.returncode == 0, again.stderr
        assert "forward" not in doc  # nothing was queued: no delivery pass at all
        assert openrem.received() == received


def test_a_stopped_destination_leaves_objects_queued_until_the_next_run(tmp_path, openrem):
    pacs = DemoPacs(today=TODAY)
    port = free_port()
    with pacs:
        config = configure(tmp_path, pacs, dicom_destination("openrem", "OPENREM", port))
        done, doc = run(config, "demo", "demo-store", "-ct", "-mg", "-fl", "-dx")
        stored = held(config)
        assert stored and set(stored) == dose_uids(
            pacs.studies, [g.upper() for g in GROUPS], YESTERDAY
        )
        assert done.returncode == 4, done.stderr
        assert f"openrem: sent 0, queued {len(stored)}" in done.stderr
        assert doc["forward"]["openrem"]["queued"] == len(stored)
        assert any("connection refused" in why for why in doc["forward"]["openrem"]["reasons"])
        waiting = qrtui(config.path, "--summary", "demo-store", "--delivery", "--json")
        studies = json.loads(waiting.stdout)["studies"]
        assert studies and all(s["delivery"].startswith("openrem: queued ") for s in studies)

        openrem.dicom_port = port
        openrem.start()
        later, doc = run(config, "demo", "demo-store", "-ct", "-mg", "-fl", "-dx")
        assert later.returncode == 0, later.stderr
        assert doc["retrieve"]["stored"] == 0  # nothing fetched twice
        assert doc["forward"]["openrem"] == {
            "sent": len(stored), "queued": 0, "refused": 0, "warnings": 0, "reasons": {},
            "stopped": None,
        }  # fmt: skip
        assert sorted(line.split()[1] for line in openrem.received()) == sorted(stored)

    delivered = qrtui(config.path, "--summary", "demo-store", "--delivery", "--csv").stdout
    header, *rows = delivered.strip().splitlines()
    assert header.endswith(",delivery") and rows
    assert all(row.rsplit(",", 1)[1].startswith("openrem: sent ") for row in rows)
    lines = qrtui(config.path, "--history", "demo-store").stdout
    assert f"-> openrem: sent {len(stored)}, queued 0, refused 0" in lines
    assert f"-> openrem: sent 0, queued {len(stored)}, refused 0 (connection refused" in lines
    history = json.loads(qrtui(config.path, "--history", "demo-store", "--json").stdout)
    newest, first = history["runs"][0], history["runs"][1]
    assert (first["exit_status"], first["forward"]["openrem"]["queued"]) == (4, len(stored))
    assert (newest["exit_status"], newest["forward"]["openrem"]["sent"]) == (0, len(stored))


# ------------------------------------------------------------------ a refused SOP class

_STORESCP_PROFILE = """
[[TransferSyntaxes]]
[Uncompressed]
TransferSyntax1 = LocalEndianExplicit
TransferSyntax2 = LittleEndianImplicit

[[PresentationContexts]]
[NoMammography]
{contexts}

[[Profiles]]
[Default]
PresentationContexts = NoMammography
"""


@contextlib.contextmanager
def storescp(tmp_path: Path, *options: str) -> Iterator[tuple[int, Path]]:
    """DCMTK's storescp on a free port, writing into a folder: (port, folder)."""
    require(STORESCP, "DCMTK is not installed (apt-get install dcmtk)")
    out = tmp_path / "dcmtk-received"
    out.mkdir()
    port = free_port()
    log = tmp_path / "storescp.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [STORESCP, "-aet", "DCMTK", *options, "-od", str(out), "-uf", str(port)],
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until_listening(port, proc, log)
        yield port, out
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def storescp_without_mammography(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """DCMTK's storescp accepting every class the demo sends but mammography images."""
    classes = [c for c in ROUTES if c != MG_IMAGE] + ["1.2.840.10008.5.1.4.1.1.2"]
    contexts = "\n".join(
        f"PresentationContext{n} = {cls}\\Uncompressed" for n, cls in enumerate(classes, 1)
    )
    profile = tmp_path / "storescp.cfg"
    profile.write_text(_STORESCP_PROFILE.format(contexts=contexts))
    with storescp(tmp_path, "-xf", str(profile), "Default") as started:
        yield started


def test_a_refused_sop_class_is_recorded_and_the_rest_delivered(
    tmp_path, storescp_without_mammography
):
    port, received = storescp_without_mammography
    pacs = DemoPacs(today=TODAY)
    with pacs:
        config = configure(tmp_path, pacs, dicom_destination("dcmtk", "DCMTK", port))
        done, doc = run(config, "demo", "demo-store", "-ct", "-mg")
        stored = held(config)
        classes = {
            uid: str(pydicom.dcmread(path, stop_before_pixels=True).SOPClassUID)
            for uid, path in stored.items()
        }
        mammograms = {uid for uid, cls in classes.items() if cls == MG_IMAGE}
        assert mammograms and len(mammograms) < len(stored)
        assert done.returncode == 4, done.stderr
        report = doc["forward"]["dcmtk"]
        assert (report["sent"], report["refused"], report["queued"]) == (
            len(stored) - len(mammograms), len(mammograms), 0,
        )  # fmt: skip
        assert any("does not accept Digital Mammography" in why for why in report["reasons"])
        arrived = {
            str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
            for f in received.iterdir()
        }
        assert arrived == set(stored) - mammograms

        mg_study = str(pydicom.dcmread(stored[min(mammograms)]).StudyInstanceUID)
        trace = qrtui(config.path, "--trace", mg_study, "--json")
        assert trace.returncode == 0, trace.stderr
        chain = json.loads(trace.stdout)["stores"][0]
        states = {d["sop_instance_uid"]: d["state"] for d in chain["deliveries"]}
        assert {states[uid] for uid in mammograms if uid in states} == {"refused"}
        assert chain["runs"][0]["decision"] == "retrieve" and chain["arrived"]

        again, doc = run(config, "demo", "demo-store", "-ct", "-mg")
        assert again.returncode == 0, again.stderr  # refused once is not a failure every night
        assert "forward" not in doc


# ------------------------------------------------------------------ folder and command

_COPY_COMMAND = """
import os, shutil, sys
out, path = sys.argv[1], sys.argv[2]
with open(os.path.join(out, "calls.log"), "a") as log:
    log.write(os.environ["QRTUI_SOP_CLASS_UID"] + " " + os.path.basename(path) + "\\n")
block = os.path.join(out, "block-at")
if os.path.exists(block) and len(open(os.path.join(out, "calls.log")).readlines()) == int(
        open(block).read()):
    with open(os.path.join(out, "blocked"), "w") as fifo:  # tells the test, which waits
        fifo.write(str(os.getpid()))
    os.kill(os.getpid(), 19)  # SIGSTOP: in flight until the test kills it
shutil.copyfile(path, os.path.join(out, os.path.basename(path)))
"""


def command_destination(tmp_path: Path) -> tuple[Destination, Path]:
    out = tmp_path / "importer"
    out.mkdir()
    script = tmp_path / "importer.py"
    script.write_text(_COPY_COMMAND)
    return Destination("importer", command=(sys.executable, str(script), str(out))), out


def test_folder_and_command_destinations_receive_the_stored_bytes_once(tmp_path):
    folder = Destination("folder", directory=tmp_path / "import-folder")
    command, out = command_destination(tmp_path)
    pacs = DemoPacs(today=TODAY)
    with pacs:
        config = configure(tmp_path, pacs, folder, command)
        done, doc = run(config, "demo", "demo-store", "-ct", "-dx", "-mg")
    assert done.returncode == 0, done.stderr
    stored = held(config)
    assert doc["forward"]["folder"]["sent"] == doc["forward"]["importer"]["sent"] == len(stored)
    for uid, path in stored.items():
        study, series = path.parent.parent.name, path.parent.name
        in_folder = tmp_path / "import-folder" / study / series / f"{uid}.dcm"
        assert in_folder.read_bytes() == path.read_bytes()
        assert pydicom.dcmread(in_folder).SOPInstanceUID == uid
        assert (out / f"{uid}.dcm").read_bytes() == path.read_bytes()
    calls = (out / "calls.log").read_text().split("\n")[:-1]
    assert sorted(c.split()[1] for c in calls) == sorted(f"{uid}.dcm" for uid in stored)
    assert not list((tmp_path / "import-folder" / ".qrtui-partial").iterdir())

    forward = qrtui(config.path, "--forward", "demo-store", "--json")
    assert forward.returncode == 0, forward.stderr
    assert json.loads(forward.stdout)["forward"] == {}
    assert len((out / "calls.log").read_text().split("\n")[:-1]) == len(calls)

    resend = qrtui(config.path, "--forward", "demo-store", "--resend", "--to", "importer",
                   "--only-study", path.parent.parent.name, "--json")  # fmt: skip
    assert resend.returncode == 0, resend.stderr
    assert json.loads(resend.stdout)["forward"]["importer"]["sent"] >= 1


def test_sigkill_while_forwarding_loses_nothing_and_repeats_only_what_was_in_flight(tmp_path):
    command, out = command_destination(tmp_path)
    (out / "block-at").write_text("3")
    os.mkfifo(out / "blocked")
    pacs = DemoPacs(today=TODAY)
    with pacs:
        config = configure(tmp_path, pacs, command)
        proc = subprocess.Popen(
            [sys.executable, "-m", "qrtui", "--no-tui", "--config", str(config.path), "demo",
             "demo-store", "-ct", "-dx", "-mg", *WINDOW],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        told: list[str] = []
        reader = threading.Thread(
            target=lambda: told.append((out / "blocked").read_text()), daemon=True
        )
        reader.start()
        reader.join(timeout=240)  # the third object is in flight: the command has stopped
        proc.kill()
        _, stderr = proc.communicate()
        assert told, f"the command was never called a third time: {stderr}"
        os.kill(int(told[0]), signal.SIGKILL)
    (out / "block-at").unlink()
    forward = qrtui(config.path, "--forward", "demo-store", "--json")
    assert forward.returncode == 0, forward.stderr
    calls = [c.split()[1] for c in (out / "calls.log").read_text().split("\n")[:-1]]
    stored = held(config)
    assert {c.removesuffix(".dcm") for c in calls} == set(stored)
    twice = {c for c in calls if calls.count(c) > 1}
    assert twice == {calls[2]}  # only the object in flight when qrtui was killed
    for uid, path in stored.items():
        assert (out / f"{uid}.dcm").read_bytes() == path.read_bytes()


# ------------------------------------------------------------------ listen


def test_a_listener_forwards_a_push_without_a_run(tmp_path):
    require(STORESCU, "DCMTK is not installed (apt-get install dcmtk)")
    pacs = DemoPacs(today=TODAY)
    folder = Destination("folder", directory=tmp_path / "import-folder")
    with pacs:  # only for a port in the configuration; the listener never asks it
        config = configure(tmp_path, pacs, folder)
    node = config.stores[0]
    rdsr = next(o for s in pacs.studies for o in s.objects if o.Modality == "SR")
    sent = tmp_path / "push.dcm"
    rdsr.save_as(sent, enforce_file_format=True)
    listener = subprocess.Popen(
        [sys.executable, "-m", "qrtui", "listen", "--config", str(config.path), node.name],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert listener.stdout is not None
        assert "listening" in listener.stdout.readline()
        push = subprocess.run(
            [STORESCU, "-aec", node.aet, "127.0.0.1", str(node.port), str(sent)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert push.returncode == 0, push.stderr
        for line in listener.stdout:  # the listener logs each association, then the delivery
            if "-> folder: sent 1" in line:
                break
        delivered = (
            tmp_path / "import-folder" / rdsr.StudyInstanceUID / rdsr.SeriesInstanceUID
            / f"{rdsr.SOPInstanceUID}.dcm"
        )  # fmt: skip
        assert pydicom.dcmread(delivered).SOPInstanceUID == rdsr.SOPInstanceUID
    finally:
        listener.send_signal(signal.SIGTERM)
        listener.wait(timeout=60)
    assert listener.returncode == 0


# ------------------------------------------------------------------ configuration, busy store


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[destinations.x]\nhost = 'h'\n", "destinations.x.aet: is required"),
        ("[destinations.x]\ndirectory = '/d'\nport = 4\n", "destinations.x.port: is only for"),
        ("[destinations.x]\ncommand = []\n", "destinations.x.command: must name a program"),
        ("[destinations.x]\n", "destinations.x: needs one of 'host'"),
        ("[destinations.x]\nhost = 'h'\naet = 'A'\ncommand = ['c']\n", "takes only one of"),
    ],
)
def test_a_wrong_destination_is_one_line_and_exit_2(tmp_path, table, message):
    config = tmp_path / "config.toml"
    config.write_text(table)
    done = qrtui(config, "--forward", "x")
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().split("\n")) == 1


def test_a_forward_list_naming_no_destination_is_refused(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[stores.s]\naet = 'S'\ndirectory = 'd'\nforward = ['openrem']\n")
    done = qrtui(config, "--forward", "s")
    assert done.returncode == 2
    assert "stores.s.forward: no destination 'openrem' (known: none configured)" in done.stderr


def test_a_run_that_finds_the_store_held_is_skipped_with_status_5(tmp_path):
    pacs = DemoPacs(today=TODAY)
    with pacs, Store(tmp_path / "store"):
        config = configure(tmp_path, pacs)
        done = qrtui(config.path, "demo", "demo-store", "-ct", *WINDOW)
        waited = qrtui(config.path, "demo", "demo-store", "-ct", "--wait", "0.3", *WINDOW)
        forward = qrtui(config.path, "--forward", "demo-store")
    assert done.returncode == 5 and "skipped: store" in done.stderr
    assert "the next run catches up" in done.stderr
    assert waited.returncode == 5 and "(waited 0.3 s)" in waited.stderr
    assert forward.returncode == 5


@pytest.mark.parametrize(
    ("status", "state", "words"),
    [
        (0x0000, "sent", ""),
        (0xB000, "sent", "warning 0xB000"),
        (0xB007, "sent", "warning 0xB007"),
        (0xA700, "queued", "refused 0xA700 (out of resources)"),
        (0xA701, "queued", "refused 0xA701 (out of resources)"),
        (0xC000, "queued", "refused 0xC000 (cannot understand)"),
        (0x0110, "queued", "refused 0x0110"),
        (0xA900, "refused", "refused 0xA900 (data set does not match the SOP class)"),
        (0x0122, "refused", "refused 0x0122 (SOP class not supported)"),
        (0x0124, "refused", "refused 0x0124 (not authorized)"),
    ],
)
def test_what_each_store_status_means_for_the_ledger(status, state, words):
    from qrtui.forward import judge

    got_state, reason = judge(status, "said the node")
    assert got_state == state
    assert reason.startswith(words) and (not words or reason.endswith(": said the node"))


def test_no_answer_stays_queued_and_an_unaccepted_class_is_refused():
    from qrtui.forward import judge

    assert judge(None, "the association ended without an answer") == (
        "queued", "the association ended without an answer",
    )  # fmt: skip
    assert judge(None, "the destination does not accept X", never=True)[0] == "refused"


def test_echo_checks_every_destination(tmp_path):
    pacs = DemoPacs(today=TODAY)
    with pacs:
        config = configure(
            tmp_path, pacs, dicom_destination("openrem", "OPENREM", free_port()),
            Destination("folder", directory=tmp_path / "import-folder"),
            Destination("importer", command=("/nonexistent/openrem_rdsr.py",)),
        )  # fmt: skip
        done = qrtui(config.path, "--echo")
    assert done.returncode == 3
    lines = {line.split(" (")[0]: line for line in done.stdout.splitlines()}
    assert "connection refused" in lines["destination openrem"]
    assert "ready (folder writable)" in lines["destination folder"]
    assert "no such program" in lines["destination importer"]


def test_more_kinds_of_object_than_one_association_can_propose_are_all_sent(tmp_path):
    """130 SOP classes: pynetdicom proposes at most 128 contexts, so they go in turn."""
    require(STORESCP, "DCMTK is not installed (apt-get install dcmtk)")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    from pynetdicom import AllStoragePresentationContexts

    from qrtui.config import ClientConfig
    from qrtui.forward import deliver
    from qrtui.store import StoredInstance

    classes = sorted({str(c.abstract_syntax) for c in AllStoragePresentationContexts})[:130]
    assert len(classes) == 130
    with storescp(tmp_path) as (port, out):
        destination = dicom_destination("dcmtk", "DCMTK", port)
        config = Config(tmp_path / "c.toml", ClientConfig(), (), (), destinations=(destination,))
        with Store(tmp_path / "store") as store:
            store.forward_to = ("dcmtk",)
            for cls in classes:
                ds = Dataset()
                ds.SOPClassUID, ds.SOPInstanceUID = cls, generate_uid()
                ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
                ds.file_meta = FileMetaDataset()
                ds.file_meta.MediaStorageSOPClassUID = cls
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
                written = tmp_path / "one.dcm"
                ds.save_as(written, enforce_file_format=True)
                final = store.path_for(ds.StudyInstanceUID, ds.SeriesInstanceUID,
                                       ds.SOPInstanceUID)  # fmt: skip
                store.add(written, StoredInstance(
                    ds.SOPInstanceUID, cls, ds.StudyInstanceUID, ds.SeriesInstanceUID, "OT",
                    final, written.stat().st_size, "PACS",
                ))  # fmt: skip
            report = deliver(config, store)
        part = report.destinations[0]
        assert (part.sent + part.refused, part.queued) == (130, 0), part.reasons
        assert len(list(out.iterdir())) == part.sent
        assert all("does not accept" in why for why in part.reasons)  # storescp's own list
        beyond = {str(pydicom.dcmread(f).SOPClassUID) for f in out.iterdir()} & set(classes[128:])
        assert beyond == set(classes[128:])  # Basic Text SR, Enhanced SR: the 129th, 130th


def test_a_run_that_waits_for_the_store_goes_on_once_it_is_free(tmp_path):
    """--wait: the run says that it waits; the other process lets go; the run completes."""
    pacs = DemoPacs(today=TODAY)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from qrtui.store import Store; s = Store(Path(sys.argv[1])); print('held', "
         "flush=True); sys.stdin.read()", str(tmp_path / "store")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pacs:
            config = configure(tmp_path, pacs)
            run = subprocess.Popen(
                [sys.executable, "-m", "qrtui", "--no-tui", "--config", str(config.path),
                 "demo", "demo-store", "-ct", "--wait", "120", *WINDOW],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert run.stderr is not None
            told = run.stderr.readline()
            assert "is in use by another qrtui process" in told and "waiting up to 120 s" in told
            holder.communicate("")  # lets go of the store
            _, rest = run.communicate(timeout=240)
        assert run.returncode == 0, told + rest
        assert held(config)
    finally:
        holder.kill()
        holder.wait()


def test_an_orphan_file_indexed_by_repair_is_queued_and_a_removed_destination_fails_nothing(
    tmp_path,
):
    """A file the index lost (a crash before its row) is delivered once `verify --repair`
    indexes it; rows for a destination taken out of the configuration wait for nobody."""
    pacs = DemoPacs(today=TODAY)
    folder = Destination("folder", directory=tmp_path / "import-folder")
    with pacs:
        config = configure(tmp_path, pacs, folder)
        done = qrtui(config.path, "demo", "demo-store", "-ct", *WINDOW)
        assert done.returncode == 0, done.stderr
    stored = held(config)
    lost_uid, lost = sorted(stored.items())[0]
    with sqlite3.connect(tmp_path / "store" / INDEX_NAME) as db:
        db.execute("DELETE FROM instances WHERE sop_instance_uid = ?", (lost_uid,))
        db.execute("DELETE FROM deliveries WHERE sop_instance_uid = ?", (lost_uid,))
        db.execute("UPDATE deliveries SET destination = 'retired', state = 'queued'")
    delivered = tmp_path / "import-folder" / lost.parent.parent.name / lost.parent.name
    (delivered / lost.name).unlink()
    repair = qrtui(config.path, "--verify", "demo-store", "--repair")
    assert repair.returncode == 0, repair.stderr
    forward = qrtui(config.path, "--forward", "demo-store", "--json")
    assert forward.returncode == 0, forward.stderr  # 'retired' is gone: nobody waits
    report = json.loads(forward.stdout)["forward"]
    assert report["folder"]["sent"] == 1
    assert report["retired"]["queued"] == len(stored) - 1
    assert "no longer in the configuration" in report["retired"]["stopped"]
    assert (delivered / lost.name).read_bytes() == lost.read_bytes()


def test_sigkill_while_sending_to_openrem_repeats_at_most_the_objects_in_flight(tmp_path, openrem):
    """400 RDSRs to OpenREM's store node on 4 associations, qrtui killed after the 50th
    arrived: the next pass sends the rest; what Orthanc took twice was in flight (at most
    one per association)."""
    openrem.start()
    uids = rdsr_store(tmp_path / "store", 400, "openrem")
    config = tmp_path / "config.toml"
    config.write_text(
        f"[stores.local]\naet = 'LOCAL'\ndirectory = '{tmp_path / 'store'}'\n"
        f"forward = ['openrem']\n[destinations.openrem]\naet = 'OPENREM'\n"
        f"host = '127.0.0.1'\nport = {openrem.dicom_port}\nmax_associations = 4\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "qrtui", "forward", "--config", str(config), "local"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        while len(openrem.received()) < 50:  # Orthanc's own log of what it took
            if proc.poll() is not None:
                pytest.fail("qrtui finished before it could be killed: more objects needed")
            threading.Event().wait(0.005)
    finally:
        proc.kill()
        proc.wait()
    before = len(openrem.received())
    assert before < len(uids)
    again = qrtui(config, "--forward", "local", "--json")
    assert again.returncode == 0, again.stderr
    received = [line.split()[1] for line in openrem.received()]
    assert set(received) == set(uids)
    twice = len(received) - len(set(received))
    assert twice <= 4, twice


def test_a_profile_forward_list_wins_in_the_tui_s_retrieve_too(tmp_path):
    """The TUI plans, then retrieves with its RunContext: the profile's list is the one used."""
    from qrtui import worker
    from qrtui.query import build_query

    folder = Destination("folder", directory=tmp_path / "import-folder")
    pacs = DemoPacs(today=TODAY)
    with pacs:
        config = configure(tmp_path, pacs, folder, on_profile=True)  # the store forwards nowhere
        remote, store = config.remote("demo"), config.store("demo-store")
        params = build_query(today=TODAY, ct=True, date_from=YESTERDAY.isoformat(),
                             date_until=TODAY.isoformat())  # fmt: skip
        planned = worker.plan(config, remote, store, params)
        assert planned.result is not None
        context = worker.RunContext(
            face="tui", profile="nightly",
            forward=config.forward_for(store, config.profile("nightly")),
        )  # fmt: skip
        done = worker.retrieve(config, remote, store, planned.result, context=context,
                               params=params)  # fmt: skip
    assert done.status == 0, done.message
    assert done.delivery is not None and done.delivery.sent == len(held(config)) > 0


def test_a_retrieve_that_loses_its_node_still_delivers_what_came(tmp_path):
    """The TUI hands every job a cancel event. A retrieve whose node goes away partway ends
    unreachable, and leaves that event alone: the objects that did arrive are delivered in
    the same run, and the face reports no stop that nobody asked for."""
    folder = Destination("folder", directory=tmp_path / "import-folder")
    pacs = DemoPacs(today=TODAY)
    requests: list[object] = []
    # the fourth retrieve on loses its association
    pacs._sub_operations = lost_when(
        pacs._sub_operations, lambda e: requests.append(e) or len(requests) > 3
    )
    cancel = threading.Event()
    with pacs:
        config = configure(tmp_path, pacs, folder)
        flags = {group: True for group in GROUPS}
        params = build_query(today=TODAY, date_from=YESTERDAY.isoformat(), **flags)
        outcome = worker.run(
            config, config.remote(DEMO_REMOTE), config.store(DEMO_STORE), params,
            dry_run=False, cancel=cancel, context=worker.RunContext(),
        )  # fmt: skip
    assert outcome.status == EXIT_UNREACHABLE, outcome.message
    assert not cancel.is_set(), "the node's failure is not the user's cancel"
    stored = held(config)
    assert stored, "some objects came before the node went"
    assert outcome.delivery is not None and outcome.delivery.sent == len(stored)
    delivered = sorted(p.name for p in (tmp_path / "import-folder").rglob("*.dcm"))
    assert delivered == sorted(f"{uid}.dcm" for uid in stored)
