"""A row of the plan as the user sees and chooses it, and the short words the table uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qrtui.selection import GROUP_ORDER, SR_ONLY, Decision, Study, StudyPlan, study_group
from qrtui.tui.widgets.cells import date_text

if TYPE_CHECKING:
    from qrtui.dose import StudyDose
    from qrtui.retrieve import RetrieveSummary, StudyOutcome

INCLUDED, EXCLUDED, FORCED = "✓", "✗", "!"
DESCRIPTION = 22  # characters of the study description in the table


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
        """The rules' group (CT, MG, FL, DX; SR for SR only), never a modality string."""
        if self.plan is not None and self.plan.group in (*GROUP_ORDER, SR_ONLY):
            return self.plan.group
        group = study_group(self.study.modalities, GROUP_ORDER)
        return group or ("SR" if set(self.study.modalities) == {"SR"} else "-")


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
    for start, word in (  # the rule's own words (selection/rules.py), by how they begin
        ("RDSR", "RDSR"),
        ("images", "images"),  # "images (no RDSR)": not an RDSR
        ("Enhanced SR", "ESR"),
        ("Philips Dose Info", "dose page"),
        ("Toshiba", "first images"),
        ("forced in", "forced in"),
    ):
        if plan.reason.startswith(start):
            return word
    return "fetch"


def outcome_word(row: PlanRow, outcome: StudyOutcome | None) -> str:
    if not row.included:
        if row.plan is not None:
            return "left out"
        word = decision_word(row)  # the rule's reason stays after the run
        return "held" if word == "dropped: held" else word
    if outcome is None:
        return "-"
    state = outcome.state
    if state == "stored":
        return f"stored {outcome.stored}"
    return {"inspected and discarded": "discarded", "nothing new": "held"}.get(state, state)


def matches_filter(row: PlanRow, text: str) -> bool:
    """The `/` filter: a case-insensitive substring of what the row says."""
    if not text:
        return True
    words = " ".join(
        (row.study.description, row.study.station_name or "", row.group,
         decision_word(row), row.reason if row.plan is None else row.plan.reason)
    ).lower()  # fmt: skip
    return text.lower() in words


def description_width(screen_width: int, done: bool) -> int:
    """The description widens with the terminal: at 80 columns 22 characters in the plan,
    18 after the run (outcome and dose need the room)."""
    others = 62 if done else 58  # the other columns, their padding and the scroll bar
    return max(18 if done else DESCRIPTION, min(60, screen_width - others))


STATION = 12  # characters of the station column, shown from WITH_STATION columns on
WITH_STATION = 110


def row_cells(
    row: PlanRow,
    *,
    done: bool,
    summary: RetrieveSummary | None,
    doses: dict[str, StudyDose],
    patients: dict[str, tuple[str, str, str]] | None,
    screen_width: int = 80,
) -> tuple[str, ...]:
    """A row of the table: before a retrieve its plan, after it its outcome and dose; from
    WITH_STATION columns on, the station (audits are per scanner)."""
    mark = FORCED if row.forced else INCLUDED if row.included else EXCLUDED
    station = screen_width >= WITH_STATION and patients is None
    width = description_width(screen_width - (STATION + 2 if station else 0), done)
    width = width if patients is None else DESCRIPTION // 2
    cells: tuple[str, ...] = (mark, date_text(row.study.study_date), row.group[:3])
    if station:
        stations = sorted({s.station_name for s in row.study.series if s.station_name})
        named = row.study.station_name or (stations[0] if stations else None)  # answer order varies
        cells += ((named or "-")[:STATION],)
    cells += (row.study.description[:width],)
    if done:
        outcome = summary.studies.get(row.uid) if summary else None
        dose = doses.get(row.uid)
        from qrtui.dose import headline

        shown = headline(dose) if dose else "-"
        if dose is not None and shown == "-":  # held, but no value read: say so
            shown = "no value in header" if "image header" in dose.row()["dose_object"] else (
                "no dose value read"
            )  # fmt: skip
        cells += (outcome_word(row, outcome), shown)
    elif patients is not None:  # room for the patient: series counts in the detail
        cells += (decision_word(row),)
    else:
        plan = row.plan
        picks = (plan.picks + plan.probe) if plan is not None else ()
        instances = sum(len(p.sop_instance_uids) or (p.series.instance_count or 0) for p in picks)
        cells += (str(len(picks) or ""), str(instances or ""), decision_word(row))
    if patients is not None:
        name, patient_id, _ = patients.get(row.uid, ("", "", ""))
        cells += (f"{patient_id} {name}".strip()[:20] or "…",)
    return cells


def plan_status(rows: list[PlanRow]) -> str:
    """The status line of a plan: what the user chose to fetch, per group."""
    chosen = [r for r in rows if r.included]
    groups: dict[str, int] = {}
    for row in chosen:
        groups[row.group] = groups.get(row.group, 0) + 1
    per_group = ", ".join(f"{g} {n}" for g, n in groups.items()) or "none"
    left_out = sum(1 for r in rows if not r.included)
    fetches = "; r fetches them" if chosen else ""
    return f"Plan: {len(chosen)} to fetch ({per_group}), {left_out} dropped{fetches}"
