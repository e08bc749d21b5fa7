"""C-ECHO every node in parallel; an embedded store reports whether it can serve, a folder
or command destination whether it can take objects."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from qrtui.config import Config, ConfigError, RemoteNode, StoreNode
from qrtui.config.destinations import Destination
from qrtui.dicom.assoc import AssociationFailed, Outcome, Peer, associate, make_ae, release
from qrtui.dicom.tls import client_context


@dataclass(frozen=True)
class EchoResult:
    node: str
    role: str  # "remote", "store" or "embedded store"
    aet: str
    address: str
    outcome: Outcome
    detail: str = ""
    rtt_ms: float | None = None

    @property
    def usable(self) -> bool:
        return self.outcome in (Outcome.ANSWERED, Outcome.READY)

    def line(self) -> str:
        head = f"{self.role} {self.node} ({self.aet} @ {self.address}): {self.outcome}"
        if self.rtt_ms is not None:
            head += f" in {self.rtt_ms:.0f} ms"
        return f"{head} ({self.detail})" if self.detail else head


def echo_peer(calling_aet: str, peer: Peer) -> tuple[Outcome, str, float | None]:
    outcome = _echo_once(calling_aet, peer)
    if outcome[0] is Outcome.ABORTED:
        # A peer that answers and closes at once can race pynetdicom's reader: ask again.
        outcome = _echo_once(calling_aet, peer)
    return outcome


def _echo_once(calling_aet: str, peer: Peer) -> tuple[Outcome, str, float | None]:
    ae = make_ae(calling_aet, peer)
    ae.add_requested_context(Verification)
    started = time.monotonic()
    try:
        assoc = associate(ae, peer)
    except AssociationFailed as failed:
        return failed.outcome, failed.detail, None
    try:
        status = assoc.send_c_echo()
        rtt = (time.monotonic() - started) * 1000
        if not status:
            return Outcome.ABORTED, "no C-ECHO response", None
        if status.Status != 0:
            return Outcome.REJECTED, f"C-ECHO status 0x{status.Status:04X}", None
        return Outcome.ANSWERED, "", rtt
    finally:
        release(assoc)


def echo_remote(config: Config, node: RemoteNode) -> EchoResult:
    try:
        tls = client_context(node)
    except ConfigError as exc:
        return EchoResult(node.name, "remote", node.aet, node.address, Outcome.TLS_FAILED, str(exc))
    peer = Peer(node.aet, node.host, node.port, node.timeout, node.timeout, tls)
    outcome, detail, rtt = echo_peer(config.client.aet, peer)
    return EchoResult(node.name, "remote", node.aet, node.address, outcome, detail, rtt)


def echo_store(config: Config, node: StoreNode) -> EchoResult:
    if not node.embedded:
        assert node.host is not None
        peer = Peer(node.aet, node.host, node.port, node.timeout, node.timeout)
        outcome, detail, rtt = echo_peer(config.client.aet, peer)
        return EchoResult(node.name, "store", node.aet, node.address, outcome, detail, rtt)
    return _check_embedded(config, node)


def echo_destination(config: Config, node: Destination) -> EchoResult:
    """A DICOM destination is echoed; a folder must be writable; a command must exist."""

    def result(outcome: Outcome, detail: str = "", rtt: float | None = None) -> EchoResult:
        return EchoResult(node.name, "destination", node.aet or node.kind, node.address,
                          outcome, detail, rtt)  # fmt: skip

    if node.host is not None and node.aet is not None:
        try:
            tls = client_context(node)
        except ConfigError as exc:
            return result(Outcome.TLS_FAILED, str(exc))
        peer = Peer(node.aet, node.host, node.port, node.timeout, node.timeout, tls)
        return result(*echo_peer(config.client.aet, peer))
    if node.directory is not None:
        problem = directory_problem(node.directory)
        return result(Outcome.UNREACHABLE, problem) if problem else result(
            Outcome.READY, "folder writable"
        )  # fmt: skip
    program = node.command[0]
    if shutil.which(program) is None:
        return result(Outcome.UNREACHABLE, f"{program}: no such program (or not executable)")
    return result(Outcome.READY, "command found")


def _check_embedded(config: Config, node: StoreNode) -> EchoResult:
    def result(outcome: Outcome, detail: str) -> EchoResult:
        return EchoResult(node.name, "embedded store", node.aet, node.address, outcome, detail)

    assert node.directory is not None
    problem = directory_problem(node.directory)
    if problem:
        return result(Outcome.UNREACHABLE, problem)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((node.bind, node.port))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            return result(Outcome.UNREACHABLE, f"cannot listen on port {node.port}: {exc.strerror}")
        # A qrtui listener may already hold the port: it answers C-ECHO as this store.
        peer = Peer(node.aet, "127.0.0.1", node.port, node.timeout, node.timeout)
        outcome, _, _ = echo_peer(config.client.aet, peer)
        if outcome is Outcome.ANSWERED:
            return result(Outcome.READY, "a qrtui listener already runs on its port")
        return result(
            Outcome.UNREACHABLE, f"port {node.port} is in use by a program that is not this store"
        )
    return result(Outcome.READY, f"can listen on port {node.port}, directory writable")


def directory_problem(directory: Path) -> str | None:
    """Why the store could not write into directory (which may not exist yet), or None."""
    if directory.exists():
        if not directory.is_dir():
            return f"{directory} is not a directory"
        if not os.access(directory, os.W_OK | os.X_OK):
            return f"{directory} is not writable"
        return None
    parent = directory.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        return f"{directory} does not exist and cannot be created under {parent}"
    return None


def echo_all(
    config: Config, on_result: Callable[[EchoResult], None] | None = None
) -> list[EchoResult]:
    """Echo every remote and store at once; results come back in configuration order."""
    jobs: list[Callable[[], EchoResult]] = [
        *(lambda n=n: echo_remote(config, n) for n in config.remotes),
        *(lambda n=n: echo_store(config, n) for n in config.stores),
        *(lambda d=d: echo_destination(config, d) for d in config.destinations),
    ]
    if not jobs:
        return []

    def run(job: Callable[[], EchoResult]) -> EchoResult:
        res = job()
        if on_result:
            on_result(res)
        return res

    with ThreadPoolExecutor(max_workers=min(32, len(jobs)), thread_name_prefix="echo") as pool:
        return list(pool.map(run, jobs))


def all_usable(results: Iterable[EchoResult]) -> bool:
    return all(r.usable for r in results)
