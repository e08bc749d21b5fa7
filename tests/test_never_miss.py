"""Never miss a dose object, never cry wolf (issue 13), against real Orthanc and dcmqrscp:
a second RDSR that arrives later, answers that are capped or merely round, fractional study
times, empty series descriptions, and Enhanced SRs that are reports."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pydicom
import pytest

from qrtui import clock
from tests.conftest import corpus_if_present, require, require_corpus
from tests.servers import (
    DCMQRSCP_BIN,
    ORTHANC_BIN,
    Dcmqrscp,
    Orthanc,
    free_port,
    qrtui_modalities,
)
from tests.studies import CT_IMAGE, BuiltStudy, PopulationBuilder, synthetic_image
from tests.test_retrieve_integration import stored_objects

TODAY = clock.today()
STORE_AET = "QRTUI_STORE"


def config_for(tmp_path: Path, pacs: dict[str, tuple[str, int]], store_port: int) -> Path:
    """pacs: remote name -> (AE title, port); every remote is also offered with C-GET."""
    text = ""
    for name, (aet, port) in pacs.items():
        for suffix, how in (("", "move"), ("-get", "get")):
            text += (
                f"[remotes.{name}{suffix}]\naet = '{aet}'\nhost = '127.0.0.1'\nport = {port}\n"
                f"retrieve = '{how}'\ntimeout = 10\n"
            )
    text += (
        f"[stores.local]\naet = '{STORE_AET}'\nport = {store_port}\nbind = '127.0.0.1'\n"
        f"directory = '{tmp_path / 'store'}'\n"
    )
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def qrtui(config: Path, *args: str) -> tuple[int, dict, str]:
    done = subprocess.run(
        [sys.executable, "-m", "qrtui", "--no-tui", "--config", str(config), *args, "--json"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def ct_study(b: PopulationBuilder, label: str, days_ago: int = 1, time: str = "101500") -> str:
    """A CT study with one image and an RDSR; returns the RDSR's SOP instance UID."""
    study = b.study(label, "CT CHEST", days_ago=days_ago, group="CT")
    study.study_time = time
    b.add(study, "img", synthetic_image(CT_IMAGE, "CT"), "Axial")
    b.add(study, "rdsr", b.corpus_object("CT-RDSR-GEPixelMed.dcm"))
    return study.series["rdsr"].sop_uids[0]


# ---------------------------------------------------------------- 1. a late second RDSR


@pytest.fixture(params=["orthanc", "dcmqrscp"])
def fresh_pacs(request, tmp_path) -> Iterator[tuple[str, object, int]]:
    """A PACS of its own, holding nothing yet: (kind, server, our store's port)."""
    store_port = free_port()
    if request.param == "orthanc":
        require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
        known = qrtui_modalities(STORE_AET, store_port)
        server: Orthanc | Dcmqrscp = Orthanc(tmp_path / "orthanc", modalities=known).start()
    else:
        require(DCMQRSCP_BIN, "DCMTK is not installed (apt-get install dcmtk)")
        hosts = {"store": (STORE_AET, "127.0.0.1", store_port)}
        server = Dcmqrscp(tmp_path / "dcmqrscp", hosts=hosts).start()
    try:
        yield request.param, server, store_port
    finally:
        server.stop()


@pytest.mark.parametrize("late_series", ["rdsr2", "rdsr"], ids=["new series", "same series"])
def test_a_second_rdsr_arriving_later_in_a_known_study_is_fetched_alone(
    fresh_pacs, tmp_path, late_series
):
    """dcmqrscp gives neither SOP classes nor series descriptions: the RDSR held from the first
    run must not stand for the new SR object beside it, in a new series or in its own."""
    kind, server, store_port = fresh_pacs
    b = PopulationBuilder(corpus_if_present(), tmp_path / "objects", TODAY)
    first_rdsr = ct_study(b, "ct")
    mg = b.study("mg", "MAMMO SCREENING", group="MG")
    b.add(mg, "img", b.corpus_object("MG-Im-GE_Seno_1_ForPresentation.dcm"))
    b.add(mg, "img", b.corpus_object("MG-Im-GE_Seno_2_ForPresentation.dcm"))
    server.add(b.files())
    port = server.dicom_port if isinstance(server, Orthanc) else server.port
    aet = "ORTHANC" if kind == "orthanc" else "DCMQRSCP"
    config = config_for(tmp_path, {"pacs": (aet, port)}, store_port)
    flags = ("pacs", "local", "-ct", "-mg", "-fl", "-dx", "-f", "7d")

    status, _first, stderr = qrtui(config, *flags)
    assert status == 0, stderr
    held = {first_rdsr, *mg.series["img"].sop_uids}
    assert stored_objects(tmp_path / "store") == held

    before = set(b.files())
    ct = b.studies["ct"]
    b.add(ct, late_series, b.corpus_object("CT-RDSR-Siemens-Multi-2.dcm"))
    b.add(mg, "img", b.corpus_object("MG-Im-GE-SenDS-scaled.dcm"))
    server.add([f for f in b.files() if f not in before])
    late_rdsr = ct.series[late_series].sop_uids[-1]
    late_image = mg.series["img"].sop_uids[-1]

    status, second, stderr = qrtui(config, *flags)
    assert status == 0, stderr
    assert stored_objects(tmp_path / "store") == held | {late_rdsr, late_image}
    summary = second["retrieve"]
    assert summary["stored"] == 2 and summary["failed"] == 0, summary
    assert summary["received"] == 2 + summary["discarded_after_inspection"]

    status, third, stderr = qrtui(config, *flags)
    assert status == 0 and third["retrieve"]["received"] == 0, (stderr, third["retrieve"])


# ---------------------------------------------------------------- 2. caps and round numbers


def test_two_hundred_studies_at_one_date_and_time_are_complete_not_suspect(tmp_path):
    """An uncapped Orthanc answers 200, a round number, and no window can split them: qrtui
    looks closer instead of crying wolf, and exits 0 with every RDSR."""
    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    b = PopulationBuilder(corpus_if_present(), tmp_path / "objects", TODAY)
    wanted = {ct_study(b, f"ct{n}") for n in range(200)}
    store_port = free_port()
    orthanc = Orthanc(tmp_path / "orthanc", modalities=qrtui_modalities(STORE_AET, store_port))
    orthanc.start()
    try:
        orthanc.upload(b.files())
        config = config_for(tmp_path, {"pacs": ("ORTHANC", orthanc.dicom_port)}, store_port)
        status, doc, stderr = qrtui(config, "pacs-get", "local", "-ct", "-mg", "-sd", "1d")
    finally:
        orthanc.stop()
    assert status == 0, (stderr, doc["notices"])
    assert doc["counts"].get("queries possibly incomplete", 0) == 0
    assert any("no sign of a cap" in n for n in doc["notices"]), doc["notices"]
    assert stored_objects(tmp_path / "store") == wanted


LIMIT = 40
DAY, SPREAD, STUCK = 1, (2, 3, 4), 6  # days ago


@pytest.fixture(scope="module")
def capped(tmp_path_factory) -> Iterator[tuple[Orthanc, int, dict[str, set[str]]]]:
    """An Orthanc that stops every C-FIND at 40 matches (LimitFindResults), holding:
    - DAY: 50 studies at distinct times, two at 11:59:59.5 and 23:59:59.9;
    - SPREAD: 30 studies on each of three days;
    - STUCK: 45 studies at the same second, which no window can split."""
    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    tmp = tmp_path_factory.mktemp("capped")
    b = PopulationBuilder(corpus_if_present(), tmp / "objects", TODAY)
    rdsrs: dict[str, set[str]] = {"day": set(), "spread": set(), "stuck": set()}
    for n in range(48):
        time = f"{(n * 29) // 60:02d}{(n * 29) % 60:02d}00"
        rdsrs["day"].add(ct_study(b, f"day{n}", DAY, time))
    rdsrs["edges"] = set()  # sent last, so that a capped answer leaves them out
    for n, time in enumerate(("115959.5", "235959.9")):
        rdsrs["edges"].add(ct_study(b, f"edge{n}", DAY, time))
    rdsrs["day"] |= rdsrs["edges"]
    rdsrs["edge_studies"] = {b.studies[f"edge{n}"].uid for n in range(2)}
    for days_ago in SPREAD:
        for n in range(30):
            rdsrs["spread"].add(
                ct_study(b, f"spread{days_ago}.{n}", days_ago, f"{8 + n % 9:02d}3000")
            )
    for n in range(45):
        rdsrs["stuck"].add(ct_study(b, f"stuck{n}", STUCK, "101500"))
    store_port = free_port()
    orthanc = Orthanc(
        tmp / "orthanc",
        modalities=qrtui_modalities(STORE_AET, store_port),
        extra={"LimitFindResults": LIMIT},
    ).start()
    try:
        orthanc.upload(b.files())
        yield orthanc, store_port, rdsrs
    finally:
        orthanc.stop()


def capped_answer(orthanc: Orthanc, **keys: str):
    from qrtui.config import RemoteNode
    from qrtui.dicom.find import FindSession, identifier

    node = RemoteNode("capped", "ORTHANC", "127.0.0.1", orthanc.dicom_port, timeout=10)
    with FindSession("QRTUI", node) as session:
        return session.find(identifier("STUDY", StudyInstanceUID="", **keys))


def test_what_a_capped_orthanc_sends(capped):
    """Orthanc 1.10 with LimitFindResults answers exactly the limit, then 0xFE00."""
    orthanc, _, _ = capped
    outcome = capped_answer(orthanc, StudyDate=(TODAY - timedelta(days=DAY)).strftime("%Y%m%d"))
    assert len(outcome.matches) == LIMIT and outcome.status == 0xFE00


def test_a_capped_day_split_by_time_loses_no_fractional_study_time(capped, tmp_path):
    orthanc, store_port, rdsrs = capped
    day = (TODAY - timedelta(days=DAY)).strftime("%Y%m%d")
    whole = capped_answer(orthanc, StudyDate=day, StudyTime="")
    edge_studies = rdsrs["edge_studies"]
    assert not edge_studies & {m.StudyInstanceUID for m in whole.matches}, (
        "precondition: the capped answer leaves the fractional times to the split windows"
    )
    morning = capped_answer(orthanc, StudyDate=day, StudyTime="000000-115959")
    assert len(morning.matches) < LIMIT and not edge_studies & {
        m.StudyInstanceUID for m in morning.matches
    }, "precondition: Orthanc compares times as text, so 11:59:59.5 is after 115959"
    config = config_for(tmp_path, {"pacs": ("ORTHANC", orthanc.dicom_port)}, store_port)
    status, doc, stderr = qrtui(config, "pacs-get", "local", "-ct", "-sd", f"{DAY}d")
    assert status == 0, (stderr, doc["notices"])
    assert doc["counts"]["study queries split (truncated answers)"] >= 1
    assert stored_objects(tmp_path / "store") == rdsrs["day"]


def test_a_capped_node_over_several_days_is_fetched_completely(capped, tmp_path):
    orthanc, store_port, rdsrs = capped
    config = config_for(tmp_path, {"pacs": ("ORTHANC", orthanc.dicom_port)}, store_port)
    first, last = max(SPREAD), min(SPREAD)
    status, doc, stderr = qrtui(config, "pacs", "local", "-ct", "-f", f"{first}d", "-t", f"{last}d")
    assert status == 0, (stderr, doc["notices"])
    assert stored_objects(tmp_path / "store") == rdsrs["spread"]


def test_a_capped_answer_that_cannot_be_split_still_fails_and_says_where(capped, tmp_path):
    orthanc, store_port, _ = capped
    config = config_for(tmp_path, {"pacs": ("ORTHANC", orthanc.dicom_port)}, store_port)
    status, _doc, stderr = qrtui(config, "pacs", "local", "-ct", "-sd", f"{STUCK}d", "--dry-run")
    assert status == 1, stderr
    day = (TODAY - timedelta(days=STUCK)).isoformat()
    line = stderr.strip().splitlines()[-1]
    assert "possibly incomplete" in line and "pacs" in line and day in line, line
    assert f"{LIMIT} matches" in line and "10:15:00" in line, line


# ---------------------------------------------------------------- 2c and 3: what a study holds


@pytest.fixture(scope="module")
def content(tmp_path_factory) -> tuple[PopulationBuilder, dict[str, set[str]]]:
    """CT studies whose dose object is only found by reading: a Philips Dose Info page in a
    study saved without series descriptions, Enhanced SRs that are or are not dose reports."""
    b = PopulationBuilder(corpus_if_present(), tmp_path_factory.mktemp("content"), TODAY)
    wanted: dict[str, set[str]] = {}

    def images(study: BuiltStudy) -> None:
        for _ in range(2):
            b.add(study, "img", synthetic_image(CT_IMAGE, "CT"), None)

    s = b.study("philips", "CT THORAX", group="CT")
    images(s)
    page = b.corpus_object("CT-SC-Philips_Brilliance16P.dcm")
    del page.SeriesDescription
    b.add(s, "page", page, None)
    wanted["philips"] = set(s.series["page"].sop_uids)

    s = b.study("report", "CT ABDOMEN", group="CT")
    b.add(s, "img", synthetic_image(CT_IMAGE, "CT"), "Axial")
    b.add(s, "esr", b.corpus_object("ESR_non-dose.dcm"))
    wanted["report"] = set()

    for label in ("CT-ESR-GE_Optima.dcm", "CT-ESR-GE_VCT.dcm"):
        s = b.study(label, "CT HEAD", group="CT")
        b.add(s, "img", synthetic_image(CT_IMAGE, "CT"), "Axial")
        b.add(s, "esr", b.corpus_object(label))
        wanted[label] = set(s.series["esr"].sop_uids)
    return b, wanted


@pytest.fixture(params=["orthanc", "dcmqrscp"])
def content_pacs(request, content, tmp_path) -> Iterator[Path]:
    """A qrtui configuration naming a PACS that holds `content`."""
    b, _ = content
    store_port = free_port()
    if request.param == "orthanc":
        require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
        known = qrtui_modalities(STORE_AET, store_port)
        server: Orthanc | Dcmqrscp = Orthanc(tmp_path / "orthanc", modalities=known).start()
        server.upload(b.files())
        aet, port = "ORTHANC", server.dicom_port
    else:
        require(DCMQRSCP_BIN, "DCMTK is not installed (apt-get install dcmtk)")
        hosts = {"store": (STORE_AET, "127.0.0.1", store_port)}
        server = Dcmqrscp(tmp_path / "dcmqrscp", hosts=hosts).start(b.files())
        aet, port = "DCMQRSCP", server.port
    try:
        yield config_for(tmp_path, {"pacs": (aet, port)}, store_port)
    finally:
        server.stop()


def test_dose_objects_found_only_by_reading_are_kept_and_reports_discarded(
    content, content_pacs, tmp_path
):
    b, wanted = content
    status, doc, stderr = qrtui(content_pacs, "pacs", "local", "-ct", "-f", "7d")
    assert status == 0, (stderr, doc["notices"], doc["retrieve"])
    assert stored_objects(tmp_path / "store") == set().union(*wanted.values())
    report_uid = b.studies["report"].series["esr"].sop_uids[0]
    assert doc["retrieve"]["discarded_after_inspection"] >= 1

    # The report was read once and is remembered: not fetched again, and the store lost nothing.
    status, again, stderr = qrtui(content_pacs, "pacs", "local", "-ct", "-f", "7d")
    assert status == 0 and again["retrieve"]["received"] == 0, again["retrieve"]
    assert report_uid not in stored_objects(tmp_path / "store")


def test_an_enhanced_sr_read_as_a_report_is_not_fetched_again(content, content_pacs, tmp_path):
    """The index says what each object turned out to be; a store made before kinds were
    recorded is read once and filled in."""
    import sqlite3

    from qrtui.store import INDEX_NAME

    status, _, stderr = qrtui(content_pacs, "pacs", "local", "-ct", "-f", "7d")
    assert status == 0, stderr
    with sqlite3.connect(tmp_path / "store" / INDEX_NAME) as db:
        kinds = dict(db.execute("SELECT sop_instance_uid, kind FROM instances"))
        db.execute("UPDATE instances SET kind = NULL")
    _, wanted = content
    assert {kinds[uid] for uid in wanted["philips"]} == {"dose page"}
    assert {kinds[uid] for uid in wanted["CT-ESR-GE_VCT.dcm"]} == {"ESR"}
    status, again, stderr = qrtui(content_pacs, "pacs", "local", "-ct", "-f", "7d")
    assert status == 0 and again["retrieve"]["received"] == 0, again["retrieve"]
    with sqlite3.connect(tmp_path / "store" / INDEX_NAME) as db:
        assert dict(db.execute("SELECT sop_instance_uid, kind FROM instances")) == kinds


def test_read_headers_of_the_corpus(tmp_path):
    """The classifier on the vendors' own files."""
    from qrtui.dicom.header import kind_of_file

    corpus = require_corpus()
    assert kind_of_file(corpus / "ESR_non-dose.dcm") == "report"
    assert kind_of_file(corpus / "CT-ESR-GE_Optima.dcm") == "ESR"
    assert kind_of_file(corpus / "CT-RDSR-Siemens-Multi-2.dcm") == "RDSR"
    assert kind_of_file(corpus / "CT-SC-Philips_Brilliance16P.dcm") == "dose page"
    assert kind_of_file(corpus / "MG-Im-Hologic-PropProj.dcm") == "image"
    page = pydicom.dcmread(corpus / "CT-SC-Philips_Brilliance16P.dcm")
    del page.SeriesDescription, page.ImageComments
    page.save_as(tmp_path / "page.dcm")
    assert kind_of_file(tmp_path / "page.dcm") == "dose page", "ImageType DOSE_INFO tells"
    assert kind_of_file(tmp_path / "missing.dcm") is None
