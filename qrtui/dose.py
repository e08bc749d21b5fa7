"""What a dose object says, in numbers: one object in, a small frozen summary out.

It walks an SR content tree by concept codes (DCM codes of TID 10001, 10003, 10005, 10011),
never by position, and reads MG/DX/CR image headers and Philips "Dose Info" pages. Values keep
the object's own units, named everywhere; the study columns convert them to the unit their
name gives. What cannot be read becomes a stated reason, never an exception.

Works on anything shaped like a pydicom Dataset (attribute access, `in`, `.get`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict

from qrtui.selection import RDSR_CLASSES, TITLED_SR_CLASSES

# Concept codes (DCM unless said)
PROCEDURE_REPORTED = "121058"
CT_ACCUMULATED = "113811"
TOTAL_EVENTS = "113812"
DLP_TOTAL = "113813"
CT_ACQUISITION = "113819"
CT_ACQUISITION_TYPE = "113820"
ACQUISITION_PROTOCOL = "125203"
CT_DOSE = "113829"
MEAN_CTDIVOL = "113830"
DLP = "113838"
EVENT_UID = "113769"
ACCUMULATED_XRAY = "113702"
DAP_TOTAL = "113722"
DOSE_RP_TOTAL = "113725"
FLUORO_TIME = "113730"
ACQUISITION_TIME = "113855"
IRRADIATION_EVENT = "113706"
EVENT_TYPE = "113721"
DAP = "122130"
DOSE_RP = "113738"
ACCUMULATED_AGD = "111637"
AGD = "111631"
LATERALITY = "G-C171"  # SRT; SCT 272741003
LATERALITY_SCT = "272741003"
DEVICE_MANUFACTURER = "121014"
DEVICE_MODEL = "121015"
DEVICE_NAME = "121013"
MAMMOGRAPHY = {"P5-40010", "71651007"}  # SRT, SCT
FLUOROSCOPY = {"P5-06000", "44491008"}  # Irradiation Event Type: Fluoroscopy
CT_TEMPLATE = "10011"

# Units of the study columns, and what the objects' units are worth in them.
_IN = {
    "mGy.cm": {"mGy.cm": 1.0, "Gy.cm": 1e3, "mGy.mm": 0.1, "cGy.cm": 10.0, "dGy.cm": 100.0},
    "mGy": {"mGy": 1.0, "Gy": 1e3, "dGy": 100.0, "cGy": 10.0, "uGy": 1e-3},
    "Gy.m2": {"Gy.m2": 1.0, "dGy.cm2": 1e-5, "cGy.cm2": 1e-6, "mGy.cm2": 1e-7, "uGy.m2": 1e-6,
              "mGy.m2": 1e-3, "uGy.cm2": 1e-10, "Gy.cm2": 1e-4, "dGy.m2": 0.1},
    "Gy": {"Gy": 1.0, "mGy": 1e-3, "dGy": 0.1, "cGy": 0.01, "uGy": 1e-6},
    "s": {"s": 1.0, "ms": 1e-3, "min": 60.0, "h": 3600.0},
}  # fmt: skip


def _spelling(unit: str) -> str:
    """One spelling for a unit: vendors write mGycm, Gym2, dGy*cm2, uGy.m2 or µGy.m2."""
    out = unit.strip().replace("µ", "u").replace("μ", "u")
    for mark in (".", "*", "·", " ", "^"):
        out = out.replace(mark, "")
    return out.lower()


_FACTORS = {column: {_spelling(u): f for u, f in units.items()} for column, units in _IN.items()}


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str  # the object's own, as written (UCUM, or a vendor's spelling of it)

    def in_unit(self, unit: str) -> float | None:
        """The value in the column unit `unit`, or None for a unit not known to mean it."""
        factor = _FACTORS.get(unit, {}).get(_spelling(self.unit))
        return None if factor is None else self.value * factor

    def __str__(self) -> str:
        return f"{self.value:g} {self.unit}"


@dataclass(frozen=True)
class Event:
    """One irradiation event (or CT acquisition)."""

    uid: str | None = None
    kind: str | None = None  # CT acquisition type, or irradiation event type
    protocol: str | None = None
    ctdivol: Quantity | None = None
    dlp: Quantity | None = None
    dap: Quantity | None = None
    dose_rp: Quantity | None = None
    agd: Quantity | None = None
    laterality: str | None = None
    scan_length: Quantity | None = None


@dataclass(frozen=True)
class DoseSummary:
    kind: str  # "RDSR", "ESR", "dose page", "image header", or "none"
    group: str  # "CT", "MG", "FL", "DX", or "" when the object does not tell
    modality: str
    manufacturer: str | None = None
    model: str | None = None
    station: str | None = None
    study_uid: str = ""
    study_date: str = ""
    study_description: str = ""
    event_count: int | None = None
    events: tuple[Event, ...] = ()
    dlp_total: Quantity | None = None
    dap_total: Quantity | None = None
    dose_rp_total: Quantity | None = None
    fluoro_time: Quantity | None = None
    acquisition_time: Quantity | None = None
    agd: tuple[tuple[str, Quantity], ...] = ()  # accumulated, per laterality
    exposure_index: float | None = None
    deviation_index: float | None = None
    kvp: Quantity | None = None
    exposure: Quantity | None = None
    notes: tuple[str, ...] = ()  # what could not be read, and why

    @property
    def ctdivol_max(self) -> Quantity | None:
        values = [e.ctdivol for e in self.events if e.ctdivol is not None]
        return max(values, key=lambda q: q.in_unit("mGy") or q.value) if values else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> DoseSummary:
        def quantity(value: Any) -> Quantity | None:
            return Quantity(float(value["value"]), str(value["unit"])) if value else None

        events = tuple(
            Event(**{**e, **{k: quantity(e.get(k)) for k in _EVENT_QUANTITIES}})
            for e in data.get("events", ())
        )
        values = {k: quantity(data.get(k)) for k in _SUMMARY_QUANTITIES}
        return DoseSummary(
            **{
                **{k: v for k, v in data.items() if k not in ("events", "agd", "notes")},
                **values,
                "events": events,
                "agd": tuple((str(side), quantity(q)) for side, q in data.get("agd", ())),
                "notes": tuple(data.get("notes", ())),
            }
        )


_EVENT_QUANTITIES = ("ctdivol", "dlp", "dap", "dose_rp", "agd", "scan_length")
_SUMMARY_QUANTITIES = (
    "dlp_total", "dap_total", "dose_rp_total", "fluoro_time", "acquisition_time", "kvp",
    "exposure",
)  # fmt: skip


# ---------------------------------------------------------------- reading one object


def read_dose(ds: Any) -> DoseSummary:
    """The dose in one object. Never raises: a reason goes into `notes`."""
    try:
        return _read(ds)
    except Exception as exc:  # a malformed object is a finding, not a crash
        return DoseSummary(
            "none", "", _text(ds, "Modality") or "", **_device(ds),
            notes=(f"could not be read: {type(exc).__name__}",),
        )  # fmt: skip


def _read(ds: Any) -> DoseSummary:
    sop_class = _text(ds, "SOPClassUID") or ""
    if sop_class in RDSR_CLASSES or sop_class in TITLED_SR_CLASSES:
        return _read_sr(ds, sop_class)
    image_type = (_text(ds, "ImageType") or "").upper()
    described = f"{_text(ds, 'SeriesDescription') or ''} {_text(ds, 'ImageComments') or ''}"
    if "DOSE_INFO" in image_type or "dose info" in described.lower():
        return _read_dose_page(ds)
    modality = (_text(ds, "Modality") or "").upper()
    if modality in ("MG", "DX", "CR", "PX", "IO"):
        return _read_header(ds, modality)
    return DoseSummary(
        "none", "", modality, **_device(ds), **_study(ds),
        notes=(f"not a dose object (SOP class {sop_class or 'not given'})",),
    )  # fmt: skip


def _read_sr(ds: Any, sop_class: str) -> DoseSummary:
    kind = "RDSR" if sop_class in RDSR_CLASSES else "ESR"
    title = _code_of(ds)
    if title != "113701":
        return DoseSummary(
            "none", "", "SR", **_device(ds), **_study(ds),
            notes=(f"an SR titled {_meaning_of(ds) or title or 'nothing'}: not a dose report",),
        )  # fmt: skip
    notes: list[str] = []
    content = list(_children(ds))
    device = _device(ds)
    if not device["manufacturer"]:
        device["manufacturer"] = _text_item(_first(content, DEVICE_MANUFACTURER))
    if not device["model"]:
        device["model"] = _text_item(_first(content, DEVICE_MODEL))
    if not device["station"]:
        device["station"] = _text_item(_first(content, DEVICE_NAME))
    template = _template(ds)
    ct = _first(content, CT_ACCUMULATED) is not None or template == CT_TEMPLATE
    if ct:
        return _read_ct(ds, kind, content, device, notes)
    if _first(content, ACCUMULATED_XRAY) is None and not _all(content, IRRADIATION_EVENT):
        return DoseSummary(
            kind, "", "SR", **device, **_study(ds),
            notes=(f"an unknown dose template ({template or 'none given'}): nothing read",),
        )  # fmt: skip
    return _read_projection(ds, kind, content, device, notes)


def _read_ct(
    ds: Any, kind: str, content: list[Any], device: _Device, notes: list[str]
) -> DoseSummary:
    accumulated = _first(content, CT_ACCUMULATED)
    acc = list(_children(accumulated)) if accumulated is not None else []
    if accumulated is None:
        notes.append("no CT Accumulated Dose Data (113811)")
    dlp_total = _num(acc, DLP_TOTAL, notes, "CT Dose Length Product Total (113813)")
    total = _num(acc, TOTAL_EVENTS, [], "")
    events = []
    for acquisition in _all(content, CT_ACQUISITION):
        items = list(_children(acquisition))
        dose = _first(items, CT_DOSE)
        dose_items = list(_children(dose)) if dose is not None else []
        events.append(
            Event(
                uid=_uid_item(_first(items, EVENT_UID)),
                kind=_code_meaning(_first(items, CT_ACQUISITION_TYPE)),
                protocol=_text_item(_first(items, ACQUISITION_PROTOCOL)),
                ctdivol=_num(dose_items, MEAN_CTDIVOL, [], ""),
                dlp=_num(dose_items, DLP, [], ""),
            )
        )
    missing = sum(1 for e in events if e.dlp is None and e.kind != "Constant Angle Acquisition")
    if missing:
        notes.append(f"{missing} acquisitions without a DLP (113838)")
    return DoseSummary(
        kind, "CT", "CT", **device, **_study(ds),
        event_count=int(total.value) if total else len(events),
        events=tuple(events), dlp_total=dlp_total, notes=tuple(notes),
    )  # fmt: skip


def _read_projection(
    ds: Any, kind: str, content: list[Any], device: _Device, notes: list[str]
) -> DoseSummary:
    accumulated = _all(content, ACCUMULATED_XRAY)
    acc = [item for container in accumulated for item in _children(container)]
    if not accumulated:
        notes.append("no Accumulated X-Ray Dose Data (113702)")
    events = []
    for event in _all(content, IRRADIATION_EVENT):
        items = list(_children(event))
        laterality = _laterality_of(items)
        events.append(
            Event(
                uid=_uid_item(_first(items, EVENT_UID)),
                kind=_code_meaning(_first(items, EVENT_TYPE)),
                protocol=_text_item(_first(items, ACQUISITION_PROTOCOL)),
                dap=_num(items, DAP, [], ""),
                dose_rp=_num(items, DOSE_RP, [], ""),
                agd=_num(items, AGD, [], ""),
                laterality=laterality,
            )
        )
    procedure = _code_value(_first(content, PROCEDURE_REPORTED))
    agd = tuple(
        (_laterality_of(list(_children(item))) or "both", q)
        for item in _all(acc, ACCUMULATED_AGD)
        if (q := _quantity(item)) is not None
    )
    mammography = procedure in MAMMOGRAPHY or bool(agd)
    fluoro_time = _num(acc, FLUORO_TIME, [], "")
    fluoroscopy = (fluoro_time is not None and fluoro_time.value > 0) or any(
        _code_value(_first(list(_children(e)), EVENT_TYPE)) in FLUOROSCOPY
        for e in _all(content, IRRADIATION_EVENT)
    )
    group = "MG" if mammography else "FL" if fluoroscopy else "DX"
    if mammography:
        if not agd:
            notes.append("no Accumulated Average Glandular Dose (111637)")
        dap_total = dose_rp_total = None
    else:
        dap_total = _num_of_all(acc, DAP_TOTAL, notes, "Dose Area Product Total (113722)")
        dose_rp_total = _num_of_all(acc, DOSE_RP_TOTAL, notes, "Dose (RP) Total (113725)")
    return DoseSummary(
        kind, group, {"MG": "MG", "FL": "RF/XA", "DX": "DX"}[group], **device, **_study(ds),
        event_count=len(events), events=tuple(events), dap_total=dap_total,
        dose_rp_total=dose_rp_total, fluoro_time=fluoro_time,
        acquisition_time=_num(acc, ACQUISITION_TIME, [], ""), agd=agd, notes=tuple(notes),
    )  # fmt: skip


def _read_header(ds: Any, modality: str) -> DoseSummary:
    notes = []
    organ_dose = _number(ds, "OrganDose")  # dGy: the AGD of a mammogram
    dap = _number(ds, "ImageAndFluoroscopyAreaDoseProduct")  # dGy.cm2
    side = (_text(ds, "ImageLaterality") or _text(ds, "Laterality") or "").upper()
    laterality = {"L": "Left breast", "R": "Right breast"}.get(side, "unknown side")
    agd: tuple[tuple[str, Quantity], ...] = ()
    if modality == "MG":
        if organ_dose is None:
            notes.append("no Organ Dose (0040,0316) in the header")
        else:
            agd = ((laterality, Quantity(organ_dose, "dGy")),)
    elif dap is None:
        notes.append("no Image and Fluoroscopy Area Dose Product (0018,115E) in the header")
    exposure = _number(ds, "ExposureInuAs")
    exposure_q = Quantity(exposure, "uA.s") if exposure is not None else None
    if exposure_q is None and (mas := _number(ds, "Exposure")) is not None:
        exposure_q = Quantity(mas, "mA.s")
    kvp = _number(ds, "KVP")
    return DoseSummary(
        "image header", "MG" if modality == "MG" else "DX", modality, **_device(ds),
        **_study(ds), event_count=1,
        dap_total=Quantity(dap, "dGy.cm2") if dap is not None else None, agd=agd,
        exposure_index=_number(ds, "ExposureIndex"),
        deviation_index=_number(ds, "DeviationIndex"),
        kvp=Quantity(kvp, "kV") if kvp is not None else None, exposure=exposure_q,
        notes=tuple(notes),
    )  # fmt: skip


_PAGE_SERIES = re.compile(
    r"CTDIvol\s*=\s*(?P<ctdivol>[\d.]+)(?:\s*mGy)?\s+DLP\s*=\s*(?P<dlp>[\d.]+)", re.I
)
_PAGE_SERIES_NUMBER = re.compile(r"Series\s*#\s*(\d+)", re.I)
_PAGE_TOTAL = re.compile(r"Total\s+DLP\s*=\s*(?P<dlp>[\d.]+)", re.I)
# Acquisition Type (0018,9302) as the CT Acquisition Type (113820) of an RDSR names it
_ACQUISITION_KINDS = {
    "CONSTANT_ANGLE": "Constant Angle Acquisition", "SPIRAL": "Spiral Acquisition",
    "SEQUENCED": "Sequenced Acquisition", "STATIONARY": "Stationary Acquisition",
    "FREE": "Free Acquisition",
}  # fmt: skip


def _read_dose_page(ds: Any) -> DoseSummary:
    """A Philips "Dose Info" page: its numbers are in its pixels, and in its Exposure Dose
    Sequence (0040,030E), as OpenREM reads them. Some pages repeat them, rounded, as text in
    Comments on Radiation Dose (0040,0310); the text fills only what the sequence lacks."""
    comments = _text(ds, "CommentsOnRadiationDose") or ""
    written = _page_text_events(comments)
    exposures = [
        item
        for item in _items(ds, "ExposureDoseSequence")
        if "AcquisitionType" in item or "CTDIvol" in item
    ]
    events, texts_used = [], False
    for item in exposures:
        number = _number(item, "SeriesNumber")
        text = written.pop(int(number), Event()) if number is not None else Event()
        ctdivol = _measured(_number(item, "CTDIvol"), "mGy")
        dlp = _measured(_elscint_dlp(item), "mGy.cm")
        texts_used |= (ctdivol is None and text.ctdivol is not None) or (
            dlp is None and text.dlp is not None
        )
        events.append(
            Event(
                kind=_ACQUISITION_KINDS.get((_text(item, "AcquisitionType") or "").upper()),
                protocol=_text(item, "SeriesDescription") or text.protocol,
                ctdivol=ctdivol or text.ctdivol,
                dlp=dlp or text.dlp,
                scan_length=_measured(_number(item, "ScanLength"), "mm"),
            )
        )
    # series the sequence leaves out; an unnumbered line cannot be told from those it holds
    left = [e for key, e in written.items() if key >= 0] if exposures else written.values()
    texts_used |= bool(exposures and left)
    events += left
    if not events:
        return DoseSummary(
            "dose page", "CT", "CT", **_device(ds), **_study(ds),
            notes=("dose page held: its numbers are in its pixels, not readable without OCR",),
        )  # fmt: skip
    stated = _PAGE_TOTAL.search(comments)
    total, summed = _elscint_dlp(ds), False
    if total is None and stated and not exposures:
        total = float(stated["dlp"])
    elif total is None:
        total, summed = sum(e.dlp.value for e in events if e.dlp), True
    source = "Exposure Dose Sequence" if exposures else "Comments on Radiation Dose text"
    notes = (
        f"read from the page's {source} (its pixels are not read)"
        + ("; some values from its Comments on Radiation Dose text" if texts_used else "")
        + ("; the DLP total is the sum of its series" if summed else ""),
    )
    count = _number(ds, "TotalNumberOfExposures")
    return DoseSummary(
        "dose page", "CT", "CT", **_device(ds), **_study(ds),
        event_count=int(count) if count else len(events), events=tuple(events),
        dlp_total=Quantity(round(total, 6), "mGy.cm"), notes=notes,
    )  # fmt: skip


def _page_text_events(comments: str) -> dict[int, Event]:
    """The series lines of a page's text, by series number (else by line)."""
    events: dict[int, Event] = {}
    for line in comments.replace("\r", "\n").split("\n"):
        match = _PAGE_SERIES.search(line)
        if match:
            protocol = line[: match.start()].strip().removesuffix("Average").strip() or None
            numbered = _PAGE_SERIES_NUMBER.match(protocol or "")
            key = int(numbered[1]) if numbered else -1 - len(events)  # never a series number
            events[key] = Event(
                protocol=protocol,
                ctdivol=Quantity(float(match["ctdivol"]), "mGy"),
                dlp=Quantity(float(match["dlp"]), "mGy.cm"),
            )
    return events


def _measured(value: float | None, unit: str) -> Quantity | None:
    return None if value is None else Quantity(value, unit)


def _elscint_dlp(item: Any) -> float | None:
    """Philips' DLP: private (00E1,xx21) of creator ELSCINT1, as OpenREM reads it."""
    try:
        value = item.private_block(0x00E1, "ELSCINT1")[0x21].value
        return float((value.decode() if isinstance(value, bytes) else str(value)).split("\\")[0])
    except Exception:
        return None


def _items(ds: Any, keyword: str) -> list[Any]:
    try:
        return list(ds.get(keyword) or ())
    except Exception:
        return []


# ---------------------------------------------------------------- the content tree


def _children(item: Any) -> Iterator[Any]:
    if item is None:
        return
    try:
        yield from item.ContentSequence
    except (AttributeError, TypeError, KeyError):
        return


def _code_of(item: Any) -> str | None:
    try:
        return str(item.ConceptNameCodeSequence[0].CodeValue).strip()
    except Exception:
        return None


def _meaning_of(item: Any) -> str | None:
    try:
        return str(item.ConceptNameCodeSequence[0].CodeMeaning).strip()
    except Exception:
        return None


def _first(items: Iterable[Any], code: str) -> Any | None:
    return next((i for i in items if _code_of(i) == code), None)


def _all(items: Iterable[Any], code: str) -> list[Any]:
    return [i for i in items if _code_of(i) == code]


def _quantity(item: Any) -> Quantity | None:
    try:
        measured = item.MeasuredValueSequence[0]
        value = float(measured.NumericValue)
        unit = str(measured.MeasurementUnitsCodeSequence[0].CodeValue).strip()
    except Exception:
        return None
    return Quantity(value, unit)


def _num(items: Sequence[Any], code: str, notes: list[str], name: str) -> Quantity | None:
    item = _first(items, code)
    if item is None:
        if name:
            notes.append(f"no {name}")
        return None
    value = _quantity(item)
    if value is None and name:
        notes.append(f"{name} has no value")
    return value


def _num_of_all(items: Sequence[Any], code: str, notes: list[str], name: str) -> Quantity | None:
    """A total, summed over the planes of a biplane system (one container each)."""
    values = [q for item in _all(items, code) if (q := _quantity(item)) is not None]
    if not values:
        if _first(items, code) is None:
            notes.append(f"no {name}")
        else:
            notes.append(f"{name} has no value")
        return None
    units = {q.unit for q in values}
    if len(units) > 1:
        notes.append(f"{name} in several units: the first plane only")
        return values[0]
    return Quantity(sum(q.value for q in values), values[0].unit)


def _code_value(item: Any) -> str | None:
    try:
        return str(item.ConceptCodeSequence[0].CodeValue).strip()
    except Exception:
        return None


def _code_meaning(item: Any) -> str | None:
    try:
        return str(item.ConceptCodeSequence[0].CodeMeaning).strip()
    except Exception:
        return None


def _text_item(item: Any) -> str | None:
    try:
        return str(item.TextValue).strip() or None
    except Exception:
        return None


def _uid_item(item: Any) -> str | None:
    try:
        return str(item.UID).strip() or None
    except Exception:
        return None


def _laterality_of(items: Sequence[Any]) -> str | None:
    """A laterality item below these items, or below their anatomy items."""
    for item in items:
        if _code_of(item) in (LATERALITY, LATERALITY_SCT):
            return _code_meaning(item)
    for item in items:
        found = _laterality_of([c for c in _children(item)])
        if found:
            return found
    return None


def _template(ds: Any) -> str | None:
    try:
        return str(ds.ContentTemplateSequence[0].TemplateIdentifier).strip()
    except Exception:
        return None


# ---------------------------------------------------------------- header values


def _text(ds: Any, keyword: str) -> str | None:
    try:
        if keyword not in ds:
            return None
        value = ds.get(keyword)
    except Exception:
        return None
    if value is None:
        return None
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip() or None


def _number(ds: Any, keyword: str) -> float | None:
    text = _text(ds, keyword)
    try:
        return float(text.split("\\")[0]) if text else None
    except ValueError:
        return None


class _Device(TypedDict):
    manufacturer: str | None
    model: str | None
    station: str | None


class _Study(TypedDict):
    study_uid: str
    study_date: str
    study_description: str


def _device(ds: Any) -> _Device:
    return {
        "manufacturer": _text(ds, "Manufacturer"),
        "model": _text(ds, "ManufacturerModelName"),
        "station": _text(ds, "StationName"),
    }


def _study(ds: Any) -> _Study:
    return {
        "study_uid": _text(ds, "StudyInstanceUID") or "",
        "study_date": _text(ds, "StudyDate") or "",
        "study_description": _text(ds, "StudyDescription") or "",
    }


# ---------------------------------------------------------------- a study's row


COLUMNS = (
    "study_instance_uid", "study_date", "group", "modality", "manufacturer", "model",
    "station", "study_description", "dose_object", "dlp_total_mGycm", "ctdivol_max_mGy",
    "events", "dap_total_Gym2", "dose_rp_total_Gy", "fluoro_time_s", "agd_mGy",
    "agd_left_mGy", "agd_right_mGy", "notes",
)  # fmt: skip
_RANK = {"RDSR": 0, "ESR": 1, "dose page": 2, "image header": 3, "none": 4}


@dataclass
class StudyDose:
    """The headline values of a study, from every dose object the store holds of it."""

    study_uid: str
    objects: list[DoseSummary] = field(default_factory=list)

    @property
    def best(self) -> list[DoseSummary]:
        """The objects of the best kind held: an RDSR beats an ESR beats a dose page."""
        readable = [o for o in self.objects if o.kind != "none"]
        if not readable:
            return []
        rank = min(_RANK[o.kind] for o in readable)
        return [o for o in readable if _RANK[o.kind] == rank]

    def row(self) -> dict[str, str]:
        best = self.best
        first = best[0] if best else (self.objects[0] if self.objects else None)
        notes = sorted({n for o in best or self.objects for n in o.notes})
        row = dict.fromkeys(COLUMNS, "")
        row["study_instance_uid"] = self.study_uid
        if first is None:
            return row
        kinds = [o.kind for o in best]
        row.update(
            study_date=_iso(first.study_date),
            group=first.group,
            modality=first.modality,
            manufacturer=first.manufacturer or "",
            model=first.model or "",
            station=first.station or "",
            study_description=first.study_description,
            dose_object=(f"{kinds[0]} x{len(kinds)}" if len(kinds) > 1 else kinds[0])
            if kinds
            else "none",
        )
        events = _distinct_events(best)
        row["events"] = str(self.event_count(best, events)) if best else ""
        row["dlp_total_mGycm"] = _fmt(self.total(best, events, "dlp_total", "dlp", "mGy.cm"))
        ctdi = [q.in_unit("mGy") for e in events if (q := e.ctdivol) is not None]
        row["ctdivol_max_mGy"] = _fmt(max((c for c in ctdi if c is not None), default=None))
        row["dap_total_Gym2"] = _fmt(self.total(best, events, "dap_total", "dap", "Gy.m2"))
        row["dose_rp_total_Gy"] = _fmt(self.total(best, events, "dose_rp_total", "dose_rp", "Gy"))
        row["fluoro_time_s"] = _fmt(_sum((o.fluoro_time for o in best), "s"))
        left, right, both = _agd(best)
        row["agd_left_mGy"], row["agd_right_mGy"] = _fmt(left), _fmt(right)
        row["agd_mGy"] = _fmt(both)
        row["notes"] = "; ".join(notes)
        return row

    @staticmethod
    def event_count(best: list[DoseSummary], events: list[Event]) -> int:
        if _overlap_free(best):
            return sum(o.event_count or len(o.events) for o in best)
        return len(events)

    @staticmethod
    def total(
        best: list[DoseSummary], events: list[Event], total: str, per_event: str, unit: str
    ) -> float | None:
        """The objects' own totals, summed where their events do not overlap; else the sum
        over distinct irradiation events (a continued RDSR repeats earlier events)."""
        if _overlap_free(best):
            return _sum((getattr(o, total) for o in best), unit)
        return _sum((getattr(e, per_event) for e in events), unit)


def _distinct_events(objects: list[DoseSummary]) -> list[Event]:
    seen: set[str] = set()
    out = []
    for o in objects:
        for e in o.events:
            if e.uid and e.uid in seen:
                continue
            if e.uid:
                seen.add(e.uid)
            out.append(e)
    return out


def _overlap_free(objects: list[DoseSummary]) -> bool:
    uids = [e.uid for o in objects for e in o.events if e.uid]
    return len(uids) == len(set(uids))


def _sum(values: Iterable[Quantity | None], unit: str) -> float | None:
    present = [q.in_unit(unit) for q in values if q is not None]
    converted = [v for v in present if v is not None]
    return sum(converted) if converted and len(converted) == len(present) else None


def _agd(objects: list[DoseSummary]) -> tuple[float | None, float | None, float | None]:
    sides: dict[str, float] = {}
    for o in objects:
        for side, q in o.agd:
            value = q.in_unit("mGy")
            if value is not None:
                lowered = side.lower()
                key = "left" if "left" in lowered else "right" if "right" in lowered else "other"
                sides[key] = sides.get(key, 0.0) + value
    if not sides:
        return None, None, None
    return sides.get("left"), sides.get("right"), sum(sides.values())


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.6g}"


def _iso(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 else value


def headline(study: StudyDose) -> str:
    """One short value for the TUI's plan table: CT DLP, projection DAP, MG AGD."""
    row = study.row()
    if row["dlp_total_mGycm"]:
        return f"DLP {float(row['dlp_total_mGycm']):.4g} mGy.cm"
    if row["agd_mGy"]:
        return f"AGD {float(row['agd_mGy']):.3g} mGy"
    if row["dap_total_Gym2"]:
        return f"DAP {float(row['dap_total_Gym2']) * 1e4:.4g} Gy.cm2"
    kinds = {o.kind for o in study.objects}
    if "dose page" in kinds:
        return "dose page held"
    return "-"
