"""Cancelling a retrieve, against a pynetdicom fake PACS: real servers cannot be made to send
slowly on demand, nor to ignore C-CANCEL."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelMove,
)

from qrtui.config import RemoteNode
from qrtui.dicom.retrieve import RetrieveSession
from qrtui.retrieve import Retriever
from qrtui.selection import Decision, Pick, Series, Study, StudyPlan
from tests.servers import free_port

RDSR_CLASS = "1.2.840.10008.5.1.4.1.1.88.67"
STUDY, SERIES = generate_uid(), generate_uid()


def small_sr() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = RDSR_CLASS
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY, SERIES
    ds.Modality = "SR"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


@dataclass
class FakePacs:
    port: int
    cancel_seen: threading.Event
    handler_ended: threading.Event


def start_fake_pacs(store_port: int, honour_cancel: bool) -> tuple[FakePacs, object]:
    cancel_seen, ended = threading.Event(), threading.Event()
    slow = threading.Event()  # never set: waiting on it paces the sub-operations

    def on_move(event):
        try:
            yield "127.0.0.1", store_port
            yield 200
            for _ in range(200):
                if event.is_cancelled:
                    cancel_seen.set()
                    if honour_cancel:
                        yield 0xFE00, None
                        return
                if not event.assoc.is_established:
                    return
                yield 0xFF00, small_sr()
                slow.wait(0.1)
        finally:
            ended.set()

    ae = AE(ae_title="FAKE")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelMove)
    ae.add_requested_context(RDSR_CLASS, ExplicitVRLittleEndian)
    port = free_port()
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_MOVE, on_move)]
    )
    return FakePacs(port, cancel_seen, ended), server


@pytest.mark.parametrize("honour_cancel", [True, False])
def test_cancel_sends_c_cancel_then_aborts_a_node_that_ignores_it(listening_store, honour_cancel):
    node, store, receiver = listening_store
    fake, server = start_fake_pacs(node.port, honour_cancel)
    cancel = threading.Event()
    remote = RemoteNode("fake", "FAKE", "127.0.0.1", fake.port, timeout=5, dimse_timeout=30)
    plan = StudyPlan(
        Study(STUDY), "CT", Decision.RETRIEVE, "RDSR", picks=(Pick(Series(SERIES, "SR")),)
    )
    events = []

    def emit(event):
        events.append(event)
        if getattr(event, "completed", 0) >= 2:
            cancel.set()  # the user presses cancel once two objects have arrived

    try:
        with RetrieveSession(
            "QRTUI", remote, destination=node.aet, cancel=cancel, cancel_grace=0.5
        ) as session:
            summary = Retriever(session, node, receiver=receiver, store=store, emit=emit).run(
                [plan]
            )
        assert fake.handler_ended.wait(10), "the fake PACS is still sending"
    finally:
        server.shutdown()
    assert fake.cancel_seen.is_set(), "the node was sent a C-CANCEL"
    assert summary.cancelled and summary.studies_done == 0
    assert 2 <= summary.received < 200
    stored = list(store.instances())
    assert len(stored) == len(receiver.received)  # every arrival complete and indexed
    assert not any((node.directory / ".incoming").iterdir())
