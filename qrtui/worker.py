"""A query-retrieve job for either face: plan, then retrieve, as a stream of progress events.

Blocking (pynetdicom): the TUI runs these in thread workers, the scripted mode directly.
Every way a job can stop becomes an exit status and one line for the user.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import platformdirs

from qrtui.config import APP_NAME, Config, ConfigError, RemoteNode, StoreNode
from qrtui.dicom.assoc import AssociationFailed
from qrtui.dicom.echo import directory_problem
from qrtui.dicom.find import FindSession, PooledFinder
from qrtui.dicom.pool import SessionPool
from qrtui.dicom.retrieve import RetrieveSession
from qrtui.dicom.session import Cancelled, SessionFailed
from qrtui.dicom.storescp import Receiver, StorageSCP
from qrtui.events import Emit
from qrtui.funnel import INSTANCES_HELD, Funnel, FunnelResult
from qrtui.query import QueryParams
from qrtui.retrieve import Retriever, RetrieveStopped, RetrieveSummary, get_sop_classes
from qrtui.status import (  # noqa: F401  (re-exported for the faces)
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    usage_problem,
)
from qrtui.store import INDEX_NAME, Store, StoreBusy, StoreError


@dataclass
class JobOutcome:
    status: int
    message: str = ""  # one line, when something stopped the job
    result: FunnelResult | None = None
    summary: RetrieveSummary | None = None


def _ignore(event: object) -> None:
    pass


def store_problem(remote: RemoteNode, store_node: StoreNode) -> str:
    """Why the embedded store cannot receive (a file where the directory should be, its
    port taken), found before any network traffic; or ''."""
    if store_node.directory is None:
        return ""
    problem = directory_problem(store_node.directory)
    if problem:
        return f"store {store_node.name}: {problem}"
    if remote.retrieve != "move":
        return ""
    try:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((store_node.bind, store_node.port))
    except OSError as exc:
        return (
            f"store {store_node.name}: cannot listen on {store_node.bind}:{store_node.port}: "
            f"{exc.strerror or exc}"
        )
    return ""


@contextlib.contextmanager
def opened_store(node: StoreNode, *, for_writing: bool) -> Iterator[Store | None]:
    """The embedded store, locked, for writing; else only an existing index, unlocked."""
    if node.directory is None:
        yield None
    elif for_writing:
        with Store(node.directory) as store:
            yield store
    elif (node.directory / INDEX_NAME).exists():
        with Store(node.directory, lock=False) as store:
            yield store
    else:
        yield None


def caps_path() -> Path:
    """Where the most matches each node was seen to return is remembered between runs."""
    return Path(platformdirs.user_state_dir(APP_NAME)) / "node-caps.json"


def load_caps() -> dict[str, int]:
    try:
        data = json.loads(caps_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool)}


def save_caps(caps: dict[str, int]) -> None:
    path = caps_path()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(caps, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temp, path)


def plan(
    config: Config,
    remote: RemoteNode,
    store_node: StoreNode,
    params: QueryParams,
    *,
    emit: Emit = _ignore,
    cancel: threading.Event | None = None,
    store: Store | None = None,
) -> JobOutcome:
    """The query funnel. Without `store`, an existing index is read to skip what is held."""
    try:
        with contextlib.ExitStack() as stack:
            if store is None:
                store = stack.enter_context(opened_store(store_node, for_writing=False))
            caps = load_caps()
            learned = dict(caps)
            with FindSession(config.client.aet, remote, cancel) as session:
                finder = PooledFinder(session)
                try:
                    funnel = Funnel(finder, remote, params, emit=emit, holdings=store, caps=learned)
                    result = funnel.run()
                finally:
                    finder.close()
            if learned != caps:
                save_caps(learned)
    except Cancelled:
        return JobOutcome(EXIT_PARTIAL, "query cancelled")
    except (AssociationFailed, SessionFailed) as exc:
        return JobOutcome(EXIT_UNREACHABLE, f"remote {remote.name}: {exc}")
    except (StoreBusy, StoreError) as exc:
        return JobOutcome(EXIT_UNREACHABLE, str(exc))
    except ConfigError as exc:
        return JobOutcome(EXIT_USAGE, str(exc))
    return JobOutcome(EXIT_OK, result=result)


def retrieve(
    config: Config,
    remote: RemoteNode,
    store_node: StoreNode,
    result: FunnelResult,
    *,
    emit: Emit = _ignore,
    cancel: threading.Event | None = None,
    store: Store | None = None,
) -> JobOutcome:
    """Fetch what the plan keeps. Without `store`, the embedded store is opened and locked."""
    held = result.counts.get(INSTANCES_HELD, 0)
    summary = RetrieveSummary(skipped_already_held=held)
    status, message = EXIT_OK, ""
    try:
        with contextlib.ExitStack() as stack:
            if store is None:
                store = stack.enter_context(opened_store(store_node, for_writing=True))
            if result.to_fetch:
                retriever = stack.enter_context(
                    _retriever(config, remote, store_node, store, result, emit, cancel)
                )
                summary = retriever.summary
                summary.skipped_already_held = held
                retriever.run(result.to_fetch)
    except (StoreBusy, StoreError) as exc:
        return JobOutcome(EXIT_UNREACHABLE, str(exc), result, summary)
    except ConfigError as exc:
        return JobOutcome(EXIT_USAGE, str(exc), result, summary)
    except RetrieveStopped as exc:
        summary.problems.append(str(exc))
        status, message = EXIT_PARTIAL, str(exc)
    except (AssociationFailed, SessionFailed) as exc:
        summary.problems.append(str(exc))
        status, message = EXIT_UNREACHABLE, f"remote {remote.name}: {exc}"
    if status == EXIT_OK and not summary.clean:
        status = EXIT_PARTIAL
    if status == EXIT_OK and result.incomplete:
        status, message = EXIT_PARTIAL, incomplete_message(result)
    return JobOutcome(status, message, result, summary)


def incomplete_message(result: FunnelResult) -> str:
    more = len(result.incomplete) - 1
    return (
        "query possibly incomplete: "
        + result.incomplete[0]
        + (f" (and {more} more)" if more else "")
    )


@contextlib.contextmanager
def _retriever(
    config: Config,
    remote: RemoteNode,
    store_node: StoreNode,
    store: Store | None,
    result: FunnelResult,
    emit: Emit,
    cancel: threading.Event | None,
) -> Iterator[Retriever]:
    receiver = Receiver(store) if store is not None else None
    with contextlib.ExitStack() as stack:
        if receiver is not None and remote.retrieve == "move":
            stack.enter_context(StorageSCP(store_node, receiver))
        get = remote.retrieve == "get"
        sop_classes = get_sop_classes(result.to_fetch) if get else ()
        cancel = cancel or threading.Event()

        def session() -> RetrieveSession:
            return RetrieveSession(
                config.client.aet,
                remote,
                destination=store_node.aet,
                receiver=receiver,
                sop_classes=sop_classes,
                cancel=cancel,
            )

        first = stack.enter_context(session())
        pool = SessionPool(first, session, remote.max_associations)
        stack.callback(pool.close)
        yield Retriever(first, store_node, receiver=receiver, store=store, emit=emit, pool=pool)


def run(
    config: Config,
    remote: RemoteNode,
    store_node: StoreNode,
    params: QueryParams,
    *,
    dry_run: bool,
    emit: Emit = _ignore,
    cancel: threading.Event | None = None,
) -> JobOutcome:
    """Plan and retrieve with the store locked throughout (the scripted mode)."""
    problem = "" if dry_run else store_problem(remote, store_node)
    if problem:
        return JobOutcome(EXIT_USAGE, problem)
    try:
        with opened_store(store_node, for_writing=not dry_run) as store:
            planned = plan(
                config, remote, store_node, params, emit=emit, cancel=cancel, store=store
            )
            if planned.status != EXIT_OK or planned.result is None:
                return planned
            if dry_run:
                if planned.result.incomplete:
                    return replace(
                        planned, status=EXIT_PARTIAL, message=incomplete_message(planned.result)
                    )
                return planned
            return retrieve(
                config, remote, store_node, planned.result, emit=emit, cancel=cancel, store=store
            )
    except (StoreBusy, StoreError) as exc:
        return JobOutcome(EXIT_UNREACHABLE, str(exc))
