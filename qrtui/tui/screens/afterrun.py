"""After a run, on the Results screen: what it did not bring in whole (g lists it, r fetches
it again), told apart from a run that left nothing to fetch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qrtui.tui.screens.running import RunningScreen
from qrtui.tui.screens.study import TextScreen
from qrtui.tui.widgets.cells import date_text
from qrtui.tui.widgets.plan import PlanRow

if TYPE_CHECKING:
    from qrtui import worker


class AfterRunScreen(RunningScreen):
    """What the Results screen sets up and does, used here."""

    rows: list[PlanRow]
    plan_outcome: worker.JobOutcome | None
    retrieve_outcome: worker.JobOutcome | None
    only: set[str] | None
    phase: str

    def action_retrieve(self) -> None:
        raise NotImplementedError  # the Results screen's

    def action_problems(self) -> None:
        summary = self.retrieve_outcome.summary if self.retrieve_outcome else None
        gaps, problems = (summary.gaps, summary.problems) if summary else ([], [])
        missing = self._missing()
        if not (gaps or problems or missing):
            self.notify("No gaps: every chosen study arrived whole.")
            return
        lines = [f"Gaps: {len(gaps)}", *(f"- {g}" for g in gaps), ""]
        lines += [f"Problems: {len(problems)}", *(f"- {p}" for p in problems), ""]
        lines += [f"Not fetched whole: {len(missing)} (back on Results, r fetches them)"]
        lines += [f"- {date_text(r.study.study_date)} {r.group} {r.study.description}: {why}"
                  for r, why in missing]  # fmt: skip
        self.app.push_screen(TextScreen("Problems", lines))

    def _missing(self) -> list[tuple[PlanRow, str]]:
        """Chosen studies the run did not bring in whole, with why."""
        outcome = self.retrieve_outcome
        if outcome is None:
            return []
        summary = outcome.summary
        found = []
        for row in self.rows:
            if not row.included or (row.plan is None and not row.forced):
                continue
            studied = summary.studies.get(row.uid) if summary else None
            if studied is None or not studied.complete:
                found.append((row, studied.reason() if studied else "not reached"))
        return found

    def action_refetch(self) -> None:
        """After a run: fetch again what it did not bring in whole."""
        if self.plan_outcome is None or self.plan_outcome.result is None:
            return
        self.only = {row.uid for row, _ in self._missing()}
        self._log(f"fetching again what is missing: {len(self.only)} studies")
        self.phase = "planned"
        self.action_retrieve()

    def action_nothing_left(self) -> None:
        self.notify("Nothing left to fetch: every chosen study arrived whole.")
