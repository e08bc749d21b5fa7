"""Opening associations with timeouts set, and telling the user plainly why one failed."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.association import Association


class Outcome(StrEnum):
    ANSWERED = "answered"
    READY = "ready"  # an embedded store that can listen and write
    REJECTED = "rejected"
    TIMED_OUT = "timed out"
    REFUSED = "connection refused"
    UNREACHABLE = "unreachable"
    ABORTED = "aborted"
    TLS_FAILED = "TLS failed"


@dataclass(frozen=True)
class Peer:
    """Where to connect and how long to wait."""

    aet: str
    host: str
    port: int
    timeout: float = 5.0
    dimse_timeout: float = 60.0
    tls: ssl.SSLContext | None = None


class AssociationFailed(Exception):
    def __init__(self, peer: Peer, outcome: Outcome, detail: str, transient: bool = False) -> None:
        super().__init__(f"{peer.aet}@{peer.host}:{peer.port}: {outcome}: {detail}")
        self.peer = peer
        self.outcome = outcome
        self.detail = detail
        self.transient = transient  # rejected for now (a limit): worth asking again later


# A transient rejection ("local limit exceeded") may count an association of ours that is
# still closing: asked again after these pauses.
TRANSIENT_PAUSES = (0.2, 0.5, 1.0)


def associate_patiently(
    ae: AE,
    peer: Peer,
    *,
    ext_neg: Sequence[Any] | None = None,
    evt_handlers: Sequence[Any] = (),
) -> Association:
    """associate(), asking again after a transient rejection."""
    for pause in (*TRANSIENT_PAUSES, None):
        try:
            return associate(ae, peer, ext_neg=ext_neg, evt_handlers=evt_handlers)
        except AssociationFailed as failed:
            if not failed.transient or pause is None:
                raise
            time.sleep(pause)
    raise AssertionError("unreachable")


def tune_socket(event: Any) -> None:
    """No Nagle wait for small DIMSE messages; and a receive timeout, which pynetdicom
    clears after connecting, so a peer that stalls mid-PDU cannot block a read forever."""
    assoc = event.assoc
    sock = assoc.dul.socket.socket
    if sock is None:
        return
    # Until the association is accepted, a read waits no longer than the ACSE timeout.
    wait = assoc.acse_timeout if assoc.is_requestor else assoc.network_timeout
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if wait is not None:
            sock.settimeout(wait)


# The largest PDU we take. pynetdicom's default, 16 kB, cut a 2 MB image into 128 PDUs, each
# handled in Python; peers send up to what we announce (DCMTK up to 128 kB).
RECEIVE_PDU_BYTES = 131072


def make_ae(calling_aet: str, peer: Peer) -> AE:
    ae = AE(ae_title=calling_aet)
    ae.connection_timeout = peer.timeout
    ae.acse_timeout = peer.timeout
    ae.dimse_timeout = peer.dimse_timeout
    ae.network_timeout = max(peer.dimse_timeout, peer.timeout)
    return ae


def associate(
    ae: AE,
    peer: Peer,
    *,
    ext_neg: Sequence[Any] | None = None,
    evt_handlers: Sequence[Any] = (),
) -> Association:
    """Associate or raise AssociationFailed with the reason a person can act on."""
    connected = False

    def on_open(event: Any) -> None:
        nonlocal connected
        connected = True
        tune_socket(event)

    started = time.monotonic()
    try:
        assoc = ae.associate(
            peer.host,
            peer.port,
            ae_title=peer.aet,
            ext_neg=list(ext_neg) if ext_neg else None,
            evt_handlers=[(evt.EVT_CONN_OPEN, on_open), *evt_handlers],
            tls_args=(peer.tls, peer.host) if peer.tls else None,
            max_pdu=RECEIVE_PDU_BYTES,
        )
    except socket.gaierror as exc:
        raise AssociationFailed(
            peer, Outcome.UNREACHABLE, f"unknown host {peer.host!r} ({exc.strerror})"
        ) from None
    if assoc.is_established:
        sock = assoc.dul.socket.socket if assoc.dul.socket else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(ae.network_timeout)
        return assoc
    elapsed = time.monotonic() - started
    if assoc.is_rejected:
        primitive = assoc.acceptor.primitive
        reason = (
            f"{primitive.result_str}, {primitive.source_str}: {primitive.reason_str}"
            if primitive
            else "no reason given"
        )
        transient = primitive is not None and primitive.result == 0x02
        raise AssociationFailed(peer, Outcome.REJECTED, reason, transient)
    if not connected:
        outcome, detail = _why_no_connection(peer, elapsed)
        raise AssociationFailed(peer, outcome, detail)
    if elapsed >= peer.timeout * 0.9:
        raise AssociationFailed(
            peer, Outcome.TIMED_OUT, f"no association answer within {peer.timeout:g} s"
        )
    raise AssociationFailed(peer, Outcome.ABORTED, "the peer closed the association request")


def _why_no_connection(peer: Peer, elapsed: float) -> tuple[Outcome, str]:
    if elapsed >= peer.timeout * 0.9:
        return Outcome.TIMED_OUT, f"no TCP connection within {peer.timeout:g} s"
    # pynetdicom does not keep the socket error: ask the network once more, briefly.
    try:
        with socket.create_connection((peer.host, peer.port), timeout=peer.timeout - elapsed) as s:
            if peer.tls:
                peer.tls.wrap_socket(s, server_hostname=peer.host).close()
            return Outcome.ABORTED, "connection closed before the association request"
    except ssl.SSLError as exc:
        return Outcome.TLS_FAILED, exc.reason or str(exc)
    except ssl.CertificateError as exc:
        return Outcome.TLS_FAILED, str(exc)
    except ConnectionRefusedError:
        return Outcome.REFUSED, f"nothing listens on port {peer.port}"
    except TimeoutError:
        return Outcome.TIMED_OUT, f"no TCP connection within {peer.timeout:g} s"
    except socket.gaierror as exc:
        return Outcome.UNREACHABLE, f"unknown host {peer.host!r} ({exc.strerror})"
    except OSError as exc:
        return Outcome.UNREACHABLE, exc.strerror or str(exc)


def release(assoc: Association) -> None:
    if assoc.is_established:
        assoc.release()
    if not assoc.is_released and not assoc.is_aborted:
        assoc.abort()


def abort_now(assoc: Association) -> None:
    """Abort, and wake the thread waiting for a response: pynetdicom would otherwise sit out
    the whole DIMSE timeout before noticing."""
    assoc.abort()
    assoc.dimse.msg_queue.put((None, None))
