"""A store's studies with their headline dose values, from the dose summaries its index keeps
(`--summary`), as rows for CSV (RFC 4180), JSON or people. No patient data in any."""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from qrtui.dose import COLUMNS, DoseSummary, StudyDose
from qrtui.store import Store

NUMBER_COLUMNS = {
    "dlp_total_mGycm", "ctdivol_max_mGy", "dap_total_Gym2", "dose_rp_total_Gy",
    "fluoro_time_s", "agd_mGy", "agd_left_mGy", "agd_right_mGy",
}  # fmt: skip


def study_doses(
    store: Store,
    date_from: date | None = None,
    date_until: date | None = None,
    studies: Iterable[str] | None = None,
) -> list[StudyDose]:
    """Every study the store holds a dose object of, oldest first; objects stored before
    their summaries were kept are read once and filled in."""
    from qrtui.dicom.header import dose_json_of_file  # pydicom, only where needed

    store.doses.fill_in(dose_json_of_file)
    wanted = set(studies) if studies is not None else None
    by_study: dict[str, StudyDose] = {}
    for study_uid, summary in store.doses.summaries():
        if wanted is not None and study_uid not in wanted:
            continue
        study = by_study.setdefault(study_uid, StudyDose(study_uid))
        study.objects.append(DoseSummary.from_json(json.loads(summary)))
    first = date_from.strftime("%Y%m%d") if date_from else ""
    last = date_until.strftime("%Y%m%d") if date_until else "99999999"
    kept = [
        s
        for s in by_study.values()
        if first <= (s.objects[0].study_date or "00000000") <= last
        or (not s.objects[0].study_date and not date_from and not date_until)
    ]
    return sorted(kept, key=lambda s: (s.objects[0].study_date, s.study_uid))


def rows(studies: Iterable[StudyDose]) -> list[dict[str, str]]:
    return [s.row() for s in studies]


# Descriptions, stations and models come from the PACS: untrusted. A spreadsheet runs a
# cell that starts like a formula, so such text cells get a leading quote (OWASP, "CSV
# Injection"). Control characters (an ESC left by a broken ISO 2022 value) become U+FFFD,
# which shows that something unreadable was there instead of silently joining words.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBERS = NUMBER_COLUMNS | {"events"}
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")


def spreadsheet_safe(text: str) -> str:
    quoted = "'" + text if text.startswith(_FORMULA_START) else text
    return _CONTROLS.sub("\ufffd", quoted)


def with_delivery(table: list[dict[str, str]], store: Store) -> list[dict[str, str]]:
    """Each row with a `delivery` column: per destination, how many of the study's objects
    were sent, are queued or were refused (empty: queued for no destination)."""
    ledger = store.ledger.by_study()
    out = []
    for row in table:
        parts = ledger.get(row["study_instance_uid"], {})
        told = [
            f"{name}: " + ", ".join(f"{state} {count}" for state, count in sorted(states.items()))
            for name, states in sorted(parts.items())
        ]
        out.append({**row, "delivery": "; ".join(told)})
    return out


def csv_text(table: list[dict[str, str]]) -> str:
    out = io.StringIO()
    columns = [*COLUMNS, "delivery"] if table and "delivery" in table[0] else list(COLUMNS)
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in table:  # numbers as written: a negative value is not a formula
        writer.writerow({k: v if k in _NUMBERS else spreadsheet_safe(v) for k, v in row.items()})
    return out.getvalue()


def json_rows(table: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The same fields, numbers as numbers and empty as null."""
    out = []
    for row in table:
        typed: dict[str, Any] = {}
        for key, value in row.items():
            if key in NUMBER_COLUMNS:
                typed[key] = float(value) if value else None
            elif key == "events":
                typed[key] = int(value) if value else None
            else:
                typed[key] = value
        out.append(typed)
    return out


def text_lines(store: str, table: list[dict[str, str]]) -> list[str]:
    if not table:
        return [f"Store {store} holds no dose object in that window."]
    lines = [f"Store {store}: {len(table)} studies with dose objects"]
    for row in table:
        values = [
            f"DLP {row['dlp_total_mGycm']} mGy.cm" if row["dlp_total_mGycm"] else "",
            f"CTDIvol max {row['ctdivol_max_mGy']} mGy" if row["ctdivol_max_mGy"] else "",
            f"DAP {row['dap_total_Gym2']} Gy.m2" if row["dap_total_Gym2"] else "",
            f"Dose (RP) {row['dose_rp_total_Gy']} Gy" if row["dose_rp_total_Gy"] else "",
            f"fluoro {row['fluoro_time_s']} s" if row["fluoro_time_s"] else "",
            f"AGD {row['agd_mGy']} mGy" if row["agd_mGy"] else "",
        ]
        shown = ", ".join(v for v in values if v) or row["notes"] or "no value read"
        lines.append(
            f"{row['study_date'] or '-':10} {row['group'] or '-':2} {row['model'][:18]:18} "
            f"{row['dose_object']:12} {shown}"
            + (f"  -> {row['delivery'] or 'not queued'}" if "delivery" in row else "")
        )
    return lines


# The headline quantity of each group: what a physicist audits it by.
AUDITED = {
    "CT": ("dlp_total_mGycm", "DLP", "mGy.cm"),
    "MG": ("agd_mGy", "AGD", "mGy"),
    "FL": ("dap_total_Gym2", "DAP", "Gy.m2"),
    "DX": ("dap_total_Gym2", "DAP", "Gy.m2"),
}


@dataclass(frozen=True)
class Spread:
    """The audited quantity of one station and study description: its values, sorted."""

    group: str
    station: str
    description: str
    quantity: str
    unit: str
    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def line(self, width: int = 12) -> str:
        bars = "".join(_bar(v, self.values[-1]) for v in self.values[-width:])
        return (
            f"{self.group:2} {self.station[:12]:12} {self.description[:18]:18} "
            f"n {len(self.values):<3} "
            f"{self.quantity} {self.median:.4g} ({self.values[0]:.4g}-{self.values[-1]:.4g}) "
            f"{self.unit} {bars}"
        )


_BARS = " ▁▂▃▄▅▆▇█"


def _bar(value: float, most: float) -> str:
    return _BARS[max(1, round(8 * value / most))] if most > 0 else _BARS[1]


def spreads(table: Iterable[dict[str, str]]) -> list[Spread]:
    """Per group, station and study description, the values of the group's audited quantity
    (CT DLP, MG AGD, FL and DX DAP), most studies first; studies without it are left out."""
    found: dict[tuple[str, str, str], list[float]] = {}
    for row in table:
        audited = AUDITED.get(row["group"])
        if audited is None or not row[audited[0]]:
            continue
        key = (row["group"], row["station"] or "-", row["study_description"] or "-")
        found.setdefault(key, []).append(float(row[audited[0]]))
    out = [
        Spread(
            group, station, description, AUDITED[group][1], AUDITED[group][2], tuple(sorted(values))
        )
        for (group, station, description), values in found.items()
    ]
    return sorted(out, key=lambda s: (-len(s.values), s.group, s.station, s.description))
