"""Dose SRs walked by concept code (DCM codes of TID 10001, 10003, 10005, 10011), never by
position: CT and projection RDSRs, GE's dose Enhanced SRs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from qrtui.dose.content import content_tree
from qrtui.dose.model import DoseSummary, Event, Quantity, _Device, _device, _study
from qrtui.selection import RDSR_CLASSES

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


def _read_sr(ds: Any, sop_class: str) -> DoseSummary:
    kind = "RDSR" if sop_class in RDSR_CLASSES else "ESR"
    tree = content_tree(ds)
    title = _code_of(tree)
    if title != "113701":
        return DoseSummary(
            "none", "", "SR", **_device(ds), **_study(ds),
            notes=(f"an SR titled {_meaning_of(tree) or title or 'nothing'}: not a dose report",),
        )  # fmt: skip
    notes: list[str] = []
    content = list(_children(tree))
    device = _device(ds)
    if not device["manufacturer"]:
        device["manufacturer"] = _text_item(_first(content, DEVICE_MANUFACTURER))
    if not device["model"]:
        device["model"] = _text_item(_first(content, DEVICE_MODEL))
    if not device["station"]:
        device["station"] = _text_item(_first(content, DEVICE_NAME))
    template = _template(tree)
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


def _items(ds: Any, keyword: str) -> list[Any]:
    try:
        return list(ds.get(keyword) or ())
    except Exception:
        return []


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
