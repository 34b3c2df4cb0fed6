"""Small helpers every part of the demo uses: a local time on a day, an exact decimal."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

#: Rows per ``bulk_create`` statement.
BATCH = 2000


def local_time(day: dt.date, minutes: float, tz: ZoneInfo) -> dt.datetime:
    """``day`` at ``minutes`` after local midnight, aware in ``tz`` (clamped to the day)."""
    m = int(min(max(minutes, 0), 24 * 60 - 1))
    return dt.datetime(day.year, day.month, day.day, m // 60, m % 60, tzinfo=tz)


def dec(x: float, places: int) -> Decimal:
    """``x`` rounded to ``places`` decimals, as the exact Decimal a form would store."""
    return Decimal(f"{x:.{places}f}")
