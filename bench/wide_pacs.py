"""A PACS with N one-series CT studies, for the wide-query memory measurement. Run as a
process: prints its port, serves until stdin closes."""

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


def answers(n: int, identifier: Dataset) -> Iterator[tuple[int, Dataset]]:
    level = str(identifier.QueryRetrieveLevel)
    if level == "STUDY":
        for i in range(n):
            ds = Dataset()
            ds.QueryRetrieveLevel = "STUDY"
            ds.StudyInstanceUID = f"{ROOT}{i}"
            ds.StudyDate = (date.today() - timedelta(days=i % 30)).strftime("%Y%m%d")
            ds.StudyTime = "101500"
            ds.StudyDescription = f"CT CHEST WITH A DESCRIPTION OF SOME LENGTH {i}"
            ds.ModalitiesInStudy = ["CT"]
            ds.StationName = "CT_SCANNER_1"
            ds.NumberOfStudyRelatedSeries = "1"
            yield 0xFF00, ds
    elif level == "SERIES":
        ds = Dataset()
        ds.QueryRetrieveLevel = "SERIES"
        ds.StudyInstanceUID = str(identifier.StudyInstanceUID)
        ds.SeriesInstanceUID = f"{identifier.StudyInstanceUID}.1"
        ds.Modality = "CT"
        ds.SeriesDescription = "AXIAL 5MM"
        ds.SeriesNumber = "1"
        ds.NumberOfSeriesRelatedInstances = "120"
        yield 0xFF00, ds


def main() -> None:
    n = int(sys.argv[1])
    ae = AE("WIDE_PACS")
    ae.maximum_associations = 16
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)

    def on_find(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        yield from answers(n, event.identifier)

    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_FIND, on_find)]
    )
    print(server.server_address[1], flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
