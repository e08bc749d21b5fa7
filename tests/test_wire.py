"""The quick paths of qrtui.dicom.pynetdicom_speed and find.text give exactly what pydicom
gives, and hand everything else to pydicom."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pynetdicom import association, dimse_messages, dimse_primitives, dsutils

from qrtui import worker
from qrtui.config import RemoteNode
from qrtui.dicom import pynetdicom_reading as reading
from qrtui.dicom import pynetdicom_speed as speed
from qrtui.dicom.find import FindOutcome, identifier, text
from qrtui.dicom.retrieve import instance_identifier, series_identifier, study_identifier
from qrtui.funnel import Funnel
from qrtui.query import build_query

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "openrem"


def pydicom_bytes(ds: Dataset, implicit: bool) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = implicit, True
    write_dataset(fp, ds)
    return fp.getvalue()


def identifiers() -> list[Dataset]:
    return [
        identifier("STUDY", StudyDate="20261101-20261128", StudyTime="", ModalitiesInStudy="CT",
                   StudyInstanceUID="", SOPClassesInStudy="", NumberOfStudyRelatedSeries=""),
        identifier("SERIES", StudyInstanceUID="1.2.3", SeriesInstanceUID="", Modality="",
                   SeriesNumber="", SeriesDescription="", StationName=""),
        identifier("IMAGE", StudyInstanceUID="1.2.34", SeriesInstanceUID="1.2.345",
                   SOPInstanceUID="", SOPClassUID="", ContentDate=""),
        identifier("STUDY", StudyInstanceUID="1.2.3\\1.2.44", PatientID="AB*"),
    ]  # fmt: skip


@pytest.mark.parametrize("implicit", [True, False])
def test_identifiers_are_written_as_pydicom_writes_them(implicit: bool) -> None:
    quick = [speed.encode_flat(ds, implicit) for ds in identifiers()]
    assert all(q is not None for q in quick[:3])  # a list of UIDs goes to pydicom
    for ds, encoded in zip(identifiers(), quick, strict=True):
        assert encoded is None or encoded == pydicom_bytes(ds, implicit)


class RecordingFinder:
    """A PACS of two CT studies (a CT series without description, an SR series of unknown
    class each) that keeps every identifier the funnel asks it with."""

    def __init__(self) -> None:
        self.asked: list[Dataset] = []

    def find(self, ds: Dataset) -> FindOutcome:
        self.asked.append(ds)
        level, answers = ds.QueryRetrieveLevel, []
        studies = [u for u in str(ds.get("StudyInstanceUID", "")).split("\\") if u]
        for study_uid in studies or ["1.2.1", "1.2.2"]:
            answer = Dataset()
            answer.StudyInstanceUID = study_uid
            if level == "STUDY":
                answer.StudyDate, answer.ModalitiesInStudy = "20261127", ["CT", "SR"]
                answer.NumberOfStudyRelatedSeries = 2
                answers.append(answer)
                continue
            for number, modality in enumerate(("CT", "SR"), 1):
                series = copy.deepcopy(answer)
                series.SeriesInstanceUID = f"{study_uid}.{number}"
                series.Modality, series.SeriesNumber = modality, number
                if level == "IMAGE":
                    series.SOPInstanceUID = f"{series.SeriesInstanceUID}.1"
                answers.append(series)
        return FindOutcome(answers)

    def find_each(
        self, identifiers: Sequence[Dataset], limit: int | None = None
    ) -> Iterator[FindOutcome]:
        return (self.find(ds) for ds in identifiers)


def built_identifiers(monkeypatch: pytest.MonkeyPatch) -> list[Dataset]:
    """Every identifier qrtui builds, by its own code: the funnel's study (by modality, by
    Modality, by UID list), series (alone and in lists) and image queries, the retrieve's
    C-MOVE/C-GET keys, and the TUI's patient context query."""
    finder = RecordingFinder()
    node = RemoteNode("pacs", "PACS", "127.0.0.1")
    today = date(2026, 11, 28)
    every = build_query(today=today, ct=True, mg=True, date_from="7d", toshiba=True)
    Funnel(finder, node, every, today=today, also_studies=("1.2.9",)).run()
    Funnel(finder, replace(node, use_modality_tag=True), every, today=today).run()
    chosen = build_query(today=today, ct=True, only_studies=["1.2.1", "1.2.2"])
    Funnel(finder, node, chosen, today=today).run()
    levels = {ds.QueryRetrieveLevel for ds in finder.asked}
    assert levels == {"STUDY", "SERIES", "IMAGE"}, "the funnel asked at every level"

    class Session(RecordingFinder):
        def __init__(self, *args: object) -> None:
            self.asked = finder.asked

        def __enter__(self) -> Session:
            return self

        def __exit__(self, *args: object) -> None:
            pass

    monkeypatch.setattr(worker.lookups, "FindSession", Session)
    client = SimpleNamespace(client=SimpleNamespace(aet="QRTUI"))  # all it reads of a Config
    worker.patient_context(client, node, ["1.2.1", "1.2.2"])  # type: ignore[arg-type]
    return [
        *finder.asked,
        study_identifier("1.2.1"),
        series_identifier("1.2.1", "1.2.1.2"),
        instance_identifier("1.2.1", "1.2.1.2", "1.2.1.2.1"),
    ]


@pytest.mark.parametrize("implicit", [True, False])
def test_every_identifier_qrtui_builds_is_written_as_pydicom_writes_it(
    implicit: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = built_identifiers(monkeypatch)
    assert len(built) > 10
    for ds in built:
        quick = speed.encode_flat(ds, implicit)
        assert quick is None or quick == pydicom_bytes(ds, implicit), ds
        assert dimse_messages.encode(ds, implicit, True) == pydicom_bytes(ds, implicit)
    # the lists of UIDs aside, every one takes the quick path
    assert all(speed.encode_flat(ds, implicit) for ds in built if ds["StudyInstanceUID"].VM == 1)


# Every VR whose explicit-VR header has a 4-byte length (PS3.5 table 7.1-1), empty and not
LONG_LENGTH_VALUES = {
    "UT": "free text", "UC": "characters", "UR": "http://example.org/", "UN": b"\x01\x02",
    "OB": b"\x00\x01", "OW": b"\x00\x01", "OF": b"\x00" * 4, "OD": b"\x00" * 8,
    "OL": b"\x00" * 4, "OV": b"\x00" * 8, "SV": 5, "UV": 5, "SQ": [Dataset()],
}  # fmt: skip
LONG_LENGTH_TAGS = {
    "UT": 0x00400310, "UC": 0x00189900, "UR": 0x00081190, "UN": 0x00111010,
    "OB": 0x00420011, "OW": 0x00281201, "OF": 0x00640009, "OD": 0x00720073,
    "OL": 0x00660040, "OV": 0x00720082, "SV": 0x00720081, "UV": 0x00720083,
    "SQ": 0x00400275,
}  # fmt: skip


@pytest.mark.parametrize("implicit", [True, False])
@pytest.mark.parametrize("vr", sorted(LONG_LENGTH_VALUES))
def test_long_length_vrs_empty_or_not_are_written_as_pydicom_writes_them(
    vr: str, implicit: bool
) -> None:
    for value in (None, "", b"", LONG_LENGTH_VALUES[vr]):
        ds = identifier("STUDY", StudyInstanceUID="", StationName="")
        ds.add(DataElement(LONG_LENGTH_TAGS[vr], vr, value))
        quick = speed.encode_flat(ds, implicit)
        assert quick is None or quick == pydicom_bytes(ds, implicit), (vr, value)
        assert dimse_messages.encode(ds, implicit, True) == pydicom_bytes(ds, implicit)
        if value in (None, "") and vr != "SQ":
            assert quick is not None, "an empty value is still the simple case"


@pytest.mark.parametrize("implicit", [True, False])
def test_an_ambiguous_vr_goes_to_pydicom(implicit: bool) -> None:
    ds = identifier("IMAGE", SOPInstanceUID="")
    ds.BitsAllocated = 16
    ds.add(DataElement(0x7FE00010, "OB or OW", None))  # OW by Bits Allocated: 4-byte length
    quick = speed.encode_flat(ds, implicit)  # first: pydicom resolves the VR in place
    assert quick is None or quick == pydicom_bytes(ds, implicit)


def command_sets() -> list[Dataset]:
    """The command sets pynetdicom builds for what qrtui sends and answers."""
    found = dimse_primitives.C_FIND()
    found.MessageID, found.AffectedSOPClassUID, found.Priority = 7, "1.2.840.10008.5.1.4.1.2.2.1", 2
    found.Identifier = BytesIO(b"\x08\x00\x52\x00")
    get = dimse_primitives.C_GET()
    get.MessageID, get.AffectedSOPClassUID, get.Priority = 9, "1.2.840.10008.5.1.4.1.2.2.3", 0
    get.Identifier = BytesIO(b"\x08\x00\x52\x00")
    move = dimse_primitives.C_MOVE()
    move.MessageID, move.AffectedSOPClassUID, move.Priority = 10, "1.2.840.10008.5.1.4.1.2.2.2", 0
    move.MoveDestination, move.Identifier = "QRTUI_STORE", BytesIO(b"\x08\x00\x52\x00")
    stored = dimse_primitives.C_STORE()
    stored.MessageIDBeingRespondedTo, stored.Status = 3, 0
    stored.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.67"
    stored.AffectedSOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    sets = []
    for message, primitive in (
        (dimse_messages.C_FIND_RQ(), found),
        (dimse_messages.C_GET_RQ(), get),
        (dimse_messages.C_MOVE_RQ(), move),
        (dimse_messages.C_STORE_RSP(), stored),
    ):
        message.primitive_to_message(primitive)
        sets.append(message.command_set)
    return sets


def test_command_sets_are_written_as_pydicom_writes_them() -> None:
    for command_set in command_sets():
        quick = speed.encode_flat(command_set, True)
        assert quick is not None
        assert quick == pydicom_bytes(command_set, True)
        # what pynetdicom itself now calls: the same bytes
        assert dimse_messages.encode(command_set, True, True) == quick


def test_what_is_not_simple_goes_to_pydicom() -> None:
    for ds in (
        identifier("STUDY", PatientName="Müller^Hans"),  # not ASCII
        identifier("STUDY", PatientName="DOE^JOHN"),  # a person name object
        identifier("STUDY", ModalitiesInStudy=["CT", "SR"]),  # a list
        identifier("STUDY", NumberOfStudyRelatedSeries="3"),  # a number as a string
    ):
        assert speed.encode_flat(ds, True) is None
        assert dimse_messages.encode(ds, True, True) == pydicom_bytes(ds, True)
    nested = identifier("IMAGE", SOPInstanceUID="")
    nested.ContentSequence = [Dataset()]
    assert speed.encode_flat(nested, False) is None


RAW_VALUES = {
    "StudyInstanceUID": [b"1.2.3\x00", b"1.2.34", b"", b" 1.2.3 "],
    "ModalitiesInStudy": [b"CT\\SR ", b"CT", b"CT \\ SR", b"\\SR", b"", b"MG\\"],
    "SOPClassesInStudy": [b"1.2.840.10008.5.1.4.1.1.88.67\\1.2.840.10008.5.1.4.1.1.2\x00"],
    "StudyDate": [b"20261128", b"20261101-20261128", b""],
    "StudyTime": [b"101500.123 ", b"1015", b""],
    "StudyDescription": [b"CT CHEST ", b"  LEADING", b"A\\B", b"caf\xe9 ", b"\x1b$B\x1b(B "],
    "StationName": [b"DEMO_CT ", b""],
    "NumberOfStudyRelatedSeries": [b"3 ", b" 003", b"1.5 ", b"", b"-2"],
    "SeriesNumber": [b"12", b"+4 "],
    "PatientName": [b"DOE^JOHN ", b""],
    "Modality": [b"SR", b"sr "],
}


def encoded_answer(keyword: str, raw: bytes, implicit: bool) -> Dataset:
    """An answer as it comes off the wire: the element not yet read by pydicom."""
    ds = Dataset()
    setattr(ds, keyword, "")
    elem = ds[keyword]
    padded = raw + (b" " if len(raw) % 2 else b"")
    header = dsutils.encode(ds, implicit, True)
    assert header is not None
    tag = header[:4]
    if implicit:
        data = tag + len(padded).to_bytes(4, "little") + padded
    else:
        data = tag + elem.VR.encode() + len(padded).to_bytes(2, "little") + padded
    return dsutils.decode(BytesIO(data), implicit, True)


def pydicom_text(ds: Dataset, keyword: str) -> str | None:
    if keyword not in ds:
        return None
    value = ds[keyword].value
    if value is None:
        return ""
    if type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


@pytest.mark.filterwarnings("ignore:Found unknown escape sequence")
@pytest.mark.parametrize("implicit", [True, False])
def test_answers_read_as_pydicom_reads_them(implicit: bool) -> None:
    for keyword, raws in RAW_VALUES.items():
        for raw in raws:
            quick = text(encoded_answer(keyword, raw, implicit), keyword)
            assert quick == pydicom_text(encoded_answer(keyword, raw, implicit), keyword), (
                keyword,
                raw,
            )
    assert text(Dataset(), "StudyInstanceUID") is None


def test_corpus_headers_read_as_pydicom_reads_them() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS}")
    keywords = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID",
                "Modality", "StudyDate", "StudyTime", "StationName", "SeriesDescription",
                "StudyDescription", "Manufacturer", "SeriesNumber", "InstanceNumber",
                "ImageType", "ContentDate", "SpecificCharacterSet")  # fmt: skip
    checked = 0
    for path in sorted(CORPUS.rglob("*")):
        if not path.is_file():
            continue
        try:
            quick_ds = dcmread(path, stop_before_pixels=True)
            slow_ds = dcmread(path, stop_before_pixels=True)
        except Exception:
            continue
        for keyword in keywords:
            assert text(quick_ds, keyword) == pydicom_text(slow_ds, keyword), (path.name, keyword)
            checked += 1
    assert checked > 300


def test_received_command_sets_become_the_same_primitives() -> None:
    for command_set in command_sets():
        data = dsutils.encode(command_set, True, True)
        assert data is not None
        quick = dsutils.decode(BytesIO(data), True, True)
        found = reading.command_values(quick)
        assert found is not None
        slow = dsutils.decode(BytesIO(data), True, True)
        assert found == [(elem.keyword, elem.value) for elem in slow]
        for (_, value), elem in zip(found, slow, strict=True):  # a UID as plain text is fine
            uid_as_text = isinstance(elem.value, str) and type(value) is str
            assert type(value) is type(elem.value) or uid_as_text, (elem.keyword, value)


def test_a_received_command_set_gives_its_values_as_read_until_one_changes() -> None:
    for command_set in command_sets():
        data = dsutils.encode(command_set, True, True)
        assert data is not None
        quick = dimse_messages.decode(BytesIO(data), True, True)
        assert type(quick) is reading.ReceivedCommand
        slow = dsutils.decode(BytesIO(data), True, True)
        as_pydicom = [(elem.keyword, elem.value) for elem in slow]
        assert reading.command_values(quick) == as_pydicom
        assert quick.values_as_read() == as_pydicom, "the values read as it was decoded"
        for keyword, value in as_pydicom:
            assert getattr(quick, keyword) == value
        quick.CommandField = 0x0FFF  # a value changed is read as changed, everywhere
        assert quick.CommandField == 0x0FFF and quick["CommandField"].value == 0x0FFF
        assert quick.values_as_read() is None
        assert ("CommandField", 0x0FFF) in (reading.command_values(quick) or [])
        del quick.CommandDataSetType
        assert "CommandDataSetType" not in quick
        assert ("CommandDataSetType", slow.CommandDataSetType) not in (
            reading.command_values(quick) or []
        )


def answers() -> list[Dataset]:
    """Answers as PACS send them: character sets, lists, numbers, names, a nested item."""
    study = identifier("STUDY", StudyDate="20261204", StudyTime="101500", StudyInstanceUID="1.2.3",
                       ModalitiesInStudy=["CT", "SR"], NumberOfStudyRelatedSeries="2",
                       RetrieveAETitle="ORTHANC")  # fmt: skip
    latin = identifier("STUDY", StudyDescription="café", PatientName="Müller^Hans")
    latin.SpecificCharacterSet = "ISO_IR 100"
    unicode = identifier("SERIES", SeriesDescription="胸部", SeriesNumber="3")
    unicode.SpecificCharacterSet = "ISO_IR 192"
    several = identifier("STUDY", PatientName="Yamada^Tarou")
    several.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    nested = identifier("IMAGE", SOPInstanceUID="1.2.3.4", InstanceNumber="1")
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3.4.5"
    nested.ReferencedSOPSequence = [item]
    empty = Dataset()
    return [study, latin, unicode, several, nested, empty]


def decoded_both_ways(
    data: bytes, implicit: bool, command: bool = False
) -> tuple[Dataset, Dataset]:
    """What pynetdicom now decodes (an identifier, or a command set), and what pydicom's
    reader gives."""
    reader = dimse_messages.decode if command else association.decode
    return (
        reader(BytesIO(data), implicit, True),
        reading._decode(BytesIO(data), implicit, True),  # type: ignore[attr-defined]
    )


def assert_same(quick: Dataset, slow: Dataset) -> None:
    own = ("_dict", "_as_read", "_by_keyword", "_values")  # ReceivedCommand's
    assert {k: v for k, v in vars(quick).items() if k not in own} == {
        k: v for k, v in vars(slow).items() if k != "_dict"
    }, "made as pydicom makes a dataset it reads"
    assert values(quick, raw=True) == values(slow, raw=True)  # before anything is read
    assert quick.original_encoding == slow.original_encoding
    assert quick.original_character_set == slow.original_character_set
    assert values(quick) == values(slow)


def values(ds: Dataset, raw: bool = False) -> list[object]:
    """Each element as read (or its raw element, where it was not read yet), or what
    pydicom raised reading it."""
    found: list[object] = []
    for tag in ds.keys():  # noqa: SIM118 (iterating a Dataset reads every element)
        try:
            elem = ds.get_item(tag) if raw else ds[tag]
            found.append(elem if raw else (tag, elem.VR, elem.value))
        except Exception as exc:
            found.append((tag, str(exc)))
    return found


@pytest.mark.parametrize("implicit", [True, False])
def test_received_datasets_are_read_as_pydicom_reads_them(
    implicit: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    flat = [*answers(), *identifiers(), *built_identifiers(monkeypatch)]
    commands = command_sets() if implicit else []
    for ds in [*flat, *commands]:
        data = pydicom_bytes(ds, implicit)
        assert reading.raw_elements(data, implicit) is not None, "read the quick way"
        assert_same(*decoded_both_ways(data, implicit, command=ds in commands))


def test_a_message_to_receive_is_made_as_pynetdicom_makes_it() -> None:
    def plain(found: object) -> object:
        if isinstance(found, BytesIO):
            return ("BytesIO", found.getvalue())
        if isinstance(found, Dataset):
            return (type(found), vars(found))
        return found

    quick = dimse_messages.DIMSEMessage()
    slow = dimse_messages.DIMSEMessage.__new__(dimse_messages.DIMSEMessage)
    reading._message_init(slow)  # type: ignore[attr-defined]
    assert {k: plain(v) for k, v in vars(quick).items()} == {
        k: plain(v) for k, v in vars(slow).items()
    }
    again = dimse_messages.DIMSEMessage()
    for name, value in vars(quick).items():
        if isinstance(value, BytesIO | Dataset):
            assert value is not vars(again)[name], name


def test_datasets_read_the_quick_way_share_nothing_mutable() -> None:
    data = pydicom_bytes(answers()[0], True)
    one, two = (association.decode(BytesIO(data), True, True) for _ in range(2))
    for name, value in vars(one).items():
        if isinstance(value, dict | list):
            assert value is not vars(two)[name], name


def test_what_the_quick_reader_cannot_vouch_for_goes_to_pydicom() -> None:
    study = answers()[0]
    explicit, implicit = pydicom_bytes(study, False), pydicom_bytes(study, True)
    undefined = answers()[4]
    undefined["ReferencedSOPSequence"].is_undefined_length = True
    looks_explicit = Dataset()  # its first length's bytes read as a VR: "BA"
    looks_explicit.StudyDescription = "A" * 0x4142
    delimiter = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"  # pydicom stops reading there
    odd = [
        (explicit, True),  # explicit VR on a context said to be implicit: pydicom looks again
        (implicit, False),
        (implicit + b"\x08\x00", True),  # bytes left over
        (implicit[:-3], True),  # the last value cut short
        (pydicom_bytes(undefined, False), False),  # an item of undefined length
        (pydicom_bytes(undefined, True), True),
        (explicit[:12] + b"zz" + explicit[14:], False),  # an unknown VR
        (pydicom_bytes(looks_explicit, True), True),
        (implicit + delimiter + implicit, True),
    ]
    for data, implicit_vr in odd:
        assert reading.raw_elements(data, implicit_vr) is None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert_same(*decoded_both_ways(data, implicit_vr))
    big = BytesIO(b"\x00\x08\x00\x52\x00\x00\x00\x06STUDY ")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert dimse_messages.decode(big, True, False).QueryRetrieveLevel == "STUDY"
