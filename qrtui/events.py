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


Event = FunnelProgress | Notice
Emit = Callable[[Event], None]
