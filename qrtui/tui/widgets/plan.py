"""A row of the plan as the user sees and chooses it, and the short words the table uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qrtui.selection import Decision, Study, StudyPlan

if TYPE_CHECKING:
    from qrtui.retrieve import StudyOutcome

INCLUDED, EXCLUDED, FORCED = "✓", "✗", "!"


@dataclass
class PlanRow:
    """A study of the plan, or one the rules dropped, and what the user chose for it."""

    study: Study
    plan: StudyPlan | None  # None: dropped by the rules
    reason: str  # the rule's, for a dropped study
    included: bool
    forced: bool = False

    @property
    def uid(self) -> str:
        return self.study.study_instance_uid

    @property
    def group(self) -> str:
        if self.plan is not None:
            return self.plan.group
        return "/".join(self.study.modalities[:2]) or "-"


def decision_word(row: PlanRow) -> str:
    """A short word for the table; the whole reason is in the detail and the status line."""
    if row.forced:
        return "forced in"
    plan = row.plan
    if plan is None:
        reason = row.reason
        for phrase, word in (
            ("held", "dropped: held"),
            ("excluded by the user", "dropped: by you"),
            ("description", "dropped: desc."),
            ("station", "dropped: station"),
            ("not asked", "dropped: modality"),
            ("inspected before", "dropped: no dose"),
        ):
            if phrase in reason:
                return word
        return "dropped: no dose"
    if plan.decision is Decision.UNDECIDED:
        return "inspect"
    reason = plan.reason
    for phrase, word in (
        ("RDSR", "RDSR"),
        ("Enhanced SR", "ESR"),
        ("Dose Info", "dose page"),
        ("Toshiba", "first images"),
        ("images", "images"),
    ):
        if phrase in reason:
            return word
    return "fetch"


def outcome_word(row: PlanRow, outcome: StudyOutcome | None) -> str:
    if not row.included:
        return "left out" if row.plan is not None else "dropped"
    if outcome is None:
        return "-"
    state = outcome.state
    if state == "stored":
        return f"stored {outcome.stored}"
    return {"inspected and discarded": "discarded", "nothing new": "held"}.get(state, state)
