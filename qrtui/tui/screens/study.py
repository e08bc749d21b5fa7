"""One study in full: its series, what the rule decided and why, what was probed, what
arrived, and the dose it holds; and a plain text screen."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from qrtui.tui.widgets.cells import date_text
from qrtui.tui.widgets.plan import PlanRow, decision_word

if TYPE_CHECKING:
    from qrtui.dose import StudyDose
    from qrtui.retrieve import StudyOutcome


def study_lines(
    row: PlanRow,
    outcome: StudyOutcome | None,
    dose: StudyDose | None,
    patient: tuple[str, str, str] | None,
    delivery: list[str] | None = None,
) -> list[str]:
    study, plan = row.study, row.plan
    time = study.study_time[:4]
    when = date_text(study.study_date) + (f" {time[:2]}:{time[2:]}" if len(time) == 4 else "")
    lines = [
        study.description or "(no description)",
        f"{when}, group {row.group}, modalities {'/'.join(study.modalities) or 'not told'}"
        + (f", station {study.station_name}" if study.station_name else ""),
    ]
    if patient is not None:
        name, patient_id, accession = patient
        lines.append(f"[PHI shown] patient {name or '?'}, ID {patient_id or '?'}, "
                     f"accession {accession or '?'}")  # fmt: skip
    if row.forced:
        decision = f"forced in by you; the rule dropped it: {row.reason}"
    elif plan is None:
        decision = f"dropped: {row.reason}"
    else:
        decision = f"{plan.decision}: {plan.reason}"
        if not row.included:
            decision += " (left out by you)"
    lines += ["", f"Decision ({decision_word(row)}): {decision}"]
    roles: dict[str, list[tuple[str, Any]]] = {}
    if plan is not None:
        for role, picks in (("fetch", plan.picks), ("read first", plan.probe),
                            ("if nothing is found", plan.fallback)):  # fmt: skip
            for pick in picks:
                roles.setdefault(pick.series.series_instance_uid, []).append((role, pick))
    lines += ["", f"Series: {len(study.series) or 'not asked'}"]
    ordered = sorted(
        study.series, key=lambda s: (s.number is None, s.number or 0, s.series_instance_uid)
    )
    for series in ordered:
        count = len(series.instances) if series.instances is not None else series.instance_count
        head = (
            f"- {series.number or '?'} {series.modality or '?'} "
            f"{series.description!r}" if series.description is not None else
            f"- {series.number or '?'} {series.modality or '?'} (no description)"
        )  # fmt: skip
        head += f": {_instances(count)}"
        for role, pick in roles.get(series.series_instance_uid, []):
            which = f"{len(pick.sop_instance_uids)} of them" if pick.sop_instance_uids else "whole"
            head += f"; {role} {which} ({pick.why})"
        lines.append(head)
    if outcome is not None:
        lines += ["", f"Outcome: {outcome.reason()}"]
        lines.append(
            f"{outcome.stored} stored, {outcome.discarded} read and discarded, "
            f"{outcome.failed} failed"
        )
        lines += [f"- {p}" for p in outcome.problems]
    if dose is not None:
        lines += ["", *dose_lines(dose)]
    if delivery:
        lines += ["", "Delivery:", *delivery]
    return lines


def _instances(count: int | None) -> str:
    if count is None:
        return "instances not counted"
    return f"{count} instance" + ("" if count == 1 else "s")


def dose_lines(study: StudyDose) -> list[str]:
    row = study.row()
    lines = [f"Dose: {row['dose_object']}, {row['manufacturer']} {row['model']}".rstrip(", ")]
    for key, label, unit in (
        ("dlp_total_mGycm", "DLP total", "mGy.cm"), ("ctdivol_max_mGy", "CTDIvol max", "mGy"),
        ("dap_total_Gym2", "DAP total", "Gy.m2"), ("dose_rp_total_Gy", "Dose (RP) total", "Gy"),
        ("fluoro_time_s", "fluoroscopy time", "s"), ("agd_left_mGy", "AGD left", "mGy"),
        ("agd_right_mGy", "AGD right", "mGy"), ("agd_mGy", "AGD", "mGy"),
        ("events", "irradiation events", ""),
    ):  # fmt: skip
        if row[key]:
            lines.append(f"  {label}: {row[key]} {unit}".rstrip())
    for summary in study.best:
        for event in summary.events:
            named = (("CTDIvol", event.ctdivol), ("DLP", event.dlp), ("DAP", event.dap),
                     ("Dose (RP)", event.dose_rp), ("AGD", event.agd))  # fmt: skip
            parts = [f"{name} {q}" for name, q in named if q]
            label = event.protocol or event.kind or "event"
            if event.kind and event.protocol:
                label += f" ({event.kind})"
            lines.append(f"- {label}" + (f": {', '.join(parts)}" if parts else ""))
    lines += [f"Note: {n}" for n in sorted({n for o in study.objects for n in o.notes})]
    return lines


class StudyDetailScreen(Screen[None]):
    SUB_TITLE = "Study"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(
        self,
        row: PlanRow,
        outcome: StudyOutcome | None,
        dose: StudyDose | None,
        patient: tuple[str, str, str] | None,
        delivery: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.lines = study_lines(row, outcome, dose, patient, delivery)

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="detail"):
            yield Static("\n".join(self.lines), id="study-detail", markup=False)
        yield Footer(show_command_palette=False)


class TextScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, title: str, lines: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title_text, self.lines = title, lines

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="detail"):
            yield Static("\n".join(self.lines), id="text", markup=False)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        self.sub_title = self.title_text
