"""Cancelling a retrieve, against the fake PACS: real servers cannot be made to send slowly
on demand, nor to ignore C-CANCEL."""

from __future__ import annotations

import threading

import pytest

from qrtui.config import RemoteNode
from qrtui.dicom.pool import SessionPool
from qrtui.dicom.retrieve import RetrieveSession, series_identifier
from qrtui.dicom.session import LinkedCancel, Session
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
        # a node that honours C-CANCEL gets all the time it needs, so that a busy machine
        # cannot turn this case into the abort path; one that ignores it, half a second
        grace = 60.0 if honour_cancel else 0.5
        with RetrieveSession(
            "QRTUI", remote, destination=node.aet, cancel=cancel, cancel_grace=grace
        ) as session:
            summary = Retriever(session, node, receiver=receiver, store=store, emit=emit).run(
                [plan]
            )
        assert fake.handler_ended.wait(10), "the fake PACS is still sending"
    finally:
        fake.stop()
    assert fake.cancel_seen.is_set(), "the node was sent a C-CANCEL"
    assert fake.answered_cancel.is_set() is honour_cancel, "ended by its answer, or by abort"
    assert summary.cancelled and summary.studies_done == 0
    assert 2 <= summary.received < 200
    stored = list(store.instances())
    assert len(stored) == len(receiver.received)  # every arrival complete and indexed
    assert not any((node.directory / ".incoming").iterdir())


def test_a_failure_on_one_association_cancels_the_requests_in_flight(listening_store):
    """One study fails while another is being moved on a second association: the move is
    cancelled rather than waited out, and the caller's cancel event is left as it was."""
    node, _, _ = listening_store
    fake = FakePacs(node.port, honour_cancel=True).start()
    remote = RemoteNode("fake", "FAKE", "127.0.0.1", fake.port, timeout=5, dimse_timeout=30)
    cancel = threading.Event()

    def session() -> RetrieveSession:
        return RetrieveSession("QRTUI", remote, destination=node.aet, cancel=cancel)

    def work(session: RetrieveSession, item: str) -> object:
        if item == "fail":
            assert fake.move_started.wait(10)
            raise RuntimeError("this study failed")
        return session.retrieve(series_identifier(fake.study_uid, fake.series_uid))

    try:
        with session() as first:
            pool = SessionPool(first, session, 2)
            with pytest.raises(RuntimeError, match="this study failed"):
                list(pool.map(work, ["fail", "move"]))
            pool.close()
        assert fake.handler_ended.wait(10), "the fake PACS is still sending"
    finally:
        fake.stop()
    assert fake.cancel_seen.is_set(), "the move in flight was sent a C-CANCEL"
    assert not cancel.is_set()


class _Closing(Session):
    """A session that only records its close; all of them meet at a barrier, which only
    concurrent closes can pass."""

    def __init__(self, barrier: threading.Barrier, cancel: threading.Event, fail: bool) -> None:
        super().__init__("QRTUI", RemoteNode("fake", "FAKE", "127.0.0.1", 1), cancel)
        self.barrier, self.fail = barrier, fail
        self.closed_cancelled: bool | None = None

    def __enter__(self) -> _Closing:
        return self

    def close(self) -> None:
        self.closed_cancelled = self.cancel.is_set()
        self.barrier.wait()
        if self.fail:
            raise RuntimeError("release failed")


@pytest.mark.parametrize("interrupted", [False, True])
def test_a_pool_closes_its_sessions_at_once_and_says_what_failed(interrupted):
    cancel = threading.Event()
    barrier = threading.Barrier(3, timeout=30)
    sessions = [_Closing(barrier, cancel, fail=n == 1) for n in range(3)]
    made = iter(sessions[1:])
    pool = SessionPool(sessions[0], lambda: next(made), 3)
    pool._take(), pool._take(), pool._take()  # the first, then two more opened
    with pytest.raises(RuntimeError, match="release failed"):
        pool.close(interrupted=interrupted)
    assert [s.closed_cancelled for s in sessions] == [interrupted] * 3  # every one closed


def test_a_pools_own_cancel_follows_the_users_and_never_sets_it():
    """Set by the pool (a failed request), it leaves the user's event alone; set by the
    user, it is set, and a wait on it ends."""
    users = threading.Event()
    own = LinkedCancel(users)
    own.set()
    assert own.is_set() and not users.is_set()
    own.clear()
    assert not own.is_set() and not own.wait(0)
    waited: list[bool] = []
    waiter = threading.Thread(target=lambda: waited.append(own.wait()))
    waiter.start()
    users.set()
    waiter.join(30)
    assert waited == [True] and own.is_set()
