"""What a dose object says, in numbers: one object in, a small frozen summary out.

It walks an SR content tree by concept codes (DCM codes of TID 10001, 10003, 10005, 10011),
never by position, and reads MG/DX/CR image headers and Philips "Dose Info" pages. Values keep
the object's own units, named everywhere; the study columns convert them to the unit their
name gives. What cannot be read becomes a stated reason, never an exception.

Works on anything shaped like a pydicom Dataset (attribute access, `in`, `.get`).

sr.py walks dose SRs, headers.py reads image headers and dose pages, model.py holds the
summary of one object and study.py the columns of a study. Meaning layer: it may import
qrtui.selection, nothing else of qrtui.
"""

from __future__ import annotations

from typing import Any

from qrtui.dose.headers import _read_dose_page, _read_header
from qrtui.dose.model import DoseSummary, Event, Quantity, _device, _study, _text
from qrtui.dose.sr import _read_sr
from qrtui.dose.study import COLUMNS, StudyDose, headline
from qrtui.selection import RDSR_CLASSES, TITLED_SR_CLASSES


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


__all__ = ["COLUMNS", "DoseSummary", "Event", "Quantity", "StudyDose", "headline", "read_dose"]
