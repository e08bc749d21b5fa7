"""A test population of studies for the funnel, built from the corpus plus synthetic images.

Every study knows which of its series (and instances) a correct plan fetches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

PATIENT_NAME = "Synthetic^Patient^Secret"
PATIENT_ID = "SYN-PID-0042"

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
PET_IMAGE = "1.2.840.10008.5.1.4.1.1.128"
RF_IMAGE = "1.2.840.10008.5.1.4.1.1.12.2"
XA_IMAGE = "1.2.840.10008.5.1.4.1.1.12.1"
DX_IMAGE = "1.2.840.10008.5.1.4.1.1.1.1"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


@dataclass
class BuiltSeries:
    label: str
    uid: str
    modality: str
    sop_uids: list[str] = field(default_factory=list)


@dataclass
class BuiltStudy:
    label: str
    uid: str
    description: str
    study_date: date
    series: dict[str, BuiltSeries] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    # series label -> instance labels to fetch (None: the whole series); empty: dropped
    expect: dict[str, list[int] | None] = field(default_factory=dict)
    group: str = ""
    study_time: str = "101500"


def _meta(ds: Dataset) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta


def synthetic_image(sop_class: str, modality: str) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = b"\x00\x01" * 4
    return ds


def report_sr() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = BASIC_TEXT_SR
    ds.Modality = "SR"
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = (
        "11528-7",
        "LN",
        "Radiology Report",
    )
    ds.ConceptNameCodeSequence = Sequence([code])
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    return ds


def generated_object(name: str) -> Dataset:
    """A generated stand-in for the corpus file `name`, of the same kind (by its name: an
    RDSR, a dose or non-dose Enhanced SR, a Dose Info page, an MG, DX or CR image), so that
    a clone without ../shared still runs the real-server tests on every rule."""
    from qrtui.demo import studies as demo

    if name.startswith("ESR_non-dose"):
        return demo.enhanced_sr(dose=False)
    if "-ESR-" in name:
        return demo.enhanced_sr(dose=True)
    if "-RDSR-" in name:
        return demo.rdsr("10011" if name.startswith("CT-") else "10001")
    if name.startswith("CT-SC-"):
        page = demo.image(demo.SECONDARY_CAPTURE, "CT", 32)
        page.ImageType = ["DERIVED", "SECONDARY", "DOSE_INFO"]
        page.ImageComments = page.SeriesDescription = "Dose Info"
        return page
    if name.startswith("MG-Im-"):
        return demo.image(demo.MG_IMAGE, "MG", 32)
    if "Carestream" in name:  # the corpus's CR image
        return demo.image(demo.CR_IMAGE, "CR")
    if name.startswith("DX-Im-"):
        return demo.image(demo.DX_IMAGE, "DX")
    raise KeyError(f"no generated stand-in for {name}")


class PopulationBuilder:
    """corpus None: generated stand-ins (generated_object) for the corpus files."""

    def __init__(self, corpus: Path | None, out: Path, today: date) -> None:
        self.corpus, self.out, self.today = corpus, out, today
        self.studies: dict[str, BuiltStudy] = {}
        out.mkdir(parents=True, exist_ok=True)

    def corpus_object(self, name: str) -> Dataset:
        if self.corpus is None:
            return generated_object(name)
        return pydicom.dcmread(self.corpus / name)

    def study(self, label: str, description: str, days_ago: int = 1, group: str = "") -> BuiltStudy:
        built = BuiltStudy(
            label, generate_uid(), description, self.today - timedelta(days=days_ago), group=group
        )
        self.studies[label] = built
        return built

    def add(
        self,
        study: BuiltStudy,
        series_label: str,
        ds: Dataset,
        series_description: str | None = "",
    ) -> None:
        """series_description None: the object keeps what it has (or lacks)."""
        series = study.series.get(series_label)
        if series is None:
            series = BuiltSeries(series_label, generate_uid(), ds.Modality)
            study.series[series_label] = series
        ds.StudyInstanceUID = study.uid
        ds.SeriesInstanceUID = series.uid
        ds.SOPInstanceUID = generate_uid()
        ds.StudyDate = study.study_date.strftime("%Y%m%d")
        ds.StudyTime = study.study_time
        ds.SeriesDate = ds.StudyDate
        ds.StudyDescription = study.description
        if series_description is not None:
            ds.SeriesDescription = series_description or ds.get("SeriesDescription", "")
        ds.SeriesNumber = list(study.series).index(series_label) + 1
        ds.InstanceNumber = len(series.sop_uids) + 1
        ds.PatientName = PATIENT_NAME
        ds.PatientID = PATIENT_ID
        ds.PatientBirthDate = "19500101"
        ds.StudyID = "1"
        ds.AccessionNumber = ""
        ds.SpecificCharacterSet = "ISO_IR 192"
        for stale in ("ReferencedPerformedProcedureStepSequence",):
            if stale in ds:
                del ds[stale]
        _meta(ds)
        path = self.out / f"{study.label}-{series_label}-{len(series.sop_uids)}.dcm"
        ds.save_as(path, enforce_file_format=True)
        series.sop_uids.append(ds.SOPInstanceUID)
        study.files.append(path)

    def images(
        self, study: BuiltStudy, label: str, sop: str, modality: str, count: int = 2
    ) -> None:
        for _ in range(count):
            self.add(study, label, synthetic_image(sop, modality), f"{modality} images")

    def files(self) -> list[Path]:
        return [f for s in self.studies.values() for f in s.files]


def build_population(corpus: Path | None, out: Path, today: date) -> PopulationBuilder:
    """The test set of the query issue, dated relative to `today`."""
    b = PopulationBuilder(corpus, out, today)

    s = b.study("ct_rdsr", "CT CHEST", group="CT")
    b.images(s, "img", CT_IMAGE, "CT")
    b.add(s, "rdsr", b.corpus_object("CT-RDSR-Siemens_Flash-TAP-SS.dcm"))
    s.expect = {"rdsr": None}

    s = b.study("ct_esr", "CT ABDOMEN", group="CT")
    b.images(s, "img", CT_IMAGE, "CT")
    b.add(s, "esr", b.corpus_object("CT-ESR-GE_Optima.dcm"))
    s.expect = {"esr": None}

    s = b.study("ct_rdsr_report", "CT CHEST ABDOMEN", group="CT")
    b.images(s, "img", CT_IMAGE, "CT")
    b.add(s, "rdsr", b.corpus_object("CT-RDSR-GEPixelMed.dcm"))
    b.add(s, "report", report_sr(), "Report")
    s.expect = {"rdsr": None}

    s = b.study("ct_mixed_sr_series", "CT HEAD", group="CT")
    b.images(s, "img", CT_IMAGE, "CT")
    b.add(s, "sr", b.corpus_object("CT-RDSR-Toshiba_DoseCheck.dcm"))
    b.add(s, "sr", report_sr())
    s.expect = {"sr": [0]}

    s = b.study("ct_philips", "CT THORAX", group="CT")
    b.images(s, "img", CT_IMAGE, "CT")
    b.add(s, "doseinfo", b.corpus_object("CT-SC-Philips_Brilliance16P.dcm"), "Dose Info")
    s.expect = {"doseinfo": None}

    s = b.study("ct_images_only", "CT SINUS", group="CT")
    b.images(s, "img", CT_IMAGE, "CT")

    s = b.study("petct", "PET-CT WHOLE BODY", group="CT")
    b.images(s, "pet", PET_IMAGE, "PT")
    b.images(s, "ct", CT_IMAGE, "CT")
    b.add(s, "rdsr", b.corpus_object("CT-RDSR-Siemens-Multi-1.dcm"))
    s.expect = {"rdsr": None}

    s = b.study("mg_images", "MAMMO SCREENING", group="MG")
    b.add(s, "img", b.corpus_object("MG-Im-GE_Seno_1_ForPresentation.dcm"))
    b.add(s, "img", b.corpus_object("MG-Im-GE_Seno_2_ForPresentation.dcm"))
    s.expect = {"img": None}

    s = b.study("mg_rdsr", "MAMMO DIAGNOSTIC", group="MG")
    b.add(s, "img", b.corpus_object("MG-Im-GE-SenDS-scaled.dcm"))
    b.add(s, "rdsr", b.corpus_object("MG-RDSR-Hologic_2D.dcm"))
    s.expect = {"rdsr": None}

    s = b.study("mg_report", "MAMMO REPORTED", group="MG")
    b.add(s, "img", b.corpus_object("MG-Im-GE_Seno_1_ForProcessing.dcm"))
    b.add(s, "report", report_sr(), "Report")
    s.expect = {"img": None}

    s = b.study("dx_images", "XR ABDOMEN", group="DX")
    b.add(s, "img", b.corpus_object("DX-Im-GE_XR220-1.dcm"))
    b.add(s, "img", b.corpus_object("DX-Im-GE_XR220-2.dcm"))
    s.expect = {"img": None}

    s = b.study("cr_images", "XR CHEST", group="DX")
    b.add(s, "img", b.corpus_object("DX-Im-Carestream_DRX.dcm"))
    s.expect = {"img": None}

    s = b.study("dx_rdsr", "XR KNEE", group="DX")
    b.add(s, "img", b.corpus_object("DX-Im-GE_XR220-3.dcm"))
    b.add(s, "rdsr", b.corpus_object("DX-RDSR-Canon_CXDI.dcm"))
    s.expect = {"rdsr": None}

    s = b.study("rf_rdsr", "FLUORO BARIUM", group="FL")
    b.images(s, "img", RF_IMAGE, "RF")
    b.add(s, "rdsr", b.corpus_object("RF-RDSR-Siemens-Zee.dcm"))
    s.expect = {"rdsr": None}

    s = b.study("xa_esr", "ANGIO CORONARY", group="FL")
    b.images(s, "img", XA_IMAGE, "XA")
    b.add(s, "esr", b.corpus_object("CT-ESR-GE_VCT.dcm"))
    s.expect = {"esr": None}

    s = b.study("rf_images_only", "FLUORO SWALLOW", group="FL")
    b.images(s, "img", RF_IMAGE, "RF")

    s = b.study("mr", "MR BRAIN")
    b.images(s, "img", MR_IMAGE, "MR")

    s = b.study("sr_only_rdsr", "DOSE IMPORT", group="SR")
    b.add(s, "rdsr", b.corpus_object("RF-RDSR-Philips_Allura.dcm"))
    s.expect = {"rdsr": None}

    s = b.study("sr_only_report", "REPORT IMPORT", group="SR")
    b.add(s, "report", report_sr(), "Report")

    s = b.study("ct_old", "CT CHEST OLD", days_ago=40, group="CT")
    b.images(s, "img", CT_IMAGE, "CT", count=1)
    b.add(s, "rdsr", b.corpus_object("CT-RDSR-Siemens-Multi-2.dcm"))
    s.expect = {"rdsr": None}

    s = b.study("ct_research", "CT CHEST RESEARCH", group="CT")
    b.images(s, "img", CT_IMAGE, "CT", count=1)
    b.add(s, "rdsr", b.corpus_object("CT-RDSR-Siemens-Multi-3.dcm"))
    s.expect = {"rdsr": None}
    return b


def rdsr_store(directory: Path, count: int, destination: str) -> list[str]:
    """An embedded store of `count` RDSRs, one study each, queued for `destination`."""
    from qrtui.demo.studies import StudyBuilder, rdsr
    from qrtui.store import Store, StoredInstance

    builder = StudyBuilder(date(2026, 3, 10))
    uids = []
    with Store(directory) as store:
        store.forward_to = (destination,)
        for n in range(count):
            study = builder.study(f"s{n}", "CT DOSE", "CT")
            builder.add(study, 1, rdsr(), "Dose Report", dose=True)
            ds = study.objects[0]
            written = directory / "one.dcm"
            ds.save_as(written, enforce_file_format=True)
            final = store.path_for(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
            store.add(written, StoredInstance(
                ds.SOPInstanceUID, str(ds.SOPClassUID), ds.StudyInstanceUID,
                ds.SeriesInstanceUID, "SR", final, written.stat().st_size, "PACS",
            ))  # fmt: skip
            uids.append(str(ds.SOPInstanceUID))
    return uids
