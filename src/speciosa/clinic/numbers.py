"""Reading a typed or sent number in the clinic's services."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any


def finite_decimal(raw: Any) -> Decimal | None:
    """``raw`` (a number, or its text with or without spaces around) as a finite Decimal;
    None when it is not one ("abc", "NaN", "Infinity"). The caller says what to type."""
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None
