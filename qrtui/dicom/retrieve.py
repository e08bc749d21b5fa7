"""C-MOVE and C-GET requests on one association, with sub-operation progress and C-CANCEL."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import build_role, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from qrtui.config import RemoteNode
from qrtui.dicom.assoc import abort_now, associate, associate_patiently, make_ae
from qrtui.dicom.find import number
from qrtui.dicom.pynetdicom_fixes import INCOMING_ATTRIBUTE
from qrtui.dicom.session import Cancelled, Lost, Session, SessionFailed
from qrtui.dicom.storescp import Receiver
from qrtui.politeness import before_request

# A C-GET association offers one context per SOP class; the PDU allows 128 in all.
MAX_GET_STORAGE_CONTEXTS = 120
# Uncompressed only: an acceptor picks one syntax per context before it knows the objects,
# and an offered lossy syntax would let it transcode images lossily.
GET_TRANSFER_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]

STATUS_MOVE_DESTINATION_UNKNOWN = 0xA801


class RetrieveFailed(SessionFailed):
    """The association was lost twice during a retrieve; worded for the user."""


@dataclass(frozen=True)
class SubOps:
    """Sub-operation counts of a C-MOVE/C-GET response; None where the PACS left one out."""

    remaining: int | None = None
    completed: int | None = None
    failed: int | None = None
    warning: int | None = None


@dataclass(frozen=True)
class RetrieveOutcome:
    status: int
    counts: SubOps
    failed_uids: tuple[str, ...] = ()
    cancelled: bool = False

    @property
    def success(self) -> bool:
        return self.status == 0x0000

    def problem(self) -> str:
        return "" if self.success else f"0x{self.status:04X} ({retrieve_status_text(self.status)})"


def retrieve_status_text(status: int) -> str:
    known = {
        0x0000: "success",
        0xA701: "refused: out of resources, cannot count the matches",
        0xA702: "refused: out of resources, cannot perform sub-operations",
        0xA801: "move destination unknown",
        0xA900: "identifier does not match SOP class",
        0xAA00: "none of the frames requested were found",
        0xB000: "sub-operations complete, one or more failures or warnings",
        0xFE00: "cancelled",
    }
    if status in known:
        return known[status]
    if status & 0xF000 == 0xC000:
        return "unable to process"
    if status & 0xF000 == 0xB000:
        return "warning"
    return "failure"


def sub_ops(status: Dataset) -> SubOps:
    return SubOps(
        number(status, "NumberOfRemainingSuboperations"),
        number(status, "NumberOfCompletedSuboperations"),
        number(status, "NumberOfFailedSuboperations"),
        number(status, "NumberOfWarningSuboperations"),
    )


def study_identifier(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    return ds


def series_identifier(study_uid: str, series_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    return ds


def instance_identifier(study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
    ds = series_identifier(study_uid, series_uid)
    ds.QueryRetrieveLevel = "IMAGE"
    ds.SOPInstanceUID = sop_uid
    return ds


class RetrieveSession(Session):
    """Sequential C-MOVEs (to `destination`) or C-GETs (into `receiver`) on one association,
    re-opened once when the peer drops it."""

    failure = RetrieveFailed

    def __init__(
        self,
        calling_aet: str,
        node: RemoteNode,
        *,
        destination: str | None = None,
        receiver: Receiver | None = None,
        sop_classes: Iterable[str] = (),
        cancel: threading.Event | None = None,
        cancel_grace: float = 5.0,
        before_move: Callable[[], None] | None = None,
        patient: bool = False,
    ) -> None:
        """node.retrieve: "move" (to `destination`), "get" (into `receiver`), or "auto" (both
        offered on one association; each request says which it uses). `before_move` is
        called before each C-MOVE (the store's listener started, where it is not yet). A
        `patient` session asks again after a transient rejection: the first of a pool, as
        the node may still count the association the funnel just released."""
        super().__init__(calling_aet, node, cancel)
        self.offers_get = node.retrieve in ("get", "auto") and receiver is not None
        self.offers_move = node.retrieve in ("move", "auto") and bool(destination)
        if node.retrieve == "get" and receiver is None:
            raise ValueError("C-GET needs a receiver")
        if not (self.offers_get or self.offers_move):
            raise ValueError("C-MOVE needs a destination")
        self.use_get = self.offers_get  # the default of requests that do not say
        self.destination = destination or ""
        self.receiver = receiver
        self.sop_classes = list(dict.fromkeys(sop_classes))[:MAX_GET_STORAGE_CONTEXTS]
        self.cancel_grace = cancel_grace
        self.before_move = before_move
        self.patient = patient
        self._msg_id = 0
        self._deadline_hit = False
        self.get_accepted = False  # whether the node took the C-GET model on this association

    @property
    def model(self) -> str:
        return _model(self.use_get)

    def _associate(self) -> Association:
        ae = make_ae(self.calling_aet, self.peer)
        handlers: list[Any] = []
        roles = []
        if self.offers_get:
            assert self.receiver is not None
            ae.add_requested_context(_model(True))
            for sop_class in self.sop_classes:
                ae.add_requested_context(sop_class, GET_TRANSFER_SYNTAXES)
                roles.append(build_role(sop_class, scp_role=True))
            handlers.append((evt.EVT_C_STORE, self.receiver.handle_store))
        if self.offers_move:
            ae.add_requested_context(_model(False))
        connect = associate_patiently if self.patient else associate
        assoc = connect(ae, self.peer, ext_neg=roles, evt_handlers=handlers)
        if self.receiver is not None:  # C-STOREs of a C-GET: written where the store renames
            setattr(assoc, INCOMING_ATTRIBUTE, self.receiver.store.incoming)
        accepted = {str(c.abstract_syntax) for c in assoc.accepted_contexts}
        self.get_accepted = _model(True) in accepted
        if not self.offers_move and not self.get_accepted:
            assoc.abort()
            raise self.failure(f"{self.peer.aet}@{self.peer.host}: the node refused C-GET")
        return assoc

    def retrieve(
        self,
        identifier: Dataset,
        on_pending: Callable[[SubOps], None] = lambda s: None,
        use_get: bool | None = None,
    ) -> RetrieveOutcome:
        """One C-GET or C-MOVE (`use_get`; default as the session was made)."""
        get = self.use_get if use_get is None else use_get
        return self._reopening(lambda: self._retrieve_once(identifier, on_pending, get))

    def _retrieve_once(
        self, identifier: Dataset, on_pending: Callable[[SubOps], None], get: bool
    ) -> RetrieveOutcome:
        before_request(self.node, self.cancel)  # the node's rate, if it sets one
        if self.cancel.is_set():
            raise Cancelled
        assoc = self._open()
        if get and not self.get_accepted:
            raise self.failure(f"{self.peer.aet}@{self.peer.host}: the node refused C-GET")
        self._msg_id = self._msg_id % 65535 + 1
        msg_id = self._msg_id
        model = _model(get)
        if get:
            responses = assoc.send_c_get(identifier, model, msg_id=msg_id)
        else:
            if self.before_move is not None:
                self.before_move()
            responses = assoc.send_c_move(identifier, self.destination, model, msg_id=msg_id)
        done = threading.Event()
        watcher = threading.Thread(
            target=self._watch_cancel, args=(assoc, msg_id, model, done), daemon=True
        )
        watcher.start()
        try:
            for status, reply in responses:
                if not status or "Status" not in status:
                    raise Lost("the association was lost or timed out during the retrieve")
                code = int(status.Status)
                counts = sub_ops(status)
                if code in (0xFF00, 0xFF01):
                    on_pending(counts)
                    continue
                failed = _failed_uids(reply)
                if code == 0xFE00 or self.cancel.is_set():
                    return RetrieveOutcome(code, counts, failed, cancelled=True)
                return RetrieveOutcome(code, counts, failed)
            raise Lost("the association ended without a final status")
        except Lost:
            if self._deadline_hit:  # the node is not stuck by accident: asking again won't help
                raise self.failure(
                    f"{self.peer.aet}@{self.peer.host}: no final answer within "
                    f"{self.node.retrieve_deadline:g} s (retrieve_deadline); aborted"
                ) from None
            raise
        finally:
            done.set()

    def _watch_cancel(
        self, assoc: Association, msg_id: int, model: str, done: threading.Event
    ) -> None:
        """On cancel: C-CANCEL, then abort if the node has not stopped within the grace.
        Past the request's deadline, which Pending responses do not extend: abort."""
        deadline = time.monotonic() + self.node.retrieve_deadline
        self._deadline_hit = False
        while not done.wait(0.1):
            if time.monotonic() > deadline:
                self._deadline_hit = True
                abort_now(assoc)
                return
            if self.cancel.is_set():
                with contextlib.suppress(Exception):
                    assoc.send_c_cancel(msg_id, query_model=model)
                if not done.wait(self.cancel_grace):
                    abort_now(assoc)
                return


def _model(get: bool) -> str:
    if get:
        return str(StudyRootQueryRetrieveInformationModelGet)
    return str(StudyRootQueryRetrieveInformationModelMove)


def _failed_uids(reply: Dataset | None) -> tuple[str, ...]:
    if reply is None:
        return ()
    try:
        value = reply.get("FailedSOPInstanceUIDList")
    except Exception:
        return ()
    if not value:
        return ()
    if isinstance(value, str):
        return tuple(v for v in value.split("\\") if v)
    return tuple(str(v) for v in value if str(v))
