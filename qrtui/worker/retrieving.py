"""The retrieve as a job: the store, its SCP, the sessions and the retriever wired up."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from qrtui.config import Config, ConfigError, RemoteNode, StoreNode
from qrtui.dicom.assoc import AssociationFailed
from qrtui.dicom.echo import EchoResult as EchoResult  # re-exported for the faces
from qrtui.dicom.pool import SessionPool
from qrtui.dicom.retrieve import RetrieveSession
from qrtui.dicom.session import LinkedCancel, SessionFailed
from qrtui.dicom.storescp import Receiver, StorageSCP
from qrtui.events import Emit
from qrtui.funnel import INSTANCES_HELD, FunnelResult
from qrtui.helpers import Helper
from qrtui.learned import Findings
from qrtui.query import QueryParams
from qrtui.retrieve import (
    Retriever,
    RetrieveStopped,
    RetrieveSummary,
    StudyOutcome,
    get_sop_classes,
)
from qrtui.status import (  # noqa: F401  (re-exported for the faces)
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    usage_problem,
)
from qrtui.store import Store, StoreBusy, StoreError
from qrtui.worker.delivering import deliver_after_run
from qrtui.worker.helper import HelperSession
from qrtui.worker.outcome import (
    JobOutcome,
    RunContext,
    _ignore,
    incomplete_message,
    unclean_message,
)
from qrtui.worker.planning import knowledge, opened_store
from qrtui.worker.recording import record


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
    helpers: Sequence[Helper] = (),
) -> JobOutcome:
    """Fetch what the plan keeps. Without `store`, the embedded store is opened and locked.
    With a `context` (and the `params` planned), the run goes into the store's history."""
    with contextlib.ExitStack() as stack:
        if store is None and context is not None and store_node.embedded:
            try:
                store = stack.enter_context(opened_store(store_node, for_writing=True))
            except (StoreBusy, StoreError) as exc:
                return JobOutcome(EXIT_UNREACHABLE, str(exc), result)
            if store is not None and context.forward is not None:
                store.forward_to = context.forward  # a profile's list wins
        outcome = _retrieve(
            config, remote, store_node, result, emit=emit, cancel=cancel, store=store,
            helpers=helpers,
        )  # fmt: skip
        outcome.params = params
        if context is not None and params is not None and store is not None:
            outcome.run_id = record(store, context, remote, store_node, params, outcome)
            _unrecorded(outcome, store_node)
        if store is not None:
            deliver_after_run(config, store, outcome, emit=emit, cancel=cancel)
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
    helpers: Sequence[Helper] = (),
) -> JobOutcome:
    held = result.counts.get(INSTANCES_HELD, 0)
    summary = RetrieveSummary(skipped_already_held=held)
    status, message, hopeless = EXIT_OK, "", False
    try:
        with contextlib.ExitStack() as stack:
            if store is None:
                store = stack.enter_context(opened_store(store_node, for_writing=True))
            if result.to_fetch:
                retriever = stack.enter_context(
                    _retriever(config, remote, store_node, store, result, emit, cancel, helpers)
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
        status, message, hopeless = EXIT_PARTIAL, str(exc), True
    except (AssociationFailed, SessionFailed) as exc:
        summary.problems.append(str(exc))
        status, message = EXIT_UNREACHABLE, f"remote {remote.name}: {exc}"
    if status != EXIT_OK:  # a study never reached stays owed, with why
        for plan in result.to_fetch:
            uid = plan.study.study_instance_uid
            summary.studies.setdefault(
                uid, StudyOutcome(uid, plan.study.study_date, problems=[message])
            )
    if status == EXIT_OK and not summary.clean:
        status, message = EXIT_PARTIAL, unclean_message(summary)
    if status == EXIT_OK and result.incomplete:
        status, message = EXIT_PARTIAL, incomplete_message(result)
    return JobOutcome(status, message, result, summary, hopeless=hopeless)


@contextlib.contextmanager
def _retriever(
    config: Config,
    remote: RemoteNode,
    store_node: StoreNode,
    store: Store | None,
    result: FunnelResult,
    emit: Emit,
    cancel: threading.Event | None,
    helpers: Sequence[Helper] = (),
) -> Iterator[Retriever]:
    receiver = Receiver(store) if store is not None else None
    remote, found = knowledge(config, remote)
    remote = replace(remote, retrieve=retrieve_method(remote, store_node, found))
    with contextlib.ExitStack() as stack:
        scp = None
        if receiver is not None and remote.retrieve in ("move", "auto"):
            scp = StorageSCP(store_node, receiver)
            stack.callback(scp.stop)
            if remote.retrieve == "move":
                scp.listening()
        get = remote.retrieve in ("get", "auto")
        sop_classes = get_sop_classes(result.to_fetch) if get else ()
        cancel = LinkedCancel(cancel)  # a failed request aborts the pool, not the user's run

        spare = list(helpers) if get and receiver is not None else []

        def session(patient: bool = False) -> RetrieveSession:
            make: Callable[..., RetrieveSession] = RetrieveSession
            if spare and not patient:  # the pool's second member on: a helper's, first
                make = functools.partial(HelperSession, spare.pop(0))
            return make(
                config.client.aet,
                remote,
                destination=store_node.aet,
                receiver=receiver,
                sop_classes=sop_classes,
                cancel=cancel,
                before_move=scp.listening if scp is not None else None,
                patient=patient,
            )

        first = stack.enter_context(session(patient=True))
        pool = SessionPool(first, session, remote.max_associations)
        stack.push(lambda kind, *_: pool.close(interrupted=kind is not None))
        retriever = Retriever(
            first, store_node, receiver=receiver, store=store, emit=emit, pool=pool
        )
        try:
            yield retriever
        finally:
            retriever.summary.by_helpers = sum(
                s.sent for s in pool.sessions if isinstance(s, HelperSession)
            )


def retrieve_method(remote: RemoteNode, store_node: StoreNode, found: Findings) -> str:
    """ "auto" tries C-GET, and keeps C-MOVE to fall back on; C-MOVE alone where C-GET cannot
    be used: an external store (only named as destination), or a node known to refuse it."""
    if remote.retrieve != "auto":
        return remote.retrieve
    if not store_node.embedded or found.c_get is False:
        return "move"
    return "auto"
