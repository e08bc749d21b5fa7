"""Progress events of the headless core, consumed by the TUI and the scripted mode."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class FunnelProgress:
    stage: str  # "study query", "series query", "image query", "selection"
    done: int
    total: int | None
    counts: Mapping[str, int]


@dataclass(frozen=True)
class Notice:
    """Something the user should know: a quirk detected, a query possibly incomplete."""

    text: str


@dataclass(frozen=True)
class Paused(Notice):
    """A wait the node's politeness asks for (its quiet hours), and until when: said even
    where progress is not shown, since a run may wait for hours."""


@dataclass(frozen=True)
class RetrieveProgress:
    """Totals of the retrieve so far, and what is being fetched now."""

    studies_done: int
    studies_total: int
    current: str
    remaining: int | None  # sub-operations left in the current request, if the PACS says
    completed: int
    failed: int
    warning: int
    received: int
    bytes: int


@dataclass(frozen=True)
class DeliveryProgress:
    """Delivery to one destination so far."""

    destination: str
    sent: int
    refused: int
    left: int  # still queued for it, this pass included


@dataclass(frozen=True)
class WindowProgress:
    """A run in windows (days): how many are done of how many, what arrived so far in this
    run, and an estimate of the time left (None before the first window ends)."""

    done: int  # days that came in whole (and those done before)
    total: int
    day: str  # the window just finished
    received: int
    bytes: int
    seconds: float  # since this run's first window began
    eta_seconds: float | None
    asked: int  # days this run has been through, whole or not (and those done before)

    def line(self) -> str:
        """days 12/365 done (2026-01-12): 340 objects, 120.3 MB, 2.1 MB/s, about 1 h 20 min left
        (or "days 12/365 asked, 9 done", where some did not come in whole)"""
        rate = f", {size_text(int(self.bytes / self.seconds))}/s" if self.seconds > 0 else ""
        left = "" if self.eta_seconds is None else f", about {duration_text(self.eta_seconds)} left"
        days = f"{self.done}/{self.total} done"
        if self.asked != self.done:
            days = f"{self.asked}/{self.total} asked, {self.done} done"
        got = f"{self.received} objects, {size_text(self.bytes)}"
        return f"days {days} ({self.day}): {got}{rate}{left}"


Event = FunnelProgress | Notice | RetrieveProgress | DeliveryProgress | WindowProgress
Emit = Callable[[Event], None]


def size_text(count: int) -> str:
    """Bytes for people: 812 B, 37.9 kB, 4.2 MB, 1.3 GB."""
    value = float(count)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def duration_text(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return f"{max(round(seconds), 0)} s"
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
