"""Numbers (and dates) in the clinic services: reading a typed or sent number, and writing
one into a message in the language of the request."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext_noop

#: A decimal comma ("1,5") gets this message everywhere a number is entered (the web forms,
#: the API, the FHIR import): Speciosa reads a point only, never guessing by locale.
#: (Marked for the catalogues: the web forms show it in the page's language, the API in English.)
COMMA_DECIMAL = gettext_noop("Use a point for decimals: write 1.5, not 1,5.")


def finite_decimal(raw: Any) -> Decimal | None:
    """``raw`` (a number, or its text with or without spaces around) as a finite Decimal;
    None when it is not one ("abc", "NaN", "Infinity"). The caller says what to type."""
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def local_number(number: Any) -> str:
    """A number for a message as written (``16.50`` stays ``16.50``) with the decimal
    separator of the message's language ("16,50" in Spanish)."""
    from django.utils import formats

    text = f"{number:f}" if isinstance(number, Decimal) else str(number)
    return text.replace(".", formats.get_format("DECIMAL_SEPARATOR"))


def day_text(day) -> str:
    """A date for a message, "05 Nov 2026", the month's name in the message's language."""
    from django.utils import dateformat

    return dateformat.format(day, "d M Y")
