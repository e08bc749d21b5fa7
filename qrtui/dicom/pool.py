"""A few sessions to one node, used in parallel: most of a query-retrieve is waiting on the
network (and, against a PACS that leaves Nagle on, on delayed ACKs), so requests overlap."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from qrtui.dicom.assoc import AssociationFailed
from qrtui.dicom.session import Session

S = TypeVar("S", bound=Session)
T = TypeVar("T")
R = TypeVar("R")


class SessionPool(Generic[S]):
    """Up to `size` open sessions made by `make`, the first one given. A node that refuses
    one more association is not asked for more: it sets the pool's real size."""

    def __init__(self, first: S, make: Callable[[], S], size: int) -> None:
        self._make = make
        self.size = max(1, size)
        self._sessions: list[S] = [first]
        self._idle: queue.SimpleQueue[S] = queue.SimpleQueue()
        self._idle.put(first)
        self._lock = threading.Lock()
        self._opening = 0

    def _take(self) -> S:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            may_open = len(self._sessions) + self._opening < self.size
            self._opening += may_open
        if may_open:
            session = self._make()
            try:
                session.__enter__()
            except AssociationFailed:
                with self._lock:  # the node allows no more: work with what is open
                    self.size = len(self._sessions) + self._opening - 1
            else:
                with self._lock:
                    self._sessions.append(session)
                return session
            finally:
                with self._lock:
                    self._opening -= 1
        return self._idle.get()

    @property
    def sessions(self) -> list[S]:
        with self._lock:
            return list(self._sessions)

    def run(self, work: Callable[[S, T], R], item: T) -> R:
        session = self._take()
        try:
            return work(session, item)
        finally:
            self._idle.put(session)

    def map(self, work: Callable[[S, T], R], items: Sequence[T]) -> Iterator[R]:
        """`work(session, item)` for every item, up to `size` at once; results in item order.
        On the first failure (or Ctrl-C) the rest are not started and the requests in flight
        are cancelled, as a user's cancel would; then it is raised."""
        if self.size == 1 or len(items) < 2:
            for item in items:
                yield self.run(work, item)
            return
        cancel = self._sessions[0].cancel  # shared by every session; it reads the caller's
        stopped_here = False
        try:
            with ThreadPoolExecutor(self.size, thread_name_prefix="qrtui-request") as pool:
                futures = deque(pool.submit(self.run, work, item) for item in items)
                try:
                    while futures:  # let go of each answer once it is handed on
                        yield futures.popleft().result()
                except BaseException:
                    for future in futures:
                        future.cancel()
                    stopped_here = not cancel.is_set()
                    cancel.set()
                    raise
        finally:
            if stopped_here:  # the caller did not cancel: leave its event as it was
                cancel.clear()

    def close(self, interrupted: bool = False) -> None:
        """Every session closed at once, the first included (its owner's close then does
        nothing): a release waits on the node and on pynetdicom's 10 ms shutdown poll, about
        11 ms each against Orthanc, and a backfill closes two pools a window. `interrupted`
        (an exception on its way out): aborted, as a session's own exit would."""
        if interrupted:
            self._sessions[0].cancel.set()
        failed: list[BaseException] = []

        def close(session: S) -> None:
            try:
                session.close()
            except BaseException as exc:  # raised here, in the caller's thread
                failed.append(exc)

        closing = [
            threading.Thread(target=close, args=(s,), name="qrtui-close", daemon=True)
            for s in self.sessions
        ]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join()
        if failed:
            raise failed[0]
