"""A PACS with N one-series CT studies over the last DAYS days (default 30), for the
wide-query memory measurement. Run as a process: `wide_pacs.py N [DAYS]`; prints its port,
serves until stdin closes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
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


def answers(n: int, identifier: Dataset, days: int = 30) -> Iterator[tuple[int, Dataset]]:
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
            ds.ModalitiesInStudy = ["CT"]
            ds.StationName = "CT_SCANNER_1"
            ds.NumberOfStudyRelatedSeries = "1"
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


def main() -> None:
    n = int(sys.argv[1])
    days = int(sys.argv[2]) if len(sys.argv) > 2 else 30  # spread over the last `days` days
    ae = AE("WIDE_PACS")
    ae.maximum_associations = 16
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)

    def on_find(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        yield from answers(n, event.identifier, days)

    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_FIND, on_find)]
    )
    print(server.server_address[1], flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
