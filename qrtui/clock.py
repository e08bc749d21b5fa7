"""Today and now, as qrtui reckons them: the one place that reads the calendar for date
windows, checkpoints and the run history.

`QRTUI_TODAY=YYYY-MM-DD` fixes the day (now moves by as many days), so that tests and their
child processes agree on one day whatever the calendar says, and a suite can be run as if
it were another day.
"""

from __future__ import annotations

import os
from datetime import date, datetime


def today() -> date:
    fixed = os.environ.get("QRTUI_TODAY", "").strip()
    if fixed:
        try:
            return date.fromisoformat(fixed)
        except ValueError:
            pass  # a malformed hook is ignored: the calendar's day
    return date.today()


def now() -> datetime:
    """The local time, on the day today() names."""
    real = datetime.now().astimezone()
    return real + (today() - real.date())
