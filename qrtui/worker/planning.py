"""The funnel as a job: the store opened to read, what is known of the node, caps kept."""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from pydicom.dataset import Dataset

from qrtui import clock
from qrtui.config import Config, ConfigError, RemoteNode, StoreNode
from qrtui.dicom.assoc import AssociationFailed
from qrtui.dicom.echo import EchoResult as EchoResult  # re-exported for the faces
from qrtui.dicom.echo import directory_problem
from qrtui.dicom.find import FindOutcome, FindSession, PooledFinder
from qrtui.dicom.session import Cancelled, LinkedCancel, SessionFailed
from qrtui.events import Emit, Paused
from qrtui.funnel import Funnel, OnHead
from qrtui.helpers import Helper
from qrtui.learned import Findings, load_learned, save_learned
from qrtui.politeness import quiet_until, wait_out_quiet_hours
from qrtui.query import QueryParams
from qrtui.status import (  # noqa: F401  (re-exported for the faces)
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    usage_problem,
)
from qrtui.store import INDEX_NAME, Store, StoreBusy, StoreError
from qrtui.worker.helper import HelperFindSession, usable
from qrtui.worker.outcome import JobOutcome, _ignore


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
def opened_store(
    node: StoreNode,
    *,
    for_writing: bool,
    wait: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[Store | None]:
    """The embedded store, locked, for writing (what it indexes queued for the store's
    destinations); else only an existing index, unlocked."""
    if node.directory is None:
        yield None
    elif for_writing:
        with Store(node.directory, wait=wait, on_wait=on_wait) as store:
            store.forward_to = node.forward
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


class KeptFinder:
    """The funnel's associations, kept open from one window of a backfill to the next while
    no retrieve needs the node: a run of empty days asks each of them without opening and
    releasing associations every day. Closed before a retrieve (the node's limit counts
    both), before quiet hours, and at the end. The funnel asks through it: closed in the
    middle of a funnel (a window's first studies fetched early), it opens a new pool at the
    next query, as patient with a busy node as the first."""

    def __init__(self, helpers: Sequence[Helper] = ()) -> None:
        self.helpers = helpers  # a helper process, where one is free, is one of the pool
        self._pooled: PooledFinder | None = None
        self._asked_before = 0  # requests of the pools closed
        self._helped_before = 0  # ...of those, a helper's
        self._opening: tuple[str, RemoteNode, threading.Event | None] | None = None

    def open(
        self, calling_aet: str, node: RemoteNode, cancel: threading.Event | None
    ) -> KeptFinder:
        self._opening = (calling_aet, node, cancel)
        self._pool()
        return self

    def _pool(self) -> PooledFinder:
        if self._pooled is None:
            assert self._opening is not None, "open() first"
            calling_aet, node, cancel = self._opening
            # a pool's cancel of its own: a failed request aborts the pool, not the user's run
            session = FindSession(calling_aet, node, LinkedCancel(cancel))
            session.__enter__()
            self._pooled = PooledFinder(session, functools.partial(self._extra, session))
        return self._pooled

    def _extra(self, first: FindSession) -> FindSession:
        """The pool's next session: a free helper's, else one more of this process's."""
        for helper in self.helpers:
            if usable(helper):
                return HelperFindSession(helper, first.calling_aet, first.node, first.cancel)
        return FindSession(first.calling_aet, first.node, first.cancel, patient=False)

    def find(self, identifier: Dataset) -> FindOutcome:
        return self._pool().find(identifier)

    def find_each(
        self, identifiers: Sequence[Dataset], limit: int | None = None
    ) -> Iterator[FindOutcome]:
        return self._pool().find_each(identifiers, limit)

    @property
    def requests(self) -> int:
        """C-FIND requests sent so far, by every pool it has had."""
        return self._asked_before + (self._pooled.requests if self._pooled else 0)

    @property
    def by_helpers(self) -> int:
        """Of those, the requests a helper process sent."""
        return self._helped_before + (_helped(self._pooled) if self._pooled else 0)

    def close(self, interrupted: bool = False) -> None:
        finder, self._pooled = self._pooled, None
        if finder is not None:
            self._asked_before += finder.requests
            self._helped_before += _helped(finder)
            finder.close(interrupted)


def _helped(finder: PooledFinder) -> int:
    return sum(s.sent for s in finder.pool.sessions if isinstance(s, HelperFindSession))


@contextlib.contextmanager
def _finder(
    calling_aet: str,
    node: RemoteNode,
    cancel: threading.Event | None,
    kept: KeptFinder | None,
    helpers: Sequence[Helper],
) -> Iterator[KeptFinder]:
    """A pool of find sessions for one funnel: the kept one, or one of its own."""
    owned = kept is None
    kept = kept or KeptFinder(helpers)
    finder = kept.open(calling_aet, node, cancel)
    try:
        yield finder
    except BaseException:
        kept.close(interrupted=True)
        raise
    if owned:
        kept.close()


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
    kept: KeptFinder | None = None,
    head: int = 0,
    on_head: OnHead | None = None,
    helpers: Sequence[Helper] = (),
) -> JobOutcome:
    """The query funnel. Without `store`, an existing index is read to skip what is held.
    `also_studies`: UIDs of studies owed by earlier runs, asked whatever their date. With
    `kept`, its associations serve, and stay open after (a backfill's next window).
    `head`, `on_head`: the first studies' plans handed on early (Funnel.run). `helpers`:
    helper processes a pool of its own may use (qrtui/helpers.py)."""
    paused: list[str] = []

    def pause(line: str) -> None:
        paused.append(line)
        emit(Paused(line))

    if kept is not None and quiet_until(remote.quiet_hours, clock.now()) is not None:
        kept.close()  # no association held open through the node's quiet hours
    wait_out_quiet_hours(remote, pause, cancel)
    try:
        with contextlib.ExitStack() as stack:
            if store is None:
                store = stack.enter_context(opened_store(store_node, for_writing=False))
            node, found = knowledge(config, remote)
            with _finder(config.client.aet, node, cancel, kept, helpers) as finder:
                asked_before, helped_before = finder.requests, finder.by_helpers
                funnel = Funnel(
                    finder, node, params, emit=emit, holdings=store, knowledge=found,
                    also_studies=also_studies,
                )  # fmt: skip
                result = funnel.run(head, on_head)
            result.find_requests = finder.requests - asked_before
            result.find_requests_by_helpers = finder.by_helpers - helped_before
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
    result.notices[:0] = paused
    return JobOutcome(EXIT_OK, result=result, params=params)
