"""A delivery pass: every object the ledger holds queued, to each destination, in pages of
bounded size; each answer settled in the ledger as it comes."""

from __future__ import annotations

import threading
from collections.abc import Callable

from qrtui.config import Config, ConfigError
from qrtui.config.destinations import Destination
from qrtui.dicom.assoc import Peer
from qrtui.dicom.send import Answer, Outgoing, send_files
from qrtui.dicom.tls import client_context
from qrtui.events import DeliveryProgress, Emit
from qrtui.forward.files import to_command, to_folder
from qrtui.forward.report import DeliveryReport, DestinationReport, judge
from qrtui.store import Store
from qrtui.store.ledger import QUEUED, REFUSED, SENT, Handed, Parcel

PAGE = 2000  # objects read from the ledger at a time


def _ignore(event: object) -> None:
    pass


def deliver(
    config: Config,
    store: Store,
    *,
    emit: Emit = _ignore,
    cancel: threading.Event | None = None,
    only: tuple[str, ...] | None = None,
) -> DeliveryReport:
    """Deliver what is queued, destination by destination (those of `only`, else every one
    with queued objects). Rows for a destination no longer configured stay queued."""
    cancel = cancel or threading.Event()
    ledger = store.ledger
    names = ledger.destinations_waiting() if only is None else list(only)
    report = DeliveryReport()
    for name in names:
        part = DestinationReport(name)
        report.destinations.append(part)
        try:
            destination = config.destination(name)
        except ConfigError:  # kept queued: put it back in the configuration to deliver them
            part.stopped = "no longer in the configuration: not delivered, not counted"
            part.configured = False
        else:
            _pass(config, store, destination, part, emit, cancel)
        counts = ledger.counts().get(name, {})
        part.queued = counts.get(QUEUED, 0)
        part.reasons = {**ledger.reasons(name, QUEUED)} if part.queued else {}
        if part.refused:
            part.reasons.update(ledger.reasons(name, REFUSED))
        if cancel.is_set():
            break
    return report


def _pass(
    config: Config,
    store: Store,
    destination: Destination,
    part: DestinationReport,
    emit: Emit,
    cancel: threading.Event,
) -> None:
    ledger = store.ledger
    mutex = threading.Lock()
    left = ledger.counts().get(destination.name, {}).get(QUEUED, 0)

    def settle(handed: Handed) -> None:
        nonlocal left
        ledger.settle([handed])  # one by one: a crash repeats only what was in flight
        with mutex:
            left -= 1
            if handed.state == SENT:
                part.sent += 1
                part.warnings += handed.reason.startswith("warning")
            elif handed.state == REFUSED:
                part.refused += 1
            emit(DeliveryProgress(destination.name, part.sent, part.refused, left))

    after = 0
    while not cancel.is_set():
        page = ledger.pending(destination.name, after, PAGE)
        if not page:
            return
        after = page[-1].row
        if destination.kind == "dicom":
            stopped = _send_page(config, destination, page, settle, cancel)
            if stopped:
                part.stopped = stopped
                if stopped != "cancelled":
                    ledger.hold_all(destination.name, stopped)
                return
            continue
        for parcel in page:
            if cancel.is_set():
                return
            if destination.kind == "folder":
                settle(to_folder(destination, parcel))
            else:
                settle(to_command(destination, parcel, parcel.sop_class_uid))


def _send_page(
    config: Config,
    destination: Destination,
    page: list[Parcel],
    settle: Callable[[Handed], None],
    cancel: threading.Event,
) -> str:
    assert destination.aet is not None and destination.host is not None
    try:
        tls = client_context(destination)
    except ConfigError as exc:
        return str(exc)
    peer = Peer(destination.aet, destination.host, destination.port, destination.timeout,
                destination.dimse_timeout, tls)  # fmt: skip
    by_key = {parcel.row: parcel for parcel in page}

    def hand(answer: Answer) -> None:
        state, reason = judge(answer.status, answer.reason, answer.never)
        assert isinstance(answer.key, int)
        settle(Handed(by_key[answer.key], state, answer.status, reason))

    return send_files(
        config.client.aet, peer, [Outgoing(p.row, p.path) for p in page], hand=hand,
        associations=destination.max_associations, cancel=cancel,
    )  # fmt: skip
