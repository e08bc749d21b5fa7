"""A study's dose: its objects' summaries merged into the columns of --summary, each event
counted once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from qrtui.dose.model import DoseSummary, Event, Quantity

COLUMNS = (
    "study_instance_uid", "study_date", "group", "modality", "manufacturer", "model",
    "station", "study_description", "dose_object", "dlp_total_mGycm", "ctdivol_max_mGy",
    "events", "dap_total_Gym2", "dose_rp_total_Gy", "fluoro_time_s", "agd_mGy",
    "agd_left_mGy", "agd_right_mGy", "notes",
)  # fmt: skip


_RANK = {"RDSR": 0, "ESR": 1, "dose page": 2, "image header": 3, "none": 4}


@dataclass
class StudyDose:
    """The headline values of a study, from every dose object the store holds of it."""

    study_uid: str
    objects: list[DoseSummary] = field(default_factory=list)

    @property
    def best(self) -> list[DoseSummary]:
        """The objects of the best kind held: an RDSR beats an ESR beats a dose page."""
        readable = [o for o in self.objects if o.kind != "none"]
        if not readable:
            return []
        rank = min(_RANK[o.kind] for o in readable)
        return [o for o in readable if _RANK[o.kind] == rank]

    def row(self) -> dict[str, str]:
        best = self.best
        first = best[0] if best else (self.objects[0] if self.objects else None)
        notes = sorted({n for o in best or self.objects for n in o.notes})
        row = dict.fromkeys(COLUMNS, "")
        row["study_instance_uid"] = self.study_uid
        if first is None:
            return row
        kinds = [o.kind for o in best]
        row.update(
            study_date=_iso(first.study_date),
            group=first.group,
            modality=first.modality,
            manufacturer=first.manufacturer or "",
            model=first.model or "",
            station=first.station or "",
            study_description=first.study_description,
            dose_object=(f"{kinds[0]} x{len(kinds)}" if len(kinds) > 1 else kinds[0])
            if kinds
            else "none",
        )
        events = _distinct_events(best)
        row["events"] = str(self.event_count(best, events)) if best else ""
        row["dlp_total_mGycm"] = _fmt(self.total(best, events, "dlp_total", "dlp", "mGy.cm"))
        ctdi = [q.in_unit("mGy") for e in events if (q := e.ctdivol) is not None]
        row["ctdivol_max_mGy"] = _fmt(max((c for c in ctdi if c is not None), default=None))
        row["dap_total_Gym2"] = _fmt(self.total(best, events, "dap_total", "dap", "Gy.m2"))
        row["dose_rp_total_Gy"] = _fmt(self.total(best, events, "dose_rp_total", "dose_rp", "Gy"))
        row["fluoro_time_s"] = _fmt(_sum((o.fluoro_time for o in best), "s"))
        left, right, both = _agd(best)
        row["agd_left_mGy"], row["agd_right_mGy"] = _fmt(left), _fmt(right)
        row["agd_mGy"] = _fmt(both)
        row["notes"] = "; ".join(notes)
        return row

    @staticmethod
    def event_count(best: list[DoseSummary], events: list[Event]) -> int:
        if _overlap_free(best):
            return sum(o.event_count or len(o.events) for o in best)
        return len(events)

    @staticmethod
    def total(
        best: list[DoseSummary], events: list[Event], total: str, per_event: str, unit: str
    ) -> float | None:
        """The objects' own totals, summed where their events do not overlap; else the sum
        over distinct irradiation events (a continued RDSR repeats earlier events)."""
        if _overlap_free(best):
            return _sum((getattr(o, total) for o in best), unit)
        return _sum((getattr(e, per_event) for e in events), unit)


def _distinct_events(objects: list[DoseSummary]) -> list[Event]:
    seen: set[str] = set()
    out = []
    for o in objects:
        for e in o.events:
            if e.uid and e.uid in seen:
                continue
            if e.uid:
                seen.add(e.uid)
            out.append(e)
    return out


def _overlap_free(objects: list[DoseSummary]) -> bool:
    uids = [e.uid for o in objects for e in o.events if e.uid]
    return len(uids) == len(set(uids))


def _sum(values: Iterable[Quantity | None], unit: str) -> float | None:
    present = [q.in_unit(unit) for q in values if q is not None]
    converted = [v for v in present if v is not None]
    return sum(converted) if converted and len(converted) == len(present) else None


def _agd(objects: list[DoseSummary]) -> tuple[float | None, float | None, float | None]:
    sides: dict[str, float] = {}
    for o in objects:
        for side, q in o.agd:
            value = q.in_unit("mGy")
            if value is not None:
                lowered = side.lower()
                key = "left" if "left" in lowered else "right" if "right" in lowered else "other"
                sides[key] = sides.get(key, 0.0) + value
    if not sides:
        return None, None, None
    return sides.get("left"), sides.get("right"), sum(sides.values())


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.6g}"


def _iso(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 else value


def headline(study: StudyDose) -> str:
    """One short value for the TUI's plan table: CT DLP, projection DAP, MG AGD."""
    row = study.row()
    if row["dlp_total_mGycm"]:
        return f"DLP {float(row['dlp_total_mGycm']):.4g} mGy.cm"
    if row["agd_mGy"]:
        return f"AGD {float(row['agd_mGy']):.3g} mGy"
    if row["dap_total_Gym2"]:
        return f"DAP {float(row['dap_total_Gym2']) * 1e4:.4g} Gy.cm2"
    kinds = {o.kind for o in study.objects}
    if "dose page" in kinds:
        return "dose page held"
    return "-"
