"""What the demo PACS answers a C-FIND from (qrtui.demo.pacs): a record per study, series or
instance of its objects, and DICOM's matching of value lists and of date and time ranges."""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset

LEVEL_KEYS = {
    "STUDY": ("StudyInstanceUID",),
    "SERIES": ("StudyInstanceUID", "SeriesInstanceUID"),
    "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"),
}
UID_KEYS = {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"}
RANGE_KEYS = {"StudyDate", "StudyTime", "SeriesDate", "SeriesTime"}


def query_records(
    objects: list[Dataset], level: str, miscount_series: bool = False
) -> list[dict[str, Any]]:
    """A record per instance, series or study of `objects`, with the keys the demo PACS
    answers; `miscount_series`: studies claim one series more than they hold."""
    if level == "IMAGE":
        return [
            {
                "StudyInstanceUID": o.StudyInstanceUID,
                "SeriesInstanceUID": o.SeriesInstanceUID,
                "SOPInstanceUID": o.SOPInstanceUID,
                "SOPClassUID": o.SOPClassUID,
                "InstanceNumber": o.InstanceNumber,
            }
            for o in objects
        ]
    series: dict[str, dict[str, Any]] = {}
    for o in objects:
        record = series.setdefault(
            o.SeriesInstanceUID,
            {
                "StudyInstanceUID": o.StudyInstanceUID,
                "SeriesInstanceUID": o.SeriesInstanceUID,
                "Modality": o.Modality,
                "SeriesDescription": o.SeriesDescription,
                "SeriesNumber": o.SeriesNumber,
                "SeriesDate": o.SeriesDate,
                "SeriesTime": o.SeriesTime,
                "StationName": o.StationName,
                "NumberOfSeriesRelatedInstances": 0,
            },
        )
        record["NumberOfSeriesRelatedInstances"] += 1
    if level == "SERIES":
        return list(series.values())
    studies: dict[str, dict[str, Any]] = {}
    for o in objects:
        record = studies.setdefault(
            o.StudyInstanceUID,
            {
                "StudyInstanceUID": o.StudyInstanceUID,
                "StudyDate": o.StudyDate,
                "StudyTime": o.StudyTime,
                "StudyDescription": o.StudyDescription,
                "AccessionNumber": o.AccessionNumber,
                "PatientName": str(o.PatientName),
                "PatientID": o.PatientID,
                "ModalitiesInStudy": [],
                "NumberOfStudyRelatedSeries": 0,
            },
        )
        if o.Modality not in record["ModalitiesInStudy"]:
            record["ModalitiesInStudy"].append(o.Modality)
    for s in series.values():
        studies[s["StudyInstanceUID"]]["NumberOfStudyRelatedSeries"] += 1
    if miscount_series:
        for study in studies.values():
            study["NumberOfStudyRelatedSeries"] += 1
    return list(studies.values())


def values(value: Any) -> list[str]:
    """A key's values: a backslash-separated string, or a pydicom multi-value."""
    if isinstance(value, str):
        return [v.strip() for v in value.split("\\") if v.strip()]
    try:
        return [str(v).strip() for v in value if str(v).strip()]
    except TypeError:
        return [str(value).strip()]


def in_range(actual: str, wanted: str) -> bool:
    """DICOM range matching: 'A', 'A-B', 'A-', '-B' (dates or times)."""
    if "-" not in wanted:
        return actual.startswith(wanted) or actual == wanted
    start, end = wanted.split("-", 1)
    width = max(len(start), len(end))
    value = actual[:width] if width else actual
    return (not start or value >= start[: len(value)]) and (not end or value <= end[: len(value)])
