"""The helper process's session of a retrieve's pool, and of a funnel's (qrtui/helpers.py
starts the process; qrtui/helping.py is its side)."""

from __future__ import annotations

import base64
import contextlib
import threading
from collections.abc import Callable, Iterator
from io import BytesIO
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID

from qrtui import clock
from qrtui.config import RemoteNode, StoreNode
from qrtui.dicom.assoc import AssociationFailed, Outcome
from qrtui.dicom.find import FindFailed, FindOutcome, FindSession
from qrtui.dicom.pynetdicom_reading import decode_answer
from qrtui.dicom.retrieve import RetrieveFailed, RetrieveOutcome, RetrieveSession, SubOps
from qrtui.dicom.session import Cancelled
from qrtui.helpers import STOP_SECONDS, Helper, taken, wanted
from qrtui.helping import counts_from_wire, received_from_wire

READY_SECONDS = 0.0  # a pool does not wait for a helper still starting (tests do)


# ------------------------------------------------------------------ the parent's side


def _helper_failed(
    helper: Helper, answer: dict[str, Any], failure: type[Exception], cancel: threading.Event
) -> None:
    """A request the helper ended without an answer: the user's cancel (asked for here) and
    the node's failure are raised as they would be here; anything else stops it."""
    if answer["kind"] == "cancelled" and cancel.is_set():
        raise Cancelled
    if answer["kind"] == "failed":
        raise failure(answer["message"])
    helper.kill()


def usable(helper: Helper) -> bool:
    """Alive, not taken, and started (waiting READY_SECONDS for that)."""
    return helper.alive and not helper.taken and helper.ready.wait(READY_SECONDS)


def _opened_by_helper(
    session: HelperSession | HelperFindSession, reply: str, **message: Any
) -> bool:
    """The helper's association for `session`: True once open; False where the helper is
    taken, still starting, gone or silent (the session opens its own). The node's refusal
    is raised as the session's own would be."""
    helper = session.helper
    if not (usable(helper) and helper.claim()):
        return False
    deadline = clock.monotonic() + 2 * session.node.timeout + STOP_SECONDS
    for answer in helper.ask(timeout=0.1, **message):
        if answer["op"] == reply:
            if answer["ok"]:
                return True
            helper.unclaim()
            detail = str(answer.get("error", "the helper could not associate"))
            raise AssociationFailed(session.peer, Outcome.REJECTED, detail)
        if clock.monotonic() > deadline:
            helper.kill()
            break
    helper.unclaim()
    return False


@contextlib.contextmanager
def helpers(calling_aet: str, remote: RemoteNode, store_node: StoreNode) -> Iterator[list[Helper]]:
    """The run's helpers: those prestarted for it, or started now (their Python starts
    while the run plans); stopped at the end."""
    started = taken(remote, store_node)
    for _ in range(wanted(remote) - len(started)):
        started.append(Helper(calling_aet, remote, store_node))
    try:
        yield [h for h in started if h.alive]
    finally:
        for helper in started:
            helper.stop()


class HelperSession(RetrieveSession):
    """A session of the retrieve's pool whose requests the helper sends. The objects it
    reports go into the parent's Receiver, as if they had arrived here. Where the helper
    is gone, the session works here, as any other (a request cut short is asked again:
    what the helper stored stays stored)."""

    def __init__(self, helper: Helper, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = helper
        self.patient = True  # its own association, if any, replaces the helper's
        self.sent = 0  # requests the helper answered
        self._here = False  # this window, the work is done here
        self._expected_sent: object = None
        self._request = 0

    def __enter__(self) -> HelperSession:
        """The helper's association; where it is still starting, gone or silent, this
        session's own (the pool keeps its size)."""
        store = self.receiver.store if self.receiver is not None else None
        forward_to = list(store.forward_to) if store is not None else []
        if _opened_by_helper(
            self, "opened", op="open", sop_classes=self.sop_classes, forward_to=forward_to
        ):
            return self
        self._here = True
        super().__enter__()
        return self

    def retrieve(
        self,
        identifier: Dataset,
        on_pending: Callable[[SubOps], None] = lambda s: None,
        use_get: bool | None = None,
    ) -> RetrieveOutcome:
        receiver = self.receiver
        get = self.use_get if use_get is None else use_get
        if self._here or not self.helper.alive or receiver is None:
            return self._here_instead(identifier, on_pending, get)
        if self.cancel.is_set():
            raise Cancelled
        if receiver.expected is not self._expected_sent:
            self._expected_sent = expected = receiver.expected
            plain = (
                None
                if expected is None
                else {k: None if v is None else sorted(v) for k, v in expected.items()}
            )
            self.helper.send(op="expected", expected=plain)
        if not get and self.before_move is not None:
            self.before_move()
        self._request += 1
        told_cancel: float | None = None
        deadline = clock.monotonic() + self.node.retrieve_deadline + STOP_SECONDS
        for answer in self.helper.ask(
            timeout=0.1,
            op="retrieve",
            id=self._request,
            identifier=identifier.to_json_dict(),
            get=get,
            probe=sorted(receiver.probe_series),
        ):
            kind = answer["op"]
            if self.cancel.is_set() and told_cancel is None:
                told_cancel = clock.monotonic()
                self.helper.send(op="cancel")
            if told_cancel is not None and clock.monotonic() - told_cancel > STOP_SECONDS:
                self.helper.kill()  # it does not answer: bounded all the same
                raise Cancelled
            if clock.monotonic() > deadline:  # its own deadline passed without a word
                self.helper.kill()
                break
            if kind == "received":
                receiver.took(received_from_wire(answer))
            if answer.get("id") != self._request:
                continue  # waiting, or the end of a request given up on
            if kind == "pending":
                on_pending(counts_from_wire(answer["counts"]))
            elif kind == "done":
                receiver.merge(answer["receiver"])
                self.sent += 1
                return RetrieveOutcome(
                    answer["status"],
                    counts_from_wire(answer["counts"]),
                    tuple(answer["failed_uids"]),
                    cancelled=answer["cancelled"],
                )
            elif kind == "error":
                receiver.merge(answer["receiver"])
                _helper_failed(self.helper, answer, RetrieveFailed, self.cancel)
                break  # a fault of the helper's own: the request is asked here
        if self.cancel.is_set():
            raise Cancelled
        return self._here_instead(identifier, on_pending, get)  # the helper is gone

    def _here_instead(
        self, identifier: Dataset, on_pending: Callable[[SubOps], None], get: bool
    ) -> RetrieveOutcome:
        try:
            return super().retrieve(identifier, on_pending, get)
        except AssociationFailed as exc:  # the node may still count the helper's
            raise self.failure(str(exc)) from None

    def close(self) -> None:
        super().close()
        if self._here:
            return
        if self.cancel.is_set():
            self.helper.send(op="cancel")
        for answer in self.helper.ask(timeout=STOP_SECONDS, op="close"):
            if answer["op"] == "received" and self.receiver is not None:  # stored all the same
                self.receiver.took(received_from_wire(answer))
            if answer["op"] in ("closed", "waiting"):
                break
        self.helper.unclaim()


class HelperFindSession(FindSession):
    """A session of the funnel's pool whose C-FINDs the helper sends; their answers come back
    as received and are read here, so every check of them is the parent's. Where the helper
    is taken, still starting, gone, silent or faulty, the session works here."""

    def __init__(
        self, helper: Helper, calling_aet: str, node: RemoteNode, cancel: threading.Event
    ) -> None:
        super().__init__(calling_aet, node, cancel, patient=False)
        self.helper = helper
        self.sent = 0  # requests the helper answered
        self._here = True  # until the helper's association is open
        self._request = 0

    def __enter__(self) -> HelperFindSession:
        if _opened_by_helper(self, "find_opened", op="find_open"):
            self._here = False
            return self
        super().__enter__()
        return self

    def find(self, identifier: Dataset, limit: int | None = None) -> FindOutcome:
        if self._here or not self.helper.alive:
            return self._here_instead(identifier, limit)
        if self.cancel.is_set():
            raise Cancelled
        self._request += 1
        told_cancel: float | None = None
        answers, moved = -1, clock.monotonic()
        patience = 2 * (self.node.timeout + self.node.dimse_timeout) + STOP_SECONDS  # one re-open
        for answer in self.helper.ask(
            timeout=0.1, op="find", id=self._request, identifier=identifier.to_json_dict(),
            limit=limit,
        ):  # fmt: skip
            if self.cancel.is_set() and told_cancel is None:
                told_cancel = clock.monotonic()
                self.helper.send(op="cancel", id=self._request)
            now = clock.monotonic()
            if told_cancel is not None and now - told_cancel > STOP_SECONDS:
                self.helper.kill()  # it does not answer: bounded all the same
                raise Cancelled
            kind = answer["op"]
            mine = answer.get("id") == self._request
            if mine and kind == "finding" and answer["answers"] != answers:
                answers, moved = answer["answers"], now
            if now - moved > patience:  # no answer came for longer than the node may take
                self.helper.kill()
                break
            if not mine:
                continue  # waiting, or the end of a request given up on
            self.requests += answer.get("requests", 0)  # sent again after a re-open included
            if kind == "found":
                self.sent += 1
                return _read(answer)
            elif kind == "error":
                _helper_failed(self.helper, answer, FindFailed, self.cancel)
                break  # a fault of the helper's own: the query is asked here
        if self.cancel.is_set():
            raise Cancelled
        return self._here_instead(identifier, limit)  # the helper is gone

    def _here_instead(self, identifier: Dataset, limit: int | None) -> FindOutcome:
        if not self._here:  # the helper's association may still count: a patient one
            self._here, self.patient = True, True
            self.helper.unclaim()
        try:
            return super().find(identifier, limit)
        except AssociationFailed as exc:
            raise self.failure(str(exc)) from None

    def close(self) -> None:
        super().close()
        if self._here:
            return
        self._here = True
        abort = self.cancel.is_set()  # as this session's own association would be
        for answer in self.helper.ask(timeout=STOP_SECONDS, op="find_close", abort=abort):
            if answer["op"] in ("find_closed", "waiting"):
                break
        self.helper.unclaim()


def _read(answer: dict[str, Any]) -> FindOutcome:
    """The helper's answers, decoded as this process would have decoded them."""
    syntax = UID(answer["syntax"])
    outcome = FindOutcome(status=answer["status"], undecodable=answer["undecodable"])
    for item in answer["raw"]:
        found = decode_answer(BytesIO(base64.b64decode(item)), syntax)
        if found is None:
            outcome.undecodable += 1
        else:
            outcome.matches.append(found)
    return outcome
