"""The dose reader (issue 17) on the vendors' own objects of ../shared/corpus/openrem. Each
expected value was read by hand from the object's SR tree or header (concept code or tag
named beside it); the reader walks the tree by those codes, never by position."""

from __future__ import annotations

from datetime import timedelta

import pydicom
import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from qrtui import clock
from qrtui.dose import DoseSummary, Event, Quantity, StudyDose, read_dose
from tests.conftest import require_corpus


def read(name: str) -> DoseSummary:
    return read_dose(pydicom.dcmread(require_corpus() / name))


def row(*names: str) -> dict[str, str]:
    objects = [read(n) for n in names]
    return StudyDose(objects[0].study_uid, objects).row()


def close(text: str, value: float) -> bool:
    return text != "" and abs(float(text) - value) <= 1e-9 + 1e-6 * abs(value)


# ---------------------------------------------------------------- CT RDSR, TID 10011


@pytest.mark.parametrize(
    ("name", "dlp_total", "events", "ctdivol_max", "manufacturer"),
    [
        # 113813 CT Dose Length Product Total, 113812 Total Number of Irradiation Events,
        # max of 113830 Mean CTDIvol over the 113819 CT Acquisition containers
        ("CT-RDSR-Siemens-Multi-2.dcm", 77.27, 2, 8.13, "SIEMENS"),
        ("CT-RDSR-Siemens_Flash-TAP-SS.dcm", 724.52, 4, 9.91, "SIEMENS"),  # unit "mGycm"
        ("CT-RDSR-GEPixelMed.dcm", 586.34, 2, 222.59, "GE MEDICAL SYSTEMS"),
        ("CT-RDSR-ToshibaPixelMed.dcm", 349.7, 3, 25.4, "TOSHIBA"),
        ("CT-RDSR-Toshiba_DoseCheck.dcm", 502.4, 2, 5.3, "TOSHIBA"),
        ("CT-RDSR-Toshiba_MultiValSD.dcm", 136.9, 3, 3.2, "TOSHIBA"),
        # GE "Dose Record": an Enhanced SR holding TID 10011
        ("CT-ESR-GE_Optima.dcm", 415.82, 6, 5.3, "GE Medical Systems"),
        ("CT-ESR-GE_VCT.dcm", 2002.39, 27, 176.12, "GE Medical Systems"),
    ],
)
def test_ct_dose_reports(name, dlp_total, events, ctdivol_max, manufacturer):
    dose = read(name)
    assert dose.group == "CT" and dose.kind in ("RDSR", "ESR")
    assert dose.event_count == events
    assert dose.dlp_total is not None and dose.dlp_total.in_unit("mGy.cm") == pytest.approx(
        dlp_total
    )
    values = row(name)
    assert close(values["dlp_total_mGycm"], dlp_total)
    assert close(values["ctdivol_max_mGy"], ctdivol_max)
    assert values["events"] == str(events) and values["manufacturer"] == manufacturer


def test_ct_events_carry_type_protocol_ctdivol_and_dlp():
    dose = read("CT-RDSR-Siemens-Multi-2.dcm")
    topogram, spiral = dose.events
    # 125203 Acquisition Protocol, 113820 CT Acquisition Type, 113830 Mean CTDIvol, 113838 DLP
    assert (topogram.protocol, topogram.kind) == ("Topogram", "Constant Angle Acquisition")
    assert topogram.ctdivol == Quantity(0.15, "mGy") and topogram.dlp == Quantity(7.46, "mGy.cm")
    assert (spiral.protocol, spiral.kind) == ("4DCT", "Spiral Acquisition")
    assert spiral.ctdivol == Quantity(8.13, "mGy") and spiral.dlp == Quantity(69.81, "mGy.cm")
    assert spiral.uid and spiral.uid != topogram.uid  # 113769 Irradiation Event UID
    assert (dose.model, dose.station) == ("SOMATOM Confidence", "CTAWP12345")


# ---------------------------------------------------------------- projection RDSR, TID 10001


@pytest.mark.parametrize(
    ("name", "group", "dap", "dose_rp", "fluoro", "events"),
    [
        # 113722 Dose Area Product Total (Gy.m2), 113725 Dose (RP) Total (Gy),
        # 113730 Total Fluoro Time (s), and the 113706 Irradiation Event X-Ray Data containers
        ("RF-RDSR-Philips_Allura.dcm", "FL", 0.00015356864017, 0.00427128035068, 13, 3),
        ("RF-RDSR-Siemens-Zee.dcm", "FL", 1.6e-05, 0.00252, 28, 8),  # unit "Gym2"
        ("RF-RDSR-GE.dcm", "FL", 0.00024126, 0.01173170, 72.46, 8),
        ("DX-RDSR-Carestream_DRXEvolution.dcm", "DX", 0.00000580999970, 0.00029927175492, None, 5),
    ],
)
def test_projection_dose_reports(name, group, dap, dose_rp, fluoro, events):
    dose = read(name)
    assert dose.kind == "RDSR" and dose.group == group and dose.event_count == events
    values = row(name)
    assert close(values["dap_total_Gym2"], dap)
    assert close(values["dose_rp_total_Gy"], dose_rp)
    if fluoro is None:
        assert values["fluoro_time_s"] == ""
    else:
        assert close(values["fluoro_time_s"], fluoro)


def test_an_empty_measured_value_is_a_stated_reason():
    """Canon CXDI writes 113725 Dose (RP) Total with an empty Measured Value Sequence."""
    dose = read("DX-RDSR-Canon_CXDI.dcm")
    assert dose.dap_total == Quantity(1.07e-05, "Gy.m2")  # 113722
    assert dose.dose_rp_total is None
    assert "Dose (RP) Total (113725) has no value" in dose.notes
    assert row("DX-RDSR-Canon_CXDI.dcm")["dose_rp_total_Gy"] == ""


@pytest.mark.parametrize(
    ("name", "left", "right"),
    [
        # 111637 Accumulated Average Glandular Dose, each with its G-C171 Laterality
        ("MG-RDSR-Hologic_2D.dcm", 1.30, 1.28),
        ("MG-RDSR-Hologic_mix.dcm", 0.87, 2.71),
    ],
)
def test_mammography_dose_reports_per_breast(name, left, right):
    dose = read(name)
    assert dose.group == "MG" and dose.dap_total is None
    values = row(name)
    assert close(values["agd_left_mGy"], left) and close(values["agd_right_mGy"], right)
    assert close(values["agd_mGy"], left + right)


# ---------------------------------------------------------------- image headers


@pytest.mark.parametrize(
    ("name", "agd_mgy", "laterality"),
    [
        # Organ Dose (0040,0316) is the AGD, in dGy
        ("MG-Im-GE_Seno_1_ForPresentation.dcm", 0.547, "Left breast"),
        ("MG-Im-GE-SenDS-scaled.dcm", 1.373, "Left breast"),
        ("MG-Im-Hologic-PropProj.dcm", 0.26, "Right breast"),  # series Laterality (0020,0060)
    ],
)
def test_mammography_image_headers(name, agd_mgy, laterality):
    dose = read(name)
    assert dose.kind == "image header" and dose.group == "MG"
    side, agd = dose.agd[0]
    assert side == laterality and agd.unit == "dGy"
    assert agd.in_unit("mGy") == pytest.approx(agd_mgy)
    assert close(row(name)["agd_mGy"], agd_mgy)


@pytest.mark.parametrize(
    ("name", "modality", "dap_dgycm2", "ei", "di"),
    [
        # Image and Fluoroscopy Area Dose Product (0018,115E) in dGy.cm2, Exposure Index
        # (0018,1411), Deviation Index (0018,1413)
        ("DX-Im-GE_XR220-1.dcm", "DX", 0.41, 51.745061, -9.3),
        ("DX-Im-Carestream_DRX.dcm", "CR", 0.633, 256.88, 0.55),
        ("DX-Im-Carestream_DR7500-1.dcm", "CR", 11.013, None, None),
    ],
)
def test_dx_and_cr_image_headers(name, modality, dap_dgycm2, ei, di):
    dose = read(name)
    assert dose.kind == "image header" and dose.group == "DX" and dose.modality == modality
    assert dose.dap_total == Quantity(dap_dgycm2, "dGy.cm2")
    assert dose.exposure_index == ei and dose.deviation_index == di
    assert close(row(name)["dap_total_Gym2"], dap_dgycm2 * 1e-5)


def test_dx_image_header_kvp_and_exposure():
    dose = read("DX-Im-GE_XR220-1.dcm")
    assert dose.kvp == Quantity(69.639999, "kV")  # KVP (0018,0060)
    assert dose.exposure == Quantity(1040.0, "uA.s")  # Exposure in uAs (0018,1153)


# ---------------------------------------------------------------- pages, reports, malformed


def elscint_dlp(item: Dataset) -> float | None:
    """(00E1,xx21) DLP of the block whose private creator (00E1,00xx) is ELSCINT1."""
    for element in item:
        tag = element.tag
        if tag.group == 0x00E1 and 0x10 <= tag.element <= 0xFF and element.value == "ELSCINT1":
            dlp = item.get((0x00E1 << 16) | (tag.element << 8) | 0x21)
            return None if dlp is None else float(dlp.value)
    return None


def philips_pages() -> list[str]:
    pages = []
    for path in sorted(require_corpus().glob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if "PHILIPS" in str(ds.get("Manufacturer", "")).upper() and "DOSE_INFO" in ds.get(
            "ImageType", ()
        ):
            pages.append(path.name)
    assert pages, "the corpus holds a Philips Dose Info page"
    return pages


def test_every_philips_dose_info_page_is_read_from_its_exposure_dose_sequence():
    """Exposure Dose Sequence (0040,030E), not the rounded text of (0040,0310), as OpenREM."""
    for name in philips_pages():
        ds = pydicom.dcmread(require_corpus() / name)
        items = [i for i in ds.ExposureDoseSequence if "AcquisitionType" in i]
        dose = read_dose(ds)
        assert dose.kind == "dose page" and dose.group == "CT", name
        assert [e.ctdivol for e in dose.events] == [Quantity(i.CTDIvol, "mGy") for i in items]
        assert [e.dlp for e in dose.events] == [Quantity(elscint_dlp(i), "mGy.cm") for i in items]
        assert [e.scan_length for e in dose.events] == [
            Quantity(float(i.ScanLength), "mm") for i in items
        ]
        assert [e.protocol for e in dose.events] == [i.SeriesDescription or None for i in items]
        assert dose.dlp_total == Quantity(elscint_dlp(ds), "mGy.cm")
        assert dose.event_count == ds.TotalNumberOfExposures
        assert "Exposure Dose Sequence" in dose.notes[0], name


def test_the_brilliance_page_by_hand():
    name = "CT-SC-Philips_Brilliance16P.dcm"
    dose = read(name)
    kidneys = dose.events[2]
    # Exposure Dose Sequence item 3, Series Number 5: CTDIvol (0018,9345) 11.32941264247715
    # (the text says 11.5), ELSCINT1 DLP (00E1,1021) 248.585973, Scan Length (0018,1302) 173
    assert (kidneys.protocol, kidneys.kind) == ("30S KIDNEYS", "Spiral Acquisition")
    assert kidneys.ctdivol == Quantity(11.32941264247715, "mGy")
    assert kidneys.dlp == Quantity(248.585973, "mGy.cm")
    assert kidneys.scan_length == Quantity(173, "mm")
    assert dose.events[0].kind == "Constant Angle Acquisition"  # the surview: CTDIvol 0
    assert dose.dlp_total == Quantity(1102.44609, "mGy.cm")  # the header's (00E1,1021)
    values = row(name)
    assert close(values["ctdivol_max_mGy"], 11.3294) and values["events"] == "4"


def philips_page(comments: str, *exposures: Dataset) -> Dataset:
    ds = Dataset()
    ds.Modality, ds.Manufacturer, ds.ImageType = (
        "CT",
        "Philips",
        ["DERIVED", "SECONDARY", "DOSE_INFO"],
    )
    ds.CommentsOnRadiationDose = comments
    if exposures:
        ds.ExposureDoseSequence = Sequence(list(exposures))
    return ds


def exposure(number: int, kind: str, ctdivol: float | None, dlp: str | None) -> Dataset:
    item = Dataset()
    item.SeriesNumber, item.AcquisitionType, item.SeriesDescription = number, kind, f"S{number}"
    if ctdivol is not None:
        item.CTDIvol = ctdivol
    if dlp is not None:
        item.private_block(0x00E1, "ELSCINT1", create=True).add_new(0x21, "DS", dlp)
    return item


def test_structured_values_win_and_the_text_fills_only_what_they_lack():
    text = (
        "Series #2 HEAD Average CTDIvol=11.5 DLP=250.0\r\n"
        "Series #3 NECK Average CTDIvol=8.0 DLP=100.0\r\n"
        "Series #4 LATE Average CTDIvol=2.0 DLP=20.0\r\nTotal DLP=370.0"
    )
    both = read_dose(
        philips_page(text, exposure(2, "SPIRAL", 11.329, "248.5"), exposure(3, "SPIRAL", 7.9, None))
    )
    head, neck, late = both.events
    assert head == Event(kind="Spiral Acquisition", protocol="S2",
                         ctdivol=Quantity(11.329, "mGy"), dlp=Quantity(248.5, "mGy.cm"))  # fmt: skip
    assert neck.ctdivol == Quantity(7.9, "mGy") and neck.dlp == Quantity(100.0, "mGy.cm")
    assert late.protocol == "Series #4 LATE" and late.ctdivol == Quantity(2.0, "mGy")
    assert both.dlp_total == Quantity(248.5 + 100.0 + 20.0, "mGy.cm")  # no stated structured total
    assert "some values from its Comments on Radiation Dose text" in both.notes[0]
    assert close(StudyDose("1", [both]).row()["ctdivol_max_mGy"], 11.329)

    text_only = read_dose(philips_page(text))
    assert text_only.events[0].ctdivol == Quantity(11.5, "mGy")
    assert text_only.dlp_total == Quantity(370.0, "mGy.cm")
    assert "Comments on Radiation Dose text" in text_only.notes[0]


def test_a_dose_page_without_text_or_sequence_says_its_numbers_are_in_its_pixels():
    ds = pydicom.dcmread(require_corpus() / "CT-SC-Philips_Brilliance16P.dcm")
    del ds.ExposureDoseSequence
    from_text = read_dose(ds)
    # Comments on Radiation Dose (0040,0310): three series, then "Total DLP=1102.4"
    assert [e.protocol for e in from_text.events] == [
        "Series #3 PRE KIDNEYS", "Series #5 30S KIDNEYS", "Series #6 100S C/A/P",
    ]  # fmt: skip
    assert from_text.events[1].ctdivol == Quantity(11.5, "mGy")
    assert from_text.dlp_total == Quantity(1102.44609, "mGy.cm")  # (00E1,1021) still there
    del ds.CommentsOnRadiationDose
    dose = read_dose(ds)
    assert dose.kind == "dose page" and dose.dlp_total is None
    assert "not readable without OCR" in dose.notes[0]
    assert StudyDose(dose.study_uid, [dose]).row()["dose_object"] == "dose page"


def test_the_non_dose_enhanced_sr_gives_a_reason():
    dose = read("ESR_non-dose.dcm")
    assert dose.kind == "none"
    assert dose.notes == ("an SR titled Diagnostic Imaging Report: not a dose report",)


def _code(value: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, "DCM", meaning
    return code


def _rdsr(*content: Dataset) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.67"
    ds.ConceptNameCodeSequence = Sequence([_code("113701", "X-Ray Radiation Dose Report")])
    ds.ContentSequence = Sequence(list(content))
    return ds


def test_malformed_trees_give_reasons_not_exceptions():
    accumulated = Dataset()
    accumulated.ConceptNameCodeSequence = Sequence([_code("113811", "CT Accumulated Dose Data")])
    total = Dataset()
    total.ConceptNameCodeSequence = Sequence([_code("113813", "CT Dose Length Product Total")])
    measured = Dataset()
    measured.add(DataElement(0x0040A30A, "UT", "many"))  # Numeric Value that is not a number
    total.MeasuredValueSequence = Sequence([measured])
    accumulated.ContentSequence = Sequence([total])
    broken = read_dose(_rdsr(accumulated))
    assert broken.kind == "RDSR" and broken.dlp_total is None
    assert "CT Dose Length Product Total (113813) has no value" in broken.notes

    unknown = read_dose(_rdsr())  # titled as a dose report, holding nothing known
    assert unknown.kind == "RDSR" and "unknown dose template" in unknown.notes[0]

    class Hostile:
        def __contains__(self, key: object) -> bool:
            raise RuntimeError("unreadable")

        def get(self, key: str, default: object = None) -> object:
            raise RuntimeError("unreadable")

    assert read_dose(Hostile()).kind == "none"


# What each kind of corpus file must give, by its name: the object's kind, and the headline
# columns that must hold a number (each file's values are checked by hand in the tests above).
KIND_BY_NAME = (
    ("ESR_non-dose", "none", ()),
    ("-ESR-", "ESR", ("dlp_total_mGycm", "ctdivol_max_mGy")),
    ("CT-RDSR-", "RDSR", ("dlp_total_mGycm", "ctdivol_max_mGy")),
    ("CT-SC-", "dose page", ("dlp_total_mGycm", "ctdivol_max_mGy")),
    ("MG-RDSR-", "RDSR", ("agd_mGy",)),
    ("MG-Im-", "image header", ("agd_mGy",)),
    ("DX-Im-", "image header", ("dap_total_Gym2",)),
    ("-RDSR-", "RDSR", ("dap_total_Gym2",)),
    ("Dual-RDSR-", "RDSR", ("dap_total_Gym2",)),
    ("RF-", "RDSR", ("dap_total_Gym2", "dose_rp_total_Gy", "fluoro_time_s")),
)


def test_every_corpus_object_reads_as_its_kind_with_its_headline_numbers():
    checked = 0
    for path in sorted(require_corpus().glob("*.dcm")):
        dose = read_dose(pydicom.dcmread(path))
        assert DoseSummary.from_json(dose.to_json()) == dose, path.name
        kind, columns = next((k, c) for part, k, c in KIND_BY_NAME if part in path.name)
        assert dose.kind == kind, (path.name, dose.kind, dose.notes)
        row = StudyDose(dose.study_uid, [dose]).row()
        for column in columns:
            assert float(row[column]) > 0, (path.name, column, row[column], dose.notes)
        if kind == "none":
            assert dose.notes, path.name  # said why
        checked += 1
    assert checked >= 40


# ---------------------------------------------------------------- a study of several objects


def test_a_continued_rdsr_is_not_counted_twice():
    """A second RDSR may repeat the events of the first: summed over distinct events."""
    first = read("CT-RDSR-Siemens-Multi-2.dcm")
    events = first.events
    repeat = DoseSummary(
        "RDSR", "CT", "CT", study_uid=first.study_uid, events=(*events, events[-1].__class__(
            uid="9.9.9", dlp=Quantity(10.0, "mGy.cm"), ctdivol=Quantity(1.0, "mGy"))),
        dlp_total=Quantity(87.27, "mGy.cm"), event_count=3,
    )  # fmt: skip
    values = StudyDose(first.study_uid, [first, repeat]).row()
    assert values["events"] == "3" and close(values["dlp_total_mGycm"], 7.46 + 69.81 + 10.0)
    assert values["dose_object"] == "RDSR x2"


def test_an_rdsr_beats_the_images_of_the_same_study():
    rdsr, image = read("MG-RDSR-Hologic_2D.dcm"), read("MG-Im-GE-SenDS-scaled.dcm")
    values = StudyDose("1", [image, rdsr]).row()
    assert values["dose_object"] == "RDSR" and close(values["agd_mGy"], 2.58)


# ---------------------------------------------------------------- --summary after a retrieve


def test_summary_csv_after_a_real_retrieve(tmp_path):
    """Retrieve from a real Orthanc, then `--summary --csv`: one row per study, the totals of
    the objects each study holds, no patient data."""
    import csv
    import io
    import json
    import sqlite3
    import subprocess
    import sys

    from qrtui.store import INDEX_NAME
    from tests.conftest import require
    from tests.servers import ORTHANC_BIN, Orthanc, free_port, qrtui_modalities
    from tests.studies import PATIENT_ID, PATIENT_NAME, build_population

    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    population = build_population(require_corpus(), tmp_path / "objects", clock.today())
    store_port = free_port()
    orthanc = Orthanc(tmp_path / "orthanc", modalities=qrtui_modalities("QRTUI_STORE", store_port))
    orthanc.start()
    config = tmp_path / "config.toml"
    config.write_text(
        f"[remotes.pacs]\naet = 'ORTHANC'\nhost = '127.0.0.1'\nport = {orthanc.dicom_port}\n"
        f"retrieve = 'get'\n[stores.local]\naet = 'QRTUI_STORE'\nport = {store_port}\n"
        f"bind = '127.0.0.1'\ndirectory = '{tmp_path / 'store'}'\n"
    )

    def qrtui(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "qrtui", "--no-tui", "--config", str(config), *args],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    try:
        orthanc.upload(population.files())
        done = qrtui("pacs", "local", "-ct", "-mg", "-fl", "-dx", "-f", "7d")
        assert done.returncode == 0, done.stderr
    finally:
        orthanc.stop()
    with sqlite3.connect(tmp_path / "store" / INDEX_NAME) as db:
        held = {uid for (uid,) in db.execute("SELECT DISTINCT study_uid FROM instances")}

    done = qrtui("--summary", "local", "--csv")
    assert done.returncode == 0, done.stderr
    raw = subprocess.run(
        [sys.executable, "-m", "qrtui", "--no-tui", "--config", str(config), "--summary",
         "local", "--csv"], capture_output=True, timeout=300,
    ).stdout  # fmt: skip
    assert raw.count(b"\r\n") == len(held) + 1, "RFC 4180: CRLF after the header and each row"
    table = list(csv.DictReader(io.StringIO(done.stdout, newline="")))
    assert [r["study_instance_uid"] for r in table].count(table[0]["study_instance_uid"]) == 1
    by_uid = {r["study_instance_uid"]: r for r in table}
    assert set(by_uid) == held, "one row per study held"
    study = {label: by_uid[s.uid] for label, s in population.studies.items() if s.uid in by_uid}
    assert close(study["ct_rdsr"]["dlp_total_mGycm"], 724.52)  # Siemens Flash TAP
    assert close(study["ct_esr"]["dlp_total_mGycm"], 415.82)  # GE Optima ESR
    assert study["ct_philips"]["dlp_total_mGycm"] == "1102.45"  # (00E1,1021) 1102.44609
    assert study["ct_philips"]["dose_object"] == "dose page"
    assert close(study["mg_images"]["agd_mGy"], 0.547 + 1.409)  # two GE images, in mGy
    assert close(study["mg_rdsr"]["agd_left_mGy"], 1.30)
    assert close(study["dx_images"]["dap_total_Gym2"], (0.41 + 0.82) * 1e-5)
    assert close(study["rf_rdsr"]["fluoro_time_s"], 28)
    assert study["dx_rdsr"]["dose_rp_total_Gy"] == "" and "no value" in study["dx_rdsr"]["notes"]
    for output in (done.stdout, qrtui("--summary", "local", "--json").stdout):
        assert PATIENT_NAME not in output and PATIENT_ID not in output
        assert "Synthetic" not in output and "19500101" not in output
    as_json = json.loads(qrtui("--summary", "local", "--json").stdout)["studies"]
    assert {r["study_instance_uid"] for r in as_json} == held
    assert all(isinstance(r["events"], int) for r in as_json)

    window = qrtui("--summary", "local", "--csv", "-f", "1d", "-t", "1d")
    dated = list(csv.DictReader(io.StringIO(window.stdout, newline="")))
    yesterday = (clock.today() - timedelta(days=1)).isoformat()
    assert dated and {r["study_date"] for r in dated} == {yesterday}


def test_summary_csv_neutralises_formulas_and_control_characters_in_text_only():
    """PACS text that a spreadsheet would run (OWASP CSV injection) gets a leading quote;
    control characters become U+FFFD; numbers, negative ones too, stay as they are."""
    import csv
    import io

    from qrtui.summary import csv_text

    hostile = {
        '=HYPERLINK("http://x")': '\'=HYPERLINK("http://x")',
        "+1+1": "'+1+1",
        "-2+3": "'-2+3",
        "@SUM(A1)": "'@SUM(A1)",
        "\t=1": "'\ufffd=1",
        "\r=1": "'\ufffd=1",
        "CT \x1b$B broken": "CT \ufffd$B broken",
        "CHEST\x00\x7f\x9b": "CHEST\ufffd\ufffd\ufffd",
        "CT CHEST": "CT CHEST",
    }
    objects = [
        DoseSummary(
            "RDSR",
            "CT",
            "CT",
            station=text,
            model=text,
            manufacturer=text,
            study_uid=f"1.2.{n}",
            study_description=text,
            dlp_total=Quantity(-5.5, "mGy.cm"),
            event_count=1,
        )
        for n, text in enumerate(hostile)
    ]
    table = [StudyDose(o.study_uid, [o]).row() for o in objects]
    read_back = list(csv.DictReader(io.StringIO(csv_text(table), newline="")))
    for row, expected in zip(read_back, hostile.values(), strict=True):
        for column in ("study_description", "station", "model", "manufacturer"):
            assert row[column] == expected, column
        assert row["dlp_total_mGycm"] == "-5.5" and row["events"] == "1"
