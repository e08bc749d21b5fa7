"""A pynetdicom fake PACS for what real servers will not do on demand: send slowly, and
honour or ignore C-CANCEL. It serves one CT study whose SR series holds `count` RDSRs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

from tests.servers import free_port

RDSR_CLASS = "1.2.840.10008.5.1.4.1.1.88.67"


class FakePacs:
    def __init__(self, destination_port: int, *, honour_cancel: bool, count: int = 200) -> None:
        self.destination_port = destination_port
        self.honour_cancel = honour_cancel
        self.study_uid, self.series_uid = generate_uid(), generate_uid()
        self.image_series_uid = generate_uid()
        self.sop_uids = [generate_uid() for _ in range(count)]
        self.move_started = threading.Event()
        self.first_stored = threading.Event()  # the first C-STORE was answered: it is stored
        self.answered_cancel = threading.Event()  # honoured a C-CANCEL with 0xFE00
        self.cancel_seen = threading.Event()
        self.handler_ended = threading.Event()
        self._pace = threading.Event()  # never set: waiting on it paces the sub-operations
        self.port = 0
        self._server: Any = None

    def start(self) -> FakePacs:
        ae = AE(ae_title="FAKE")
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelMove)
        ae.add_requested_context(RDSR_CLASS, ExplicitVRLittleEndian)
        self.port = free_port()
        self._server = ae.start_server(
            ("127.0.0.1", self.port),
            block=False,
            evt_handlers=[(evt.EVT_C_FIND, self._on_find), (evt.EVT_C_MOVE, self._on_move)],
        )
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def rdsr(self, sop_uid: str) -> Dataset:
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = RDSR_CLASS, sop_uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID = self.study_uid, self.series_uid
        ds.Modality = "SR"
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        return ds

    def _on_find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        level = event.identifier.QueryRetrieveLevel
        answers = []
        if level == "STUDY":
            asked = event.identifier.get("ModalitiesInStudy", "")
            if asked in ("", "CT", "SR"):
                ds = Dataset()
                ds.StudyInstanceUID, ds.StudyDate = self.study_uid, "20261127"
                ds.StudyDescription = "CT FAKE"
                ds.ModalitiesInStudy = ["CT", "SR"]
                answers.append(ds)
        elif level == "SERIES":
            for number, (uid, modality) in enumerate(
                ((self.image_series_uid, "CT"), (self.series_uid, "SR")), 1
            ):
                ds = Dataset()
                ds.StudyInstanceUID, ds.SeriesInstanceUID = self.study_uid, uid
                ds.Modality, ds.SeriesNumber = modality, number
                answers.append(ds)
        elif level == "IMAGE" and event.identifier.SeriesInstanceUID == self.series_uid:
            for number, uid in enumerate(self.sop_uids, 1):
                ds = Dataset()
                ds.SOPInstanceUID, ds.SOPClassUID, ds.InstanceNumber = uid, RDSR_CLASS, number
                answers.append(ds)
        for ds in answers:
            ds.QueryRetrieveLevel = level
            yield 0xFF00, ds

    def _on_move(self, event: Any) -> Iterator[Any]:
        try:
            yield "127.0.0.1", self.destination_port
            yield len(self.sop_uids)
            self.move_started.set()
            for uid in self.sop_uids:
                if event.is_cancelled:
                    self.cancel_seen.set()
                    if self.honour_cancel:
                        self.answered_cancel.set()
                        yield 0xFE00, None
                        return
                if not event.assoc.is_established:
                    return
                yield 0xFF00, self.rdsr(uid)
                self.first_stored.set()  # resumed once the sub-operation's answer came
                self._pace.wait(0.1)
        finally:
            self.handler_ended.set()
