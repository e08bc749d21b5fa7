"""The query a user asks for: modalities, dates, terms, options. Parsing and checks."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from qrtui.selection import GROUP_ORDER, SR_ONLY, parse_terms


class QueryError(ValueError):
    """A bad query parameter, worded as one line."""


@dataclass(frozen=True)
class QueryParams:
    groups: tuple[str, ...]  # some of GROUP_ORDER, or ("SR",) for SR only
    date_from: date | None = None
    date_until: date | None = None
    time_from: str | None = None  # HHMM, only with a single date
    time_until: str | None = None
    desc_exclude: tuple[str, ...] = ()
    desc_include: tuple[str, ...] = ()
    station_exclude: tuple[str, ...] = ()
    station_include: tuple[str, ...] = ()
    ignore_held: bool = True
    toshiba: bool = False
    emptysr: bool = False
    only_studies: tuple[str, ...] = ()  # asked by UID, whatever their date; no others
    exclude_studies: tuple[str, ...] = ()  # left out of the plan by the user

    def study_date_key(self) -> str:
        """DICOM date range matching: 'A-B', 'A-', '-B', or '' for any date."""
        start = self.date_from.strftime("%Y%m%d") if self.date_from else ""
        end = self.date_until.strftime("%Y%m%d") if self.date_until else ""
        if start and start == end:
            return start
        return f"{start}-{end}" if (start or end) else ""

    def study_time_key(self) -> str:
        if not (self.time_from or self.time_until):
            return ""
        start = f"{self.time_from}00" if self.time_from else ""
        # to the end of the last second: StudyTime may carry fractions, compared as text
        end = f"{self.time_until}59.999999" if self.time_until else ""
        return f"{start}-{end}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("date_from", "date_until"):
            data[key] = data[key].isoformat() if data[key] else None
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data


_RELATIVE = re.compile(r"^(\d{1,5})d$")
_HHMM = re.compile(r"^([01]\d|2[0-3])([0-5]\d)$")
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


def parse_date(text: str, today: date) -> date:
    value = text.strip().lower()
    if value == "today":
        return today
    if value == "yesterday":
        return today - timedelta(days=1)
    match = _RELATIVE.match(value)
    if match:
        return today - timedelta(days=int(match.group(1)))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:  # the form is right, the calendar is not: say which part
            year, month, day = (int(part) for part in value.split("-"))
            if not 1 <= month <= 12:
                raise QueryError(f"date {text!r}: month {month} is not 1-12") from None
            raise QueryError(f"date {text!r}: {year}-{month:02d} has no day {day}") from None
    raise QueryError(f"date {text!r} is not yyyy-mm-dd, today, yesterday or Nd (N days ago)")


def parse_hhmm(text: str, flag: str) -> str:
    if not _HHMM.match(text.strip()):
        raise QueryError(f"{flag} {text!r} is not a time HHMM (0000-2359)")
    return text.strip()


def build_query(
    *,
    today: date,
    ct: bool = False,
    mg: bool = False,
    fl: bool = False,
    dx: bool = False,
    sr: bool = False,
    date_from: str | None = None,
    date_until: str | None = None,
    single_date: str | None = None,
    time_from: str | None = None,
    time_until: str | None = None,
    desc_exclude: str | None = None,
    desc_include: str | None = None,
    station_exclude: str | None = None,
    station_include: str | None = None,
    dup: bool = False,
    toshiba: bool = False,
    emptysr: bool = False,
    only_studies: list[str] | None = None,
    exclude_studies: list[str] | None = None,
) -> QueryParams:
    """Check the combination of flags as the TUI and the command line give them."""
    ticked = tuple(g for g, on in zip(GROUP_ORDER, (mg, dx, fl, ct), strict=True) if on)
    if sr and ticked:
        raise QueryError("-sr (SR only) cannot be combined with a modality")
    if not sr and not ticked:
        raise QueryError("choose at least one modality (-ct, -mg, -fl, -dx) or -sr alone")
    if single_date and (date_from or date_until):
        raise QueryError("-sd (single date) cannot be combined with -f/-t")
    if (time_from or time_until) and not single_date:
        raise QueryError("-tf/-tt need -sd (a time window applies to a single date)")
    start: date | None
    end: date | None
    if single_date:
        start = end = parse_date(single_date, today)
    else:
        start = parse_date(date_from, today) if date_from else None
        end = parse_date(date_until, today) if date_until else None
    if start and end and start > end:
        raise QueryError(f"from date {start} is after until date {end}")
    tf = parse_hhmm(time_from, "-tf") if time_from else None
    tt = parse_hhmm(time_until, "-tt") if time_until else None
    if tf and tt and tf > tt:
        raise QueryError(f"time from {tf} is after time until {tt}")
    for flag, uids in (("--only-study", only_studies), ("--exclude-study", exclude_studies)):
        for uid in uids or ():
            if not _UID.fullmatch(uid) or len(uid) > 64:
                raise QueryError(f"{flag} {uid!r} is not a UID (digits and dots)")
    return QueryParams(
        groups=(SR_ONLY,) if sr else ticked,
        date_from=start,
        date_until=end,
        time_from=tf,
        time_until=tt,
        desc_exclude=parse_terms(desc_exclude),
        desc_include=parse_terms(desc_include),
        station_exclude=parse_terms(station_exclude),
        station_include=parse_terms(station_include),
        ignore_held=not dup,
        toshiba=toshiba,
        emptysr=emptysr,
        only_studies=tuple(only_studies or ()),
        exclude_studies=tuple(exclude_studies or ()),
    )
