"""A query-retrieve job for either face: plan, then retrieve, as a stream of progress events.

Blocking (pynetdicom): the TUI runs these in thread workers, the scripted mode directly.
Every way a job can stop becomes an exit status and one line for the user.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from qrtui import clock
from qrtui.config import Config, ConfigError, RemoteNode, StoreNode
from qrtui.dicom.assoc import AssociationFailed
from qrtui.dicom.echo import EchoResult as EchoResult  # re-exported for the faces
from qrtui.dicom.echo import directory_problem, echo_remote, echo_store
from qrtui.dicom.find import FindSession, PooledFinder, identifier, text
from qrtui.dicom.pool import SessionPool
from qrtui.dicom.retrieve import RetrieveSession
from qrtui.dicom.session import Cancelled, SessionFailed
from qrtui.dicom.storescp import Receiver, StorageSCP
from qrtui.dose import StudyDose
from qrtui.events import Emit, Notice
from qrtui.funnel import INSTANCES_HELD, Funnel, FunnelResult
from qrtui.learned import Findings, load_learned, save_learned
from qrtui.query import QueryParams
from qrtui.retrieve import Retriever, RetrieveStopped, RetrieveSummary, get_sop_classes
from qrtui.status import (  # noqa: F401  (re-exported for the faces)
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    usage_problem,
)
from qrtui.store import INDEX_NAME, Missing, RunRecord, Store, StoreBusy, StoreError


@dataclass
class JobOutcome:
    status: int
    message: str = ""  # one line, when something stopped the job
    result: FunnelResult | None = None
    summary: RetrieveSummary | None = None
    params: QueryParams | None = None  # as run: a --since-last window filled in
    run_id: int | None = None  # its entry in the store's history


@dataclass(frozen=True)
class SinceLast:
    """Run from the last complete run of this query (less the overlap) to now."""

    key: str  # the profile's name, or query_key() of remote, store and selection
    overlap: timedelta = timedelta(days=1)
    first_from: date | None = None  # where a first run starts (default: yesterday)


@dataclass(frozen=True)
class RunContext:
    """Who runs the job and how, for the store's history."""

    face: str = "scripted"  # "scripted", "tui" or "demo"
    profile: str | None = None
    since_last: SinceLast | None = None
    started: datetime = field(default_factory=clock.now)


def query_key(remote: str, store: str, params: QueryParams) -> str:
    """A stable name for a query without a profile: its nodes and selection, not its dates."""
    selection = {
        k: v
        for k, v in params.to_json().items()
        if k not in ("date_from", "date_until", "time_from", "time_until")
    }
    text = json.dumps({"remote": remote, "store": store, **selection}, sort_keys=True)
    return "query-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def _ignore(event: object) -> None:
    pass


def store_problem(remote: RemoteNode, store_node: StoreNode) -> tuple[int, str]:
    """Why the embedded store cannot receive, found before any network traffic: a file where
    the directory should be (a configuration error, exit 2), or its port taken (the store
    cannot listen, exit 3, as a store in use); (0, '') when it can."""
    if store_node.directory is None:
        return EXIT_OK, ""
    problem = directory_problem(store_node.directory)
    if problem:
        return EXIT_USAGE, f"store {store_node.name}: {problem}"
    if remote.retrieve == "get":  # no inbound port: C-MOVE is never used
        return EXIT_OK, ""
    try:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((store_node.bind, store_node.port))
    except OSError as exc:
        return EXIT_UNREACHABLE, (
            f"store {store_node.name}: cannot listen on {store_node.bind}:{store_node.port}: "
            f"{exc.strerror or exc}"
        )
    return EXIT_OK, ""


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


def knowledge(config: Config, remote: RemoteNode) -> tuple[RemoteNode, Findings]:
    """What is known of the node, and the node as runs should use it: a known number of
    associations to start with, unless config.toml sets its own."""
    found = load_learned(config.path).get(remote.name, Findings())
    allowed = found.max_associations
    if (
        allowed is not None
        and "max_associations" not in remote.set_keys
        and 1 <= allowed < remote.max_associations
    ):
        remote = replace(remote, max_associations=allowed)
    return remote, found


def learn_cap(config: Config, remote: RemoteNode, cap: int | None) -> str:
    """Keep a cap a run met in nodes.learned.toml (None: forget it); '' or why it could not
    be kept."""
    learned = load_learned(config.path)
    found = learned.get(remote.name, Findings())
    seen = clock.now().isoformat(timespec="seconds") if cap else None
    learned[remote.name] = replace(found, result_cap=cap, cap_seen=seen)
    try:
        save_learned(config.path, learned)
    except OSError as exc:
        return f"the cap of {remote.name} ({cap}) could not be kept: {exc.strerror or exc}"
    return ""


def plan(
    config: Config,
    remote: RemoteNode,
    store_node: StoreNode,
    params: QueryParams,
    *,
    emit: Emit = _ignore,
    cancel: threading.Event | None = None,
    store: Store | None = None,
    also_studies: tuple[str, ...] = (),
) -> JobOutcome:
    """The query funnel. Without `store`, an existing index is read to skip what is held.
    `also_studies`: UIDs of studies owed by earlier runs, asked whatever their date."""
    try:
        with contextlib.ExitStack() as stack:
            if store is None:
                store = stack.enter_context(opened_store(store_node, for_writing=False))
            node, found = knowledge(config, remote)
            with FindSession(config.client.aet, node, cancel) as session:
                finder = PooledFinder(session)
                try:
                    funnel = Funnel(
                        finder, node, params, emit=emit, holdings=store, knowledge=found,
                        also_studies=also_studies,
                    )  # fmt: skip
                    result = funnel.run()
                finally:
                    finder.close()
                    result_requests = finder.requests
            result.find_requests = result_requests
            if funnel.learned_cap != found.result_cap and (
                funnel.learned_cap is not None or funnel.cap_forgotten
            ):
                problem = learn_cap(config, remote, funnel.learned_cap)
                if problem:
                    result.notices.append(problem)
    except Cancelled:
        return JobOutcome(EXIT_PARTIAL, "query cancelled")
    except (AssociationFailed, SessionFailed) as exc:
        return JobOutcome(EXIT_UNREACHABLE, f"remote {remote.name}: {exc}")
    except (StoreBusy, StoreError) as exc:
        return JobOutcome(EXIT_UNREACHABLE, str(exc))
    except ConfigError as exc:
        return JobOutcome(EXIT_USAGE, str(exc))
    return JobOutcome(EXIT_OK, result=result, params=params)


def retrieve(
    config: Config,
    remote: RemoteNode,
    store_node: StoreNode,
    result: FunnelResult,
    *,
    emit: Emit = _ignore,
    cancel: threading.Event | None = None,
    store: Store | None = None,
    context: RunContext | None = None,
    params: QueryParams | None = None,
) -> JobOutcome:
    """Fetch what the plan keeps. Without `store`, the embedded store is opened and locked.
    With a `context` (and the `params` planned), the run goes into the store's history."""
    with contextlib.ExitStack() as stack:
        if store is None and context is not None and store_node.embedded:
            try:
                store = stack.enter_context(opened_store(store_node, for_writing=True))
            except (StoreBusy, StoreError) as exc:
                return JobOutcome(EXIT_UNREACHABLE, str(exc), result)
        outcome = _retrieve(
            config, remote, store_node, result, emit=emit, cancel=cancel, store=store
        )
        outcome.params = params
        if context is not None and params is not None and store is not None:
            outcome.run_id = record(store, context, remote, store_node, params, outcome)
            _unrecorded(outcome, store_node)
        return outcome


def _unrecorded(outcome: JobOutcome, store_node: StoreNode) -> None:
    """A run the history could not take (disk full) still ends, and says so."""
    if outcome.run_id is not None:
        return
    line = f"store {store_node.name}: this run could not be recorded in its history"
    if outcome.status == EXIT_OK:
        outcome.status = EXIT_PARTIAL
    outcome.message = f"{outcome.message}; {line}" if outcome.message else line


def _retrieve(
    config: Config,
    remote: RemoteNode,
    store_node: StoreNode,
    result: FunnelResult,
    *,
    emit: Emit,
    cancel: threading.Event | None,
    store: Store | None,
) -> JobOutcome:
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
        status, message = EXIT_PARTIAL, unclean_message(summary)
    if status == EXIT_OK and result.incomplete:
        status, message = EXIT_PARTIAL, incomplete_message(result)
    return JobOutcome(status, message, result, summary)


def unclean_message(summary: RetrieveSummary) -> str:
    """Why a retrieve that ran to its end is not a success, in one line."""
    if summary.cancelled:
        return "retrieve cancelled: the next run fetches the rest"
    said = summary.gaps + summary.problems
    first = said[0] if said else f"{summary.failed} sub-operations failed"
    more = f" (and {len(said) - 1} more)" if len(said) > 1 else ""
    owed = len(summary.missing())
    studies = f"; {owed} studies owed to the next run" if owed else ""
    return f"incomplete: {first}{more}{studies}"


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
    remote, found = knowledge(config, remote)
    remote = replace(remote, retrieve=retrieve_method(remote, store_node, found))
    with contextlib.ExitStack() as stack:
        if receiver is not None and remote.retrieve in ("move", "auto"):
            stack.enter_context(StorageSCP(store_node, receiver))
        get = remote.retrieve in ("get", "auto")
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


def retrieve_method(remote: RemoteNode, store_node: StoreNode, found: Findings) -> str:
    """ "auto" tries C-GET, and keeps C-MOVE to fall back on; C-MOVE alone where C-GET cannot
    be used: an external store (only named as destination), or a node known to refuse it."""
    if remote.retrieve != "auto":
        return remote.retrieve
    if not store_node.embedded or found.c_get is False:
        return "move"
    return "auto"


def run(
    config: Config,
    remote: RemoteNode,
    store_node: StoreNode,
    params: QueryParams,
    *,
    dry_run: bool,
    emit: Emit = _ignore,
    cancel: threading.Event | None = None,
    context: RunContext | None = None,
) -> JobOutcome:
    """Plan and retrieve with the store locked throughout (the scripted mode). Every run that
    retrieves goes into the store's history; a --since-last run also moves its checkpoint."""
    context = context or RunContext()
    if context.since_last is not None and not store_node.embedded:
        return JobOutcome(
            EXIT_USAGE,
            f"--since-last needs an embedded store (its index keeps the checkpoint); "
            f"store {store_node.name} is external",
        )
    status, problem = (EXIT_OK, "") if dry_run else store_problem(remote, store_node)
    if problem:
        return JobOutcome(status, problem)
    try:
        with opened_store(store_node, for_writing=not dry_run) as store:
            owed: tuple[Missing, ...] = ()
            since = context.since_last
            notice = ""
            if since is not None:  # a dry run of a store not yet made has no checkpoint
                checkpoint = store.history.checkpoint(since.key) if store else None
                params, notice = since_last_window(checkpoint, since, params, context)
                emit(Notice(notice))
                owed = store.history.owed(since.key) if store else ()
            planned = plan(
                config, remote, store_node, params, emit=emit, cancel=cancel, store=store,
                also_studies=tuple(m.study_uid for m in owed),
            )  # fmt: skip
            if since is not None and planned.result is not None:
                planned.result.notices.insert(0, notice)
            planned.params = params
            if dry_run:
                if planned.result is not None and planned.result.incomplete:
                    return replace(
                        planned, status=EXIT_PARTIAL, message=incomplete_message(planned.result)
                    )
                return planned
            if planned.status != EXIT_OK or planned.result is None:
                outcome = planned
            else:
                outcome = _retrieve(
                    config, remote, store_node, planned.result, emit=emit, cancel=cancel,
                    store=store,
                )  # fmt: skip
                outcome.params = params
            if store is not None:
                outcome.run_id = record(
                    store, context, remote, store_node, params, outcome, owed=owed
                )
                _unrecorded(outcome, store_node)
            return outcome
    except (StoreBusy, StoreError) as exc:
        return JobOutcome(EXIT_UNREACHABLE, str(exc))


def since_last_window(
    checkpoint: str | None, since: SinceLast, params: QueryParams, context: RunContext
) -> tuple[QueryParams, str]:
    """The study dates of a --since-last run, and a line that says how they were chosen."""
    started = context.started
    if checkpoint is None:
        first = since.first_from or (started.date() - timedelta(days=1))
        told = f"from {first} (-f)" if since.first_from else f"from yesterday, {first}"
        line = f"--since-last: no complete run of {since.key} yet: this first run looks {told}"
    else:
        until = datetime.fromisoformat(checkpoint)
        first = (until - since.overlap).date()
        line = (
            f"--since-last: the last complete run of {since.key} began {until:%Y-%m-%d %H:%M}; "
            f"with the overlap of {_duration(since.overlap)}, this run looks from {first}"
        )
    window = replace(params, date_from=first, date_until=None, time_from=None, time_until=None)
    return window, line


def _duration(value: timedelta) -> str:
    hours = int(value.total_seconds() // 3600)
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


def record(
    store: Store,
    context: RunContext,
    remote: RemoteNode,
    store_node: StoreNode,
    params: QueryParams,
    outcome: JobOutcome,
    *,
    owed: tuple[Missing, ...] = (),
) -> int | None:
    """The run into the store's history; with --since-last, its checkpoint (moved only after
    a complete run) and the studies it still owes, in the same transaction."""
    result, summary = outcome.result, outcome.summary
    missing = tuple(
        Missing(o.study_instance_uid, o.study_date, o.reason())
        for o in (summary.missing() if summary is not None else ())
    )
    if result is not None and summary is None and outcome.status != EXIT_OK:
        missing = tuple(  # planned, then stopped before any retrieve
            Missing(
                p.study.study_instance_uid, p.study.study_date, f"not reached: {outcome.message}"
            )
            for p in result.to_fetch
        )
    finished = clock.now()
    run = RunRecord(
        started=context.started.isoformat(timespec="seconds"),
        finished=finished.isoformat(timespec="seconds"),
        face=context.face,
        remote=remote.name,
        store=store_node.name,
        profile=context.profile,
        query_key=context.since_last.key if context.since_last else None,
        window_from=params.date_from.isoformat() if params.date_from else None,
        window_until=(
            params.date_until.isoformat()
            if params.date_until
            else context.started.isoformat(timespec="seconds")
        ),
        query=params.to_json(),
        counts=dict(result.counts) if result else {},
        retrieve=summary.to_json() if summary is not None else None,
        studies_planned=len(result.to_fetch) if result else 0,
        exit_status=outcome.status,
        message=outcome.message,
        notices=tuple(result.notices) if result else (),
        missing=missing,
    )
    try:
        if context.since_last is None or result is None:
            # without --since-last, or nothing asked: the checkpoint and what is owed stay
            return store.history.record(run)
        planned = {m.study_uid for m in missing}
        settled = frozenset(m.study_uid for m in owed if m.study_uid not in planned)
        return store.history.record(
            run,
            checkpoint=run.started if outcome.status == EXIT_OK else None,
            owed=missing,
            settled=settled | frozenset(result.owed_gone),
        )
    except sqlite3.Error:
        return None


def record_alone(
    store_node: StoreNode,
    context: RunContext,
    remote: RemoteNode,
    params: QueryParams,
    outcome: JobOutcome,
) -> int | None:
    """Record a run that ended before its retrieve opened the store (the TUI's query failed);
    None where the store keeps no history or is in use."""
    if not store_node.embedded:
        return None
    try:
        with opened_store(store_node, for_writing=True) as store:
            assert store is not None
            return record(store, context, remote, store_node, params, outcome)
    except (StoreBusy, StoreError):
        return None


def echo(config: Config, node: RemoteNode | StoreNode) -> EchoResult:
    """C-ECHO a remote or external store; check that an embedded store can serve."""
    if isinstance(node, RemoteNode):
        return echo_remote(config, node)
    return echo_store(config, node)


def history(store_node: StoreNode, limit: int | None = None) -> list[RunRecord]:
    """The runs an embedded store's index recorded, newest first; none for an external one.
    Read without the lock: a running job may hold it."""
    if not store_node.embedded:
        return []
    with opened_store(store_node, for_writing=False) as store:
        return store.history.runs(limit) if store is not None else []


def patient_context(
    config: Config, remote: RemoteNode, study_uids: list[str]
) -> dict[str, tuple[str, str, str]]:
    """Patient name, patient ID and accession number of these studies, for the TUI's
    screen only, when its user asks: never logged, never written."""
    out: dict[str, tuple[str, str, str]] = {}
    with FindSession(config.client.aet, remote) as session:
        for start in range(0, len(study_uids), 50):
            chunk = study_uids[start : start + 50]
            outcome = session.find(
                identifier(
                    "STUDY", StudyInstanceUID="\\".join(chunk), PatientName="", PatientID="",
                    AccessionNumber="",
                )
            )  # fmt: skip
            for match in outcome.matches:
                uid = text(match, "StudyInstanceUID") or ""
                if uid in chunk:
                    out[uid] = (
                        text(match, "PatientName") or "",
                        text(match, "PatientID") or "",
                        text(match, "AccessionNumber") or "",
                    )
    return out


def study_doses(store_node: StoreNode, study_uids: list[str]) -> dict[str, StudyDose]:
    """The dose values the store's index holds of these studies."""
    from qrtui.summary import study_doses as read

    if not store_node.embedded:
        return {}
    with opened_store(store_node, for_writing=False) as store:
        if store is None:
            return {}
        return {s.study_uid: s for s in read(store, studies=study_uids)}
