"""Dose in image headers: MG, DX and CR (AGD, DAP, exposure, indices), and Philips "Dose
Info" pages (their Exposure Dose Sequence, else their text)."""

from __future__ import annotations

import re
from typing import Any

from qrtui.dose.model import DoseSummary, Event, Quantity, _device, _number, _study, _text
from qrtui.dose.sr import _items


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
