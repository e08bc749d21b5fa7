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
            sys.stderr.write(f"\r\033[K{event.line()}\n")
        else:
            sys.stderr.write(f"\r\033[K{event.text}\n")
        sys.stderr.flush()

    def clear(self) -> None:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
