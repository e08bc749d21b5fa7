"""Today and now, as qrtui reckons them: the one place that reads the calendar for date
windows, checkpoints and the run history, and the one place that waits (the politeness of
qrtui.politeness: a rate of requests, quiet hours).

`QRTUI_TODAY=YYYY-MM-DD` fixes the day (now moves by as many days), so that tests and their
child processes agree on one day whatever the calendar says, and a suite can be run as if
it were another day. `QRTUI_CLOCK=YYYY-MM-DDTHH:MM:SS` starts a virtual clock there: it moves
only when qrtui waits, and waiting takes no time (for tests of waiting). In one process,
`use(VirtualClock(...))` does the same.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta


class SystemClock:
    """The calendar (shifted to QRTUI_TODAY's day when set) and real waiting."""

    def now(self) -> datetime:
        real = datetime.now().astimezone()
        return real + ((_fixed_day() or real.date()) - real.date())

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep_until(self, deadline: float, cancel: threading.Event | None = None) -> None:
        """Wait until monotonic() reaches `deadline`, or `cancel` is set."""
        while (left := deadline - time.monotonic()) > 0:
            if cancel is not None:
                if cancel.wait(left):
                    return
            else:
                time.sleep(left)


class VirtualClock:
    """Time that moves only when something waits; waiting returns at once. Thread-safe: of
    several waiters, the clock stands at the latest deadline any of them reached."""

    def __init__(self, start: datetime) -> None:
        self.start = start if start.tzinfo else start.astimezone()
        self._elapsed = 0.0
        self._lock = threading.Lock()
        self.waits: list[float] = []  # every deadline waited for, in the order asked

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.monotonic())

    def monotonic(self) -> float:
        with self._lock:
            return self._elapsed

    def sleep_until(self, deadline: float, cancel: threading.Event | None = None) -> None:
        with self._lock:
            self.waits.append(deadline)
            self._elapsed = max(self._elapsed, deadline)

    def set(self, moment: datetime) -> None:
        """Move the clock to `moment` (a test's doing; never backwards)."""
        with self._lock:
            self._elapsed = max(self._elapsed, (moment - self.start).total_seconds())


Clock = SystemClock | VirtualClock


def _fixed_day() -> date | None:
    fixed = os.environ.get("QRTUI_TODAY", "").strip()
    if fixed:
        try:
            return date.fromisoformat(fixed)
        except ValueError:
            pass  # a malformed hook is ignored: the calendar's day
    return None


def _from_environment() -> Clock:
    start = os.environ.get("QRTUI_CLOCK", "").strip()
    if start:
        try:
            return VirtualClock(datetime.fromisoformat(start))
        except ValueError:
            pass  # malformed: the real clock
    return SystemClock()


_clock: Clock = _from_environment()


def current() -> Clock:
    return _clock


@contextlib.contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    """This clock for the whole process while the block runs."""
    global _clock
    before, _clock = _clock, clock
    try:
        yield clock
    finally:
        _clock = before


def today() -> date:
    if isinstance(_clock, VirtualClock):
        return _clock.now().date()
    return _fixed_day() or date.today()


def now() -> datetime:
    """The local time, on the day today() names."""
    return _clock.now()


def monotonic() -> float:
    return _clock.monotonic()


def sleep_until(deadline: float, cancel: threading.Event | None = None) -> None:
    _clock.sleep_until(deadline, cancel)
