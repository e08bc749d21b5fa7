"""What a PACS administrator allows qrtui, per remote: at most `max_queries_per_second`
requests (C-FIND, C-GET, C-MOVE) over all its associations, and no new study or window in
its `quiet_hours`. Waiting goes through qrtui.clock, so that tests can control it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from qrtui import clock
from qrtui.config import RemoteNode, parse_quiet_hours


def quiet_until(spec: str | None, now: datetime) -> datetime | None:
    """When the quiet hours that hold `now` end; None outside them."""
    if not spec:
        return None
    start, end = parse_quiet_hours(spec)
    moment = now.time()
    overnight = end < start  # '22:00-06:00'
    inside = (moment >= start or moment < end) if overnight else start <= moment < end
    if not inside:
        return None
    ends = datetime.combine(now.date(), end, now.tzinfo)
    return ends if ends > now else ends + timedelta(days=1)


class Throttle:
    """Requests at least 1/rate seconds apart, whichever association sends them."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next: float | None = None
        self._lock = threading.Lock()

    def wait(self, cancel: threading.Event | None = None) -> None:
        with self._lock:
            now = clock.monotonic()
            slot = now if self._next is None else max(now, self._next)
            self._next = slot + self.interval
        clock.sleep_until(slot, cancel)


_throttles: dict[tuple[str, float], Throttle] = {}
_registry_lock = threading.Lock()


def before_request(node: RemoteNode, cancel: threading.Event | None = None) -> None:
    """Wait for the node's next request slot (at once where it sets no rate). One slot
    schedule per node and rate in the process, shared by all its associations."""
    rate = node.max_queries_per_second
    if not rate:
        return
    with _registry_lock:
        throttle = _throttles.setdefault((node.name, rate), Throttle(rate))
    throttle.wait(cancel)


def wait_out_quiet_hours(
    node: RemoteNode, say: Callable[[str], None], cancel: threading.Event | None = None
) -> None:
    """Between windows or studies, never inside one: inside the node's quiet hours, say so
    and wait until they end (or `cancel`)."""
    while (until := quiet_until(node.quiet_hours, clock.now())) is not None:
        if cancel is not None and cancel.is_set():
            return
        say(f"{node.name}: quiet hours ({node.quiet_hours}): paused until {until:%Y-%m-%d %H:%M}")
        seconds = (until - clock.now()).total_seconds()
        clock.sleep_until(clock.monotonic() + max(seconds, 0.0) + 0.001, cancel)
