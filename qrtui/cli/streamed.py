"""The report of a run in windows of days, written as each window ends, so that memory
stays flat over any range: the JSON stays one document, its studies written window by
window; the dropped studies wait in a temporary file until the studies' list is closed."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from datetime import date
from typing import IO, TYPE_CHECKING, Any

from qrtui.cli.progress import StderrProgress
from qrtui.funnel import FunnelResult
from qrtui.query import QueryParams
from qrtui.report import (
    dropped_json,
    find_requests_json,
    missing_json,
    retrieve_lines,
    study_json,
    study_lines,
    totals_lines,
)  # fmt: skip

if TYPE_CHECKING:
    from qrtui.worker import JobOutcome


class StreamedReport:
    """Hands each window's plan to stdout (`window`), then the totals (`finish`)."""

    def __init__(
        self,
        remote: str,
        store: str,
        *,
        as_json: bool,
        profile: str | None,
        out: IO[str],
        before_writing: Callable[[], None] = lambda: None,
    ) -> None:
        self.remote, self.store, self.as_json, self.profile = remote, store, as_json, profile
        self.out = out
        self.before_writing = before_writing  # a progress line on the same terminal goes
        self.started = False
        self._studies = 0
        self._dropped: IO[str] | None = None  # made on the first window, closed in finish()
        self._any_dropped = False
        self.per_group: dict[str, int] = {}

    def window(self, params: QueryParams, first: date, last: date, result: FunnelResult) -> None:
        self.before_writing()
        if not self.started:
            self.started = True
            if self.as_json:
                self._dropped = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
                head = {"remote": self.remote, "store": self.store, "query": params.to_json()}
                self.out.write(json.dumps(head, indent=1)[:-2] + ',\n "studies": [')
            else:
                self.out.write(
                    f"Query of {self.remote} for store {self.store}, a window of days at a time\n"
                )
        for plan in result.to_fetch:
            self.per_group[plan.group] = self.per_group.get(plan.group, 0) + 1
        if self.as_json:
            for plan in result.plans:
                self.out.write(
                    ("," if self._studies else "") + "\n  " + _one_line(study_json(plan))
                )
                self._studies += 1
            assert self._dropped is not None
            for entry in dropped_json(result):
                self._dropped.write(("," if self._any_dropped else "") + "\n  " + _one_line(entry))
                self._any_dropped = True
        else:
            self.out.writelines(line + "\n" for line in study_lines(result))
        self.out.flush()

    def finish(self, outcome: JobOutcome, *, interrupted: bool = False) -> None:
        """The totals after the last window (or where the run stopped)."""
        result, summary = outcome.result or FunnelResult(), outcome.summary
        if not self.as_json:
            lines = totals_lines(result, self.per_group)
            if summary is not None:
                lines += retrieve_lines(summary)
            if outcome.delivery is not None:
                lines += ["", "Delivered:"] + [d.line() for d in outcome.delivery.destinations]
            self.out.write("\n".join(lines) + "\n")
            return
        self.out.write('\n ],\n "dropped": [')
        dropped = self._dropped
        assert dropped is not None
        dropped.seek(0)
        while chunk := dropped.read(1 << 16):
            self.out.write(chunk)
        dropped.close()
        tail: dict[str, Any] = {
            "counts": dict(result.counts),
            **find_requests_json(result),
            "studies_per_group": self.per_group,
            "notices": list(result.notices),
            "profile": self.profile,
        }
        if summary is not None:
            tail["retrieve"] = summary.to_json()
            tail["missing"] = missing_json(summary)
        if outcome.delivery is not None:
            tail["forward"] = outcome.delivery.to_json()
        tail["run_id"] = outcome.run_id
        if interrupted:
            tail["interrupted"] = True
        self.out.write("\n ],\n" + json.dumps(tail, indent=1)[2:] + "\n")
        self.out.flush()


def _one_line(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "))


def stdout_report(
    remote: str, store: str, as_json: bool, profile: str | None, progress: StderrProgress | None
) -> StreamedReport:
    return StreamedReport(
        remote, store, as_json=as_json, profile=profile, out=sys.stdout,
        before_writing=progress.clear if progress else lambda: None,
    )  # fmt: skip
