"""Reading what an object is from its own header (pydicom), for the pure rules of selection."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from qrtui.dicom.find import text
from qrtui.dose import read_dose
from qrtui.selection import Header, ObjectKind, object_kind
from qrtui.store import StoredInstance


def header_of(ds: Dataset, sop_class_uid: str | None = None) -> Header:
    """Malformed values never raise: what cannot be read is left out."""
    title: tuple[str, str] | None = None
    try:
        code = ds.ConceptNameCodeSequence[0]
        title = (str(code.CodeValue).strip(), str(code.CodingSchemeDesignator).strip())
    except Exception:
        pass
    image_type = tuple(v.strip().upper() for v in (text(ds, "ImageType") or "").split("\\"))
    return Header(
        sop_class_uid=sop_class_uid or text(ds, "SOPClassUID") or "",
        title=title,
        series_description=text(ds, "SeriesDescription"),
        image_type=tuple(v for v in image_type if v),
        image_comments=text(ds, "ImageComments"),
    )


def kind_of_file(path: Path, sop_class_uid: str | None = None) -> ObjectKind | None:
    """What the file at path is, or None when it cannot be read."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, defer_size="64 KB")
    except Exception:
        return None
    return object_kind(header_of(ds, sop_class_uid))


def dose_json(ds: Dataset) -> str | None:
    """The object's dose summary as JSON; None for an object that carries no dose."""
    summary = read_dose(ds)
    if summary.kind == "none":
        return None
    return json.dumps(summary.to_json(), separators=(",", ":"))


def dose_json_of_file(path: Path) -> str | None:
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:
        return None
    return dose_json(ds)


def stored_instance(
    ds: Dataset,
    uids: tuple[str, str, str],
    sop_class_uid: str,
    path: Path,
    size: int,
    sending_aet: str = "",
) -> StoredInstance:
    """The index row of an object: `uids` are its SOP instance, study and series UIDs,
    checked by the caller; what it is and its dose are read from its own header."""
    sop, study, series = uids
    return StoredInstance(
        sop_instance_uid=sop,
        sop_class_uid=sop_class_uid,
        study_uid=study,
        series_uid=series,
        modality=(text(ds, "Modality") or "").upper()[:16],
        path=path,
        size=size,
        sending_aet=sending_aet,
        kind=str(object_kind(header_of(ds, sop_class_uid))),
        dose=dose_json(ds),
    )
