"""Progress of a long job as one self-overwriting line on a terminal's stderr."""

from __future__ import annotations

import sys

from qrtui.events import (
    DeliveryProgress,
    Event,
    FunnelProgress,
    Paused,
    RetrieveProgress,
    WindowProgress,
    size_text,
)


def ignore(event: Event) -> None:
    pass


def pauses_only(event: Event) -> None:
    """Without a terminal: only a pause is said as it happens (a cron log shows the wait)."""
    if isinstance(event, Paused):
        sys.stderr.write(f"{event.text}\n")
        sys.stderr.flush()


class StderrProgress:
    """One self-overwriting line on a terminal's stderr."""

    def __call__(self, event: Event) -> None:
        if isinstance(event, FunnelProgress):
            total = f"/{event.total}" if event.total is not None else ""
            sys.stderr.write(f"\r\033[K{event.stage} {event.done}{total}")
        elif isinstance(event, RetrieveProgress):
            sys.stderr.write(
                f"\r\033[Kretrieve: study {event.studies_done}/{event.studies_total}, "
                f"{event.completed} completed, {event.failed} failed, "
                f"{size_text(event.bytes)}"
            )
        elif isinstance(event, DeliveryProgress):
            sys.stderr.write(
                f"\r\033[Kforward to {event.destination}: {event.sent} sent, "
                f"{event.refused} refused, {event.left} left"
            )
        elif isinstance(event, WindowProgress):
            sys.stderr.write(f"\r\033[K{window_line(event)}\n")
        else:
            sys.stderr.write(f"\r\033[K{event.text}\n")
        sys.stderr.flush()

    def clear(self) -> None:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def window_line(event: WindowProgress) -> str:
    """days 12/365 done (2026-01-12): 340 objects, 120.3 MB, 2.1 MB/s, about 1 h 20 min left"""
    rate = f", {size_text(int(event.bytes / event.seconds))}/s" if event.seconds > 0 else ""
    left = "" if event.eta_seconds is None else f", about {duration_text(event.eta_seconds)} left"
    return (
        f"days {event.done}/{event.total} done ({event.day}): {event.received} objects, "
        f"{size_text(event.bytes)}{rate}{left}"
    )


def duration_text(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return f"{max(round(seconds), 0)} s"
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
