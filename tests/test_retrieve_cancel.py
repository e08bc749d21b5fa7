"""Cancelling a retrieve, against the fake PACS: real servers cannot be made to send slowly
on demand, nor to ignore C-CANCEL."""

from __future__ import annotations

import threading

import pytest

from qrtui.config import RemoteNode
from qrtui.dicom.retrieve import RetrieveSession
from qrtui.retrieve import Retriever
from qrtui.selection import Decision, Pick, Series, Study, StudyPlan
from tests.fake_pacs import FakePacs


@pytest.mark.parametrize("honour_cancel", [True, False])
def test_cancel_sends_c_cancel_then_aborts_a_node_that_ignores_it(listening_store, honour_cancel):
    node, store, receiver = listening_store
    fake = FakePacs(node.port, honour_cancel=honour_cancel).start()
    cancel = threading.Event()
    remote = RemoteNode("fake", "FAKE", "127.0.0.1", fake.port, timeout=5, dimse_timeout=30)
    plan = StudyPlan(
        Study(fake.study_uid), "CT", Decision.RETRIEVE, "RDSR",
        picks=(Pick(Series(fake.series_uid, "SR")),),
    )  # fmt: skip

    def emit(event):
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
        fake.stop()
    assert fake.cancel_seen.is_set(), "the node was sent a C-CANCEL"
    assert summary.cancelled and summary.studies_done == 0
    assert 2 <= summary.received < 200
    stored = list(store.instances())
    assert len(stored) == len(receiver.received)  # every arrival complete and indexed
    assert not any((node.directory / ".incoming").iterdir())
