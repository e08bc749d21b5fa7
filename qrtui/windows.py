"""Query windows: DICOM date ranges and time windows, their halves, and what lies in them.

Pure functions on the text of matching keys (StudyDate, StudyTime); the funnel splits
cut-short answers with them, and checks answers against what was asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from qrtui.query import QueryParams

# A window ends at the last fraction of its last second: many scanners write StudyTime with
# fractions (115959.5), and PACS compare times as text, so "-115959" would leave it out.
END_OF_SECOND = ".999999"

# A date range longer than this many days runs in windows (read at run time: tests set it).
STREAM_OVER_DAYS = 7
# The counts a run in days adds to the funnel's
WINDOWS_TOTAL = "windows (days) in the range"
WINDOWS_DONE = "windows done"
WINDOWS_BEFORE = "windows done by an earlier run (skipped)"
# A backfill's window grows from one day (the first object comes soon) towards a remote's
# window_studies; at most this many times the last, so that a quiet week does not make the
# next window a season of a busy PACS, and at most a quarter of a year.
WINDOW_GROWTH = 8
WINDOW_MOST_DAYS = 92


def split_range(date_key: str, time_key: str, today: date) -> list[tuple[str, str]] | None:
    """Two halves of a study date range (an open end is today), or of a single day's time
    window, which together cover it at any precision; None when it cannot be split (an open
    start, or one second)."""
    start_text, _, end_text = date_key.partition("-") if "-" in date_key else (date_key, "", "")
    if not start_text:
        return None
    start = datetime.strptime(start_text, "%Y%m%d").date()
    end = datetime.strptime(end_text, "%Y%m%d").date() if end_text else start
    if "-" in date_key and not end_text:
        end = max(today, start)
    if start < end:
        middle = start + (end - start) // 2

        def key(a: date, b: date) -> str:
            return a.strftime("%Y%m%d") if a == b else f"{a:%Y%m%d}-{b:%Y%m%d}"

        return [(key(start, middle), time_key), (key(middle + timedelta(days=1), end), time_key)]
    first, _, last = (time_key or "").partition("-")
    t0, t1 = _seconds(first or "000000"), _seconds(last or "235959")
    if t1 - t0 < 1:
        return None
    middle_s = t0 + (t1 - t0) // 2
    return [
        (start_text, f"{_hhmmss(t0)}-{_hhmmss(middle_s)}{END_OF_SECOND}"),
        (start_text, f"{_hhmmss(middle_s + 1)}-{_hhmmss(t1)}{END_OF_SECOND}"),
    ]


def window_text(date_key: str, time_key: str) -> str:
    """A query window for people: 2026-11-27 08:00:00-09:00:29, or 'any date'."""

    def day(value: str) -> str:
        return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 else value

    def clock(value: str) -> str:
        digits = value.split(".")[0]
        return f"{digits[:2]}:{digits[2:4]}:{digits[4:6]}" if len(digits) == 6 else value

    start, dash, end = date_key.partition("-")
    dates = f"{day(start)}{'..' if dash else ''}{day(end)}" if date_key else "any date"
    if not time_key:
        return dates
    first, dash, last = time_key.partition("-")
    return f"{dates} {clock(first)}{dash}{clock(last)}"


def window_days(params: QueryParams, today: date) -> int:
    """Days the query's window spans (an open start: a year, for the split budget)."""
    if params.date_from is None:
        return 365
    end = params.date_until or today
    return max(1, (end - params.date_from).days + 1)


def one_day(date_key: str) -> bool:
    start, dash, end = date_key.partition("-")
    return bool(start) and (not dash or start == end)


def in_date_range(actual: str, wanted: str) -> bool:
    """A study's date against a DICOM date range; an empty or unreadable date is not told."""
    digits = actual.replace("-", "").replace(".", "").strip()
    if not wanted or len(digits) != 8 or not digits.isdigit():
        return True
    start, dash, end = wanted.partition("-")
    if not dash:
        return digits == start
    return (not start or digits >= start) and (not end or digits <= end)


def in_time_range(actual: str, wanted: str) -> bool:
    """A study's time against a DICOM time range, fractions included; unreadable: not told."""
    digits = actual.split(".")[0].replace(":", "").strip()
    if not wanted or not digits.isdigit() or len(digits) not in (2, 4, 6):
        return True
    start, dash, end = wanted.partition("-")
    value = _seconds(digits)
    low = _seconds(start) if start else 0
    high = _seconds(end) if end else 86399
    if not dash:
        return value == low
    return low <= value <= high


def _seconds(hhmmss: str) -> int:
    digits = (hhmmss.split(".")[0] + "000000")[:6]
    return int(digits[:2]) * 3600 + int(digits[2:4]) * 60 + int(digits[4:6])


def _hhmmss(seconds: int) -> str:
    return f"{seconds // 3600:02d}{seconds % 3600 // 60:02d}{seconds % 60:02d}"


def common_second(dates: list[str], times: list[str]) -> tuple[str, int] | None:
    """The one day and second every answer shares (dates YYYYMMDD, times HHMMSS[.frac]), or
    None when they differ or one is unreadable."""
    seen = set()
    for day, time in zip(dates, times, strict=True):
        digits = time.split(".")[0].strip()
        if len(day) != 8 or not day.isdigit() or len(digits) != 6 or not digits.isdigit():
            return None
        seen.add((day, _seconds(digits)))
        if len(seen) > 1:
            return None
    return seen.pop() if seen else None


def around_second(
    date_key: str, time_key: str, day: str, second: int, today: date
) -> tuple[list[tuple[str, str]], tuple[str, str]] | None:
    """A window cut around one second of one day: the pieces outside it, and that second,
    together covering the window at any precision; None when the window does not hold it, or
    is no wider. Halving down to one second would take 17 levels a day."""
    start_text, dash, end_text = date_key.partition("-")
    if not start_text or day < start_text:
        return None
    end_text = end_text or (max(today.strftime("%Y%m%d"), start_text) if dash else start_text)
    first, _, last = (time_key or "").partition("-")
    t0, t1 = _seconds(first or "000000"), _seconds(last or "235959")
    if day > end_text or not t0 <= second <= t1:
        return None
    one = datetime.strptime(day, "%Y%m%d").date()
    days = [
        (start_text, (one - timedelta(days=1)).strftime("%Y%m%d")),
        ((one + timedelta(days=1)).strftime("%Y%m%d"), end_text),
    ]
    pieces = [(a if a == b else f"{a}-{b}", time_key) for a, b in days if a <= b]
    spans = [(t0, second - 1), (second + 1, t1)]
    pieces += [(day, f"{_hhmmss(a)}-{_hhmmss(b)}{END_OF_SECOND}") for a, b in spans if a <= b]
    if not pieces:
        return None
    return pieces, (day, f"{_hhmmss(second)}-{_hhmmss(second)}{END_OF_SECOND}")


def day_windows(params: QueryParams, today: date) -> list[date] | None:
    """The days of a bounded date range longer than STREAM_OVER_DAYS (an open end is today);
    None for a run in one piece: a short range, an open start, studies asked by UID."""
    if params.date_from is None or params.only_studies:
        return None
    end = params.date_until or max(today, params.date_from)
    days = (end - params.date_from).days + 1
    if days <= STREAM_OVER_DAYS:
        return None
    return [params.date_from + timedelta(days=n) for n in range(days)]


def next_window_days(seen: tuple[int, int], last: tuple[int, int], window_studies: int) -> int:
    """How many days a backfill's next window spans, from the (days, studies) seen so far in
    this run and in the last window: one day first, then twice the last until a study is
    seen (an empty stretch costs a few queries, not some a day; the first objects still
    come soon, as a window's first studies are fetched before the rest is asked); then as
    many as the busier of the two rates says would hold about `window_studies` (1: one day
    each)."""
    (days_seen, studies_seen), (last_days, last_studies) = seen, last
    if window_studies <= 1 or last_days == 0:
        return 1
    if studies_seen == 0:
        return min(2 * last_days, WINDOW_MOST_DAYS)
    per_day = max(studies_seen / days_seen, last_studies / last_days)
    fit = int(window_studies / per_day)
    return max(1, min(fit, last_days * WINDOW_GROWTH, WINDOW_MOST_DAYS))


def next_window(todo: Sequence[date], days: int) -> list[date]:
    """The first `days` days of `todo` that follow one another, up to its first gap."""
    window = list(todo[:1])
    for day in todo[1:days]:
        if day != window[-1] + timedelta(days=1):
            break
        window.append(day)
    return window


def window_label(first: date, last: date) -> str:
    """2026-01-12, or 2026-01-12 to 2026-01-19"""
    return first.isoformat() if first == last else f"{first} to {last}"
