"""The SR content tree read from its bytes (qrtui/dose/content.py, issue 26) gives the same
dose summary as pydicom's reading of the same file, on generated objects in every encoding
the receive path meets, and on every corpus object where the corpus is there."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

import qrtui.dose.sr as sr
from qrtui.demo.studies import DemoDose, enhanced_sr, rdsr
from qrtui.dicom.header import header_of
from qrtui.dose import DoseSummary, read_dose
from qrtui.dose.content import Item, NotPlain, _sequence, content_tree
from tests.conftest import require_corpus

CONTENT_SEQUENCE = 0x0040A730


def by_pydicom(ds: Dataset, monkeypatch: pytest.MonkeyPatch) -> DoseSummary:
    with monkeypatch.context() as m:
        m.setattr(sr, "content_tree", lambda ds: ds)
        return read_dose(ds)


def written(ds: Dataset, path: Path, syntax: str, undefined: bool = False) -> Path:
    ds.SOPInstanceUID = ds.get("SOPInstanceUID") or generate_uid()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    if undefined:  # the way a modality may write them: pydicom then reads them at once
        for element in ds.iterall():
            if element.VR == "SQ":
                element.is_undefined_length = True
                for item in element.value:
                    item.is_undefined_length_sequence_item = True
    ds.save_as(path, enforce_file_format=True)
    return path


def every_item_read_quickly(tree: object) -> bool:
    if not isinstance(tree, Item):
        return False
    children = getattr(tree, "ContentSequence", [])
    return all(every_item_read_quickly(child) for child in children)


def dose_objects() -> dict[str, Dataset]:
    accented = DemoDose(protocol="Schädel nativ")  # UTF-8, not the default: pydicom decodes it
    objects = {
        "CT RDSR": rdsr(),
        "projection RDSR": rdsr("10001", DemoDose(fluoro_time=12.5)),
        "mammography RDSR": rdsr("10001", DemoDose(mammography=True)),
        "GE CT ESR": enhanced_sr(True),
        "GE projection ESR": enhanced_sr(True, projection=True),
        "not a dose report": enhanced_sr(False),
        "UTF-8 protocol": rdsr(dose=accented),
    }
    objects["UTF-8 protocol"].SpecificCharacterSet = "ISO_IR 192"
    return objects


@pytest.mark.parametrize("name", sorted(dose_objects()))
@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
@pytest.mark.parametrize("defer", [None, "64 KB", 64])  # 64 bytes: the content left on disk
def test_read_from_its_bytes_as_pydicom_reads_it(tmp_path, monkeypatch, name, syntax, defer):
    path = written(dose_objects()[name], tmp_path / "sr.dcm", syntax)
    ds = pydicom.dcmread(path, stop_before_pixels=True, defer_size=defer)
    assert every_item_read_quickly(content_tree(ds))  # not by pydicom
    quick = read_dose(ds)
    slow = by_pydicom(pydicom.dcmread(path, stop_before_pixels=True, defer_size=defer), monkeypatch)
    assert quick == slow
    assert quick.kind != "none" or name == "not a dose report"


def test_the_accented_protocol_and_a_backslash_read_through_pydicom(tmp_path, monkeypatch):
    ds = dose_objects()["UTF-8 protocol"]
    accumulated = ds.ContentSequence[1].ContentSequence[0]  # the DLP total
    accumulated.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue = "mGy\\cm"
    path = written(ds, tmp_path / "sr.dcm", ExplicitVRLittleEndian)
    quick = read_dose(pydicom.dcmread(path, stop_before_pixels=True))
    assert quick.events[0].protocol == "Schädel nativ"
    assert quick.dlp_total is not None and quick.dlp_total.unit != "mGy\\cm"  # two values
    assert quick == by_pydicom(pydicom.dcmread(path, stop_before_pixels=True), monkeypatch)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_sequences_of_undefined_length_and_a_title_read_first(tmp_path, monkeypatch, syntax):
    """pydicom reads a sequence of undefined length as it reads the file, and the receive
    path reads the title (header_of) before the dose: its items are used as they are."""
    path = written(rdsr(), tmp_path / "sr.dcm", syntax, undefined=True)
    ds = pydicom.dcmread(path, stop_before_pixels=True, defer_size="64 KB")
    header_of(ds)
    quick = read_dose(ds)
    assert quick.kind == "RDSR" and quick.dlp_total is not None
    assert quick == by_pydicom(pydicom.dcmread(path, stop_before_pixels=True), monkeypatch)


def test_bytes_it_does_not_take_on_are_left_to_pydicom():
    with pytest.raises(NotPlain):
        _sequence(b"\xfe\xff\x00\xe0\xff\x00\x00\x00", 0, 8, False)  # an item past the end
    ds = rdsr()
    garbage = b"\x08\x00\x00\x01SH\x40\x00abc"  # a length past the end of the value
    ds._dict[CONTENT_SEQUENCE] = RawDataElement(
        CONTENT_SEQUENCE, "SQ", len(garbage), garbage, 0, False, True
    )
    assert content_tree(ds) is ds
    assert read_dose(ds).kind == "RDSR"  # pydicom's reading, and its reasons


def test_every_corpus_object_reads_as_pydicom_reads_it(monkeypatch):
    quick_ones = 0
    for path in sorted(require_corpus().glob("*.dcm")):
        for defer in (None, "64 KB"):
            ds = pydicom.dcmread(path, stop_before_pixels=True, defer_size=defer)
            header_of(ds)
            quick_ones += content_tree(ds) is not ds
            slow = by_pydicom(pydicom.dcmread(path, stop_before_pixels=True), monkeypatch)
            assert read_dose(ds) == slow, path.name
    assert quick_ones > 40  # most of the corpus takes the quick reading
