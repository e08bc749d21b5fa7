"""What a job ends with, and how it was started."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from qrtui import clock
from qrtui.dicom.echo import EchoResult as EchoResult  # re-exported for the faces
from qrtui.forward import DeliveryReport
from qrtui.funnel import FunnelResult
from qrtui.query import QueryParams
from qrtui.retrieve import RetrieveSummary
from qrtui.status import (  # noqa: F401  (re-exported for the faces)
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    usage_problem,
)
from qrtui.worker.custody import PlanSpool


@dataclass
class JobOutcome:
    status: int
    message: str = ""  # one line, when something stopped the job
    result: FunnelResult | None = None
    summary: RetrieveSummary | None = None
    params: QueryParams | None = None  # as run: a --since-last window filled in
    run_id: int | None = None  # its entry in the store's history
    delivery: DeliveryReport | None = None  # what its delivery pass came to
    custody: PlanSpool | None = None  # a run in days: its plans' entries, let go from memory
    owed_decided: bool = True  # False: stopped before the studies owed were planned and fetched
    hopeless: bool = False  # every request failed the same way: asking more cannot help


@dataclass(frozen=True)
class SinceLast:
    """Run from the last complete run of this query (less the overlap) to now."""

    key: str  # the profile's name, or query_key() of remote, store and selection
    overlap: timedelta = timedelta(days=1)
    first_from: date | None = None  # where a first run starts (default: yesterday)


@dataclass(frozen=True)
class RunContext:
    """Who runs the job and how, for the store's history."""

    face: str = "scripted"  # "scripted", "tui" or "demo"
    profile: str | None = None
    since_last: SinceLast | None = None
    started: datetime = field(default_factory=clock.now)
    forward: tuple[str, ...] | None = None  # destinations (a profile's); None: the store's
    wait: float = 0.0  # seconds to wait for a store another qrtui holds
    on_wait: Callable[[str], None] | None = field(default=None, compare=False)  # told once


def query_key(remote: str, store: str, params: QueryParams) -> str:
    """A stable name for a query without a profile: its nodes and selection, not its dates."""
    selection = {
        k: v
        for k, v in params.to_json().items()
        if k not in ("date_from", "date_until", "time_from", "time_until")
    }
    text = json.dumps({"remote": remote, "store": store, **selection}, sort_keys=True)
    return "query-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def _ignore(event: object) -> None:
    pass


def unclean_message(summary: RetrieveSummary) -> str:
    """Why a retrieve that ran to its end is not a success, in one line."""
    if summary.cancelled:
        return "retrieve cancelled: the next run fetches the rest"
    said = summary.gaps + summary.problems
    first = said[0] if said else f"{summary.failed} sub-operations failed"
    more = f" (and {len(said) - 1} more)" if len(said) > 1 else ""
    owed = len(summary.missing())
    studies = f"; {owed} studies owed to the next run" if owed else ""
    return f"incomplete: {first}{more}{studies}"


def incomplete_message(result: FunnelResult) -> str:
    more = len(result.incomplete) - 1
    return (
        "query possibly incomplete: "
        + result.incomplete[0]
        + (f" (and {more} more)" if more else "")
    )
