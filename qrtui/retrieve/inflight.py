"""The requests in flight of a retrieve's worker threads, for the totals on screen: each
thread's Pending counts and arrivals count until the summary takes them in, so the totals
only grow however the threads' answers interleave. The caller holds the retriever's lock."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from qrtui.dicom.retrieve import SubOps
from qrtui.dicom.storescp import Received

# a thread's [completed, failed, warning] reported so far, and [received, bytes] arrived
_COUNTS, _ARRIVED = slice(0, 3), slice(3, 5)


class InFlight:
    def __init__(self) -> None:
        self._of: dict[int, list[int]] = {}

    def _mine(self) -> list[int]:
        return self._of.setdefault(threading.get_ident(), [0, 0, 0, 0, 0])

    def update(self, counts: SubOps, arrived: Sequence[Received]) -> None:
        mine = self._mine()
        # a request asked again on a re-opened association counts from 0 again: keep the most
        mine[0] = max(mine[0], counts.completed or 0)
        mine[1], mine[2] = counts.failed or 0, counts.warning or 0
        mine[3], mine[4] = len(arrived), sum(r.instance.size for r in arrived)

    def counts_taken(self) -> None:
        """This thread's reported counts are in the summary now."""
        self._mine()[_COUNTS] = [0, 0, 0]

    def arrivals_taken(self) -> None:
        """This thread's arrivals are in the summary now."""
        self._mine()[_ARRIVED] = [0, 0]

    def done(self) -> None:
        self._of.pop(threading.get_ident(), None)

    def totals(self) -> tuple[int, int, int, int, int]:
        """(completed, failed, warning, received, bytes) of every thread's request."""
        sums = [sum(column) for column in zip(*self._of.values(), strict=True)] or [0] * 5
        return sums[0], sums[1], sums[2], sums[3], sums[4]
