"""Today, as qrtui reckons it: the one place that reads the calendar for date windows.

`QRTUI_TODAY=YYYY-MM-DD` fixes it, so that tests (and their child processes) agree on one
day whatever the calendar says or however long they run, midnight included.
"""

from __future__ import annotations

import os
from datetime import date


def today() -> date:
    fixed = os.environ.get("QRTUI_TODAY", "").strip()
    if fixed:
        try:
            return date.fromisoformat(fixed)
        except ValueError:
            pass  # a malformed hook is ignored: the calendar's day
    return date.today()
