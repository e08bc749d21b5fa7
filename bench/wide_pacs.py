"""A PACS with N one-series CT studies over the last DAYS days (default 30), for the
wide-query memory measurement. Run as a process: `wide_pacs.py N [DAYS] [--dose]`; prints its
port, serves until stdin closes. With --dose each study also holds an RDSR, which it serves
by C-GET (bench/first_object.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

ROOT = "1.2.826.0.1.3680043.10.1234."


def _within(value: str, wanted: str) -> bool:
    """DICOM range matching on same-width values: 'A', 'A-B', 'A-', '-B'."""
    if not wanted:
        return True
    start, _, end = wanted.partition("-") if "-" in wanted else (wanted, "", wanted)
    width = len(value)
    return (not start or value >= start.ljust(width, "0")[:width]) and (
        not end or value <= end.ljust(width, "9")[:width]
    )


def answers(
    n: int, identifier: Dataset, days: int = 30, dose: bool = False
) -> Iterator[tuple[int, Dataset]]:
    level = str(identifier.QueryRetrieveLevel)
    if level == "STUDY":
        dates, times = str(identifier.get("StudyDate", "")), str(identifier.get("StudyTime", ""))
        for i in range(n):
            study_date = (date.today() - timedelta(days=i % days)).strftime("%Y%m%d")
            seconds = (i * 7919) % 86400  # spread over the day, so time windows split them
            study_time = f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
            if not (_within(study_date, dates) and _within(study_time, times)):
                continue
            ds = Dataset()
            ds.QueryRetrieveLevel = "STUDY"
            ds.StudyInstanceUID = f"{ROOT}{i}"
            ds.StudyDate = study_date
            ds.StudyTime = study_time
            ds.StudyDescription = f"CT CHEST WITH A DESCRIPTION OF SOME LENGTH {i}"
            ds.ModalitiesInStudy = ["CT", "SR"] if dose else ["CT"]
            ds.StationName = "CT_SCANNER_1"
            ds.NumberOfStudyRelatedSeries = "2" if dose else "1"
            yield 0xFF00, ds
    elif level == "SERIES":
        asked = identifier.StudyInstanceUID  # one UID, or a list of them
        for study_uid in [asked] if isinstance(asked, str) else list(asked):
            ds = Dataset()
            ds.QueryRetrieveLevel = "SERIES"
            ds.StudyInstanceUID = str(study_uid)
            ds.SeriesInstanceUID = f"{study_uid}.1"
            ds.Modality = "CT"
            ds.SeriesDescription = "AXIAL 5MM"
            ds.SeriesNumber = "1"
            ds.NumberOfSeriesRelatedInstances = "120"
            yield 0xFF00, ds
            if dose:
                yield 0xFF00, _dose_series(str(study_uid))
    elif level == "IMAGE":
        asked = identifier.SeriesInstanceUID
        for series_uid in [asked] if isinstance(asked, str) else list(asked):
            if str(series_uid).endswith(".2"):
                ds = Dataset()
                ds.QueryRetrieveLevel = "IMAGE"
                ds.StudyInstanceUID = str(series_uid)[:-2]
                ds.SeriesInstanceUID = str(series_uid)
                ds.SOPInstanceUID = f"{series_uid}.1"
                ds.SOPClassUID = RDSR
                ds.InstanceNumber = "1"
                yield 0xFF00, ds


RDSR = "1.2.840.10008.5.1.4.1.1.88.67"


def _dose_series(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = f"{study_uid}.2"
    ds.Modality = "SR"
    ds.SeriesDescription = "Dose Report"
    ds.SeriesNumber = "2"
    ds.NumberOfSeriesRelatedInstances = "1"
    return ds


def dose_objects(identifier: Dataset, days: int) -> Iterator[int | Dataset]:
    """C-GET of a study's dose series: its one RDSR (the demo's), made on demand."""
    from qrtui.demo.studies import rdsr

    asked = identifier.get("SeriesInstanceUID") or [
        f"{u}.2" for u in _uids(identifier.StudyInstanceUID)
    ]
    series = [s for s in _uids(asked) if s.endswith(".2")]
    yield len(series)
    for series_uid in series:
        study_uid = series_uid[:-2]
        i = int(study_uid[len(ROOT) :])
        ds = rdsr()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = f"{series_uid}.1"
        ds.StudyDate = (date.today() - timedelta(days=i % days)).strftime("%Y%m%d")
        ds.Modality, ds.SeriesDescription = "SR", "Dose Report"
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        yield 0xFF00, ds


def _uids(value: Any) -> list[str]:
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--dose"]
    dose = "--dose" in sys.argv
    n = int(args[0])
    days = int(args[1]) if len(args) > 1 else 30  # spread over the last `days` days
    ae = AE("WIDE_PACS")
    ae.maximum_associations = 16
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    handlers = []
    if dose:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
        ae.add_supported_context(RDSR, scp_role=True, scu_role=True)
        handlers.append((evt.EVT_C_GET, lambda event: dose_objects(event.identifier, days)))

    def on_find(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        yield from answers(n, event.identifier, days, dose)

    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_FIND, on_find), *handlers]
    )
    print(server.server_address[1], flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
