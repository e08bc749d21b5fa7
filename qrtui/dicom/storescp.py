"""The embedded Storage SCP: C-STORE from C-MOVE sub-operations, C-GET and pushes, into a Store."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.uid import DeflatedExplicitVRLittleEndian
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from qrtui.config import StoreNode
from qrtui.dicom.assoc import RECEIVE_PDU_BYTES, tune_socket
from qrtui.dicom.find import text
from qrtui.dicom.header import stored_instance
from qrtui.dicom.pynetdicom_fixes import INCOMING_ATTRIBUTE, received_write_error
from qrtui.dicom.tls import server_context
from qrtui.store import Store, StoredInstance, StoreError, UnsafeUID, safe_uid

STORAGE_CLASSES = tuple(
    c.abstract_syntax for c in AllStoragePresentationContexts if c.abstract_syntax
)
# Deflate lets a peer send a small PDU that inflates without bound; not offered.
TRANSFER_SYNTAXES = tuple(
    ts for ts in ALL_TRANSFER_SYNTAXES if ts != DeflatedExplicitVRLittleEndian
)

STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_UIDS_REFUSED = 0xA900  # dataset UIDs missing, unsafe, or not those of the command
STATUS_CANNOT_UNDERSTAND = 0xC000
SERVER_POLL_SECONDS = 0.05  # pynetdicom's 0.5 made every run end up to half a second late


@dataclass(frozen=True)
class Received:
    instance: StoredInstance
    probe: bool  # held back in the probe area for inspection, not indexed


# What a run asked for: study UID -> its series UIDs, or None for any series of the study.
Expected = dict[str, frozenset[str] | None]


class Receiver:
    """Turns C-STORE requests into files and index rows, and remembers what arrived."""

    def __init__(self, store: Store, on_received: Callable[[Received], None] | None = None) -> None:
        self.store = store
        self.on_received = on_received
        self.probe_series: set[str] = set()
        self.received: list[Received] = []
        self.refused = 0
        self.write_errors: list[str] = []
        self.refusals: list[str] = []  # why we refused an object (never patient data)
        self.unasked: list[str] = []  # objects set aside: no request named their study or series
        self.sender_notes: list[str] = []  # what the sender got wrong that we put right
        self.expected: Expected | None = None  # None: anything is welcome (pushes)
        self._lock = threading.Lock()

    def handle_store(self, event: Any) -> int:
        return self.receive(event)[0]

    def receive(self, event: Any) -> tuple[int, int]:
        """(status, bytes stored) for one C-STORE request."""
        received_file = _received_file(event)
        try:
            return self._receive(event, received_file)
        finally:  # pynetdicom leaves the file of a C-STORE within a C-GET behind
            if received_file is not None:
                with contextlib.suppress(OSError):
                    received_file.unlink()

    def receive_here(self, event: Any) -> None:
        """On a new association: its objects are written into the store's incoming area."""
        setattr(event.assoc, INCOMING_ATTRIBUTE, self.store.incoming)

    def _receive(self, event: Any, received_file: Path | None) -> tuple[int, int]:
        unwritten = received_write_error(event)
        if unwritten is not None:
            with self._lock:
                self.write_errors.append(_why(unwritten))
            return self._refuse(STATUS_OUT_OF_RESOURCES), 0
        try:
            if received_file is not None:  # header only: the pixel data stays on disk
                ds = dcmread(received_file, stop_before_pixels=True, defer_size="64 KB")
            else:
                ds = event.dataset
            uids = []
            for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
                try:
                    uids.append(safe_uid(text(ds, keyword)))
                except UnsafeUID as exc:
                    raise UnsafeUID(f"{keyword} {exc}") from None
            sop, study, series = uids
            if safe_uid(str(event.request.AffectedSOPInstanceUID)) != sop:
                raise UnsafeUID("the command and the dataset name different instances")
            sop_class = self._sop_class(ds, str(event.request.AffectedSOPClassUID), sop)
        except UnsafeUID as exc:
            return self._refuse(STATUS_UIDS_REFUSED, f"{exc}"), 0
        except Exception:
            return self._refuse(STATUS_CANNOT_UNDERSTAND, "the dataset could not be read"), 0
        probe = series in self.probe_series
        unasked = not probe and not self._asked(study, series)
        if probe:
            final = self.store.probe_path(sop)
        elif unasked:
            final = self.store.unasked_path(study, series, sop)
        else:
            final = self.store.path_for(study, series, sop)
        try:
            data: bytes | Path
            if received_file is not None:
                data, size = received_file, received_file.stat().st_size
            else:
                encoded = event.encoded_dataset(include_meta=True)
                data, size = encoded, len(encoded)
            sender = str(event.assoc.remote.get("ae_title", "")).strip()
            instance = stored_instance(ds, (sop, study, series), sop_class, final, size, sender)
            twin = None
            if probe or unasked:
                self.store.write_file(data, final)
            else:
                twin = self.store.add(data, instance)
        except (OSError, sqlite3.Error) as exc:
            with self._lock:
                self.write_errors.append(_why(exc))
            return self._refuse(STATUS_OUT_OF_RESOURCES), 0
        if twin is not None:
            self._note(
                f"object {sop} of study {study} has the SOP Instance UID of an object of study "
                f"{twin}: both kept, each under its study"
            )
        if unasked:
            with self._lock:
                self.unasked.append(f"object {sop} of study {study}, series {series}")
            return 0x0000, instance.size
        received = Received(instance, probe)
        with self._lock:
            self.received.append(received)
        if self.on_received:
            self.on_received(received)
        return 0x0000, instance.size

    def _refuse(self, status: int, why: str = "") -> int:
        with self._lock:
            self.refused += 1
            if why:
                self.refusals.append(f"{why} (0x{status:04X})")
        return status

    def _note(self, line: str) -> None:
        with self._lock:
            self.sender_notes.append(line)

    def _asked(self, study: str, series: str) -> bool:
        expected = self.expected
        if expected is None:
            return True
        if study not in expected:
            return False
        wanted = expected[study]
        return wanted is None or series in wanted

    def _sop_class(self, ds: Any, command_class: str, sop: str) -> str:
        """The object's own SOP class; the command's only where the object names none."""
        own = text(ds, "SOPClassUID") or ""
        try:
            own = safe_uid(own)
        except UnsafeUID:
            return command_class
        if own != command_class:
            self._note(
                f"object {sop} was sent as SOP class {command_class}, but is {own}: "
                f"indexed as {own}"
            )
        return own

    def took(self, received: Received) -> None:
        """An object a helper process received and stored for this run (worker/helper.py)."""
        with self._lock:
            self.received.append(received)
        if self.on_received:
            self.on_received(received)

    def merge(self, news: dict[str, Any]) -> None:
        """What a helper process's receiver noted: refusals, write errors, objects set aside,
        notes on the sender."""
        with self._lock:
            self.refused += int(news["refused"])
            self.refusals += news["refusals"]
            self.write_errors += news["write_errors"]
            self.unasked += news["unasked"]
            self.sender_notes += news["notes"]

    def since(self, mark: int) -> list[Received]:
        with self._lock:
            return self.received[mark:]

    def mark(self) -> int:
        with self._lock:
            return len(self.received)


def _received_file(event: Any) -> Path | None:
    """Where pynetdicom wrote the dataset as it arrived (chunked receive), if it did."""
    try:
        path = event.dataset_path
    except AttributeError:
        return None
    return path if isinstance(path, Path) else None


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk full"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    if "disk is full" in str(exc) or "disk I/O error" in str(exc):
        return "disk full"
    return f"index: {exc}"


class StorageSCP:
    """The store node listening on its port for as long as the context lasts."""

    def __init__(
        self, node: StoreNode, receiver: Receiver, log: Callable[[str], None] | None = None
    ) -> None:
        self.node = node
        self.receiver = receiver
        self.log = log
        self._server: Any = None
        self._per_assoc: dict[int, list[int]] = {}
        self._lock = threading.Lock()
        self._starting = threading.Lock()

    def start(self) -> StorageSCP:
        node = self.node
        ae = AE(ae_title=node.aet)
        ae.acse_timeout = node.timeout
        ae.dimse_timeout = max(30.0, node.timeout)
        ae.network_timeout = max(60.0, node.timeout)
        ae.maximum_associations = 16
        ae.maximum_pdu_size = RECEIVE_PDU_BYTES
        for sop_class in STORAGE_CLASSES:
            ae.add_supported_context(sop_class, list(TRANSFER_SYNTAXES))
        ae.add_supported_context(Verification)
        ae.require_calling_aet = list(node.allowed_aets)
        handlers: list[Any] = [
            (evt.EVT_CONN_OPEN, tune_socket),
            (evt.EVT_CONN_OPEN, self.receiver.receive_here),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, lambda event: 0x0000),
            (evt.EVT_RELEASED, self._on_end),
            (evt.EVT_ABORTED, self._on_end),
            (evt.EVT_REJECTED, self._on_rejected),
        ]
        try:
            tls = server_context(node)
            server = ae.make_server(
                (node.bind, node.port),
                evt_handlers=handlers,
                ssl_context=tls,
                server_class=GuardedServer,
            )
        except OSError as exc:
            raise StoreError(
                f"store {node.name}: cannot listen on {node.bind}:{node.port}: "
                f"{exc.strerror or exc}"
            ) from None
        assert isinstance(server, GuardedServer)
        server.allowed_networks = _networks(node.allowed_addresses)
        server.refused = self._on_address_refused
        ae._servers.append(server)  # as start_server() does: shutdown() takes it out
        threading.Thread(  # stop() waits for the server's next look at its flag: keep it short
            target=server.serve_forever,
            kwargs={"poll_interval": SERVER_POLL_SECONDS},
            name=f"store {node.name}",
            daemon=True,
        ).start()
        self._server = server
        return self

    def listening(self) -> None:
        """Started, if it is not yet: C-GET needs no listener, so "auto" starts it only
        before its first C-MOVE (a start and stop cost about 0.09 s a retrieve)."""
        with self._starting:
            if self._server is None:
                self.start()

    def stop(self) -> None:
        """Stop listening, and abort senders still connected: a PACS that holds or trickles
        its sub-operations after we stopped waiting would keep this process alive until the
        network timeout, and go on writing into the store."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            for assoc in server.active_associations:
                with contextlib.suppress(Exception):
                    assoc.abort()

    def __enter__(self) -> StorageSCP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_store(self, event: Any) -> int:
        status, size = self.receiver.receive(event)
        if self.log:
            with self._lock:
                tally = self._per_assoc.setdefault(id(event.assoc), [0, 0, 0])
                if status == 0:
                    tally[0] += 1
                    tally[1] += size
                else:
                    tally[2] += 1
        return status

    def _on_end(self, event: Any) -> None:
        if not self.log:
            return
        with self._lock:
            stored, size, refused = self._per_assoc.pop(id(event.assoc), [0, 0, 0])
        assoc = event.assoc
        how = "released" if event.event is evt.EVT_RELEASED else "aborted"
        with contextlib.suppress(Exception):
            aet = str(assoc.requestor.ae_title).strip()
            self.log(
                f"{aet} from {assoc.requestor.address}: {stored} stored ({size} bytes), "
                f"{refused} refused, {how}"
            )

    def _on_address_refused(self, address: str) -> None:
        if self.log:
            self.log(f"{address}: refused (address not allowed)")

    def _on_rejected(self, event: Any) -> None:
        if self.log:
            with contextlib.suppress(Exception):
                requestor = event.assoc.requestor
                aet = str(requestor.ae_title).strip()
                self.log(f"{aet} from {requestor.address}: rejected (calling AE title not allowed)")


class GuardedServer(ThreadedAssociationServer):
    """Refuses senders outside `allowed_networks` before any DICOM, and does the TLS handshake
    in the connection's own thread: pynetdicom does it in the accept loop, where one silent
    client would keep every other sender out."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    refused: Callable[[str], None] = staticmethod(lambda address: None)

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        assert self.socket is not None
        conn, address = self.socket.accept()
        if self.ssl_context:
            conn = self.ssl_context.wrap_socket(
                conn, server_side=True, do_handshake_on_connect=False
            )
        return conn, address

    def verify_request(self, request: Any, client_address: Any) -> bool:
        if not self.allowed_networks:
            return True
        host = str(client_address[0])
        if _address_in(host, self.allowed_networks):
            return True
        self.refused(host)
        return False


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(allowed: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(a, strict=False) for a in allowed)


def _address_in(host: str, networks: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)
