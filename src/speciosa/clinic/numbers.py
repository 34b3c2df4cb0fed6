"""Numbers (and dates) in the clinic services: reading a typed or sent number, and writing
one into a message in the language of the request."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext_noop

#: A decimal comma ("1,5") gets this message everywhere a number is entered (the web forms,
#: the API, the FHIR import): Speciosa reads a point only, never guessing by locale.
#: (Marked for the catalogues: the web forms show it in the page's language, the API in English.)
COMMA_DECIMAL = gettext_noop("Use a point for decimals: write 1.5, not 1,5.")


#: A number as text: digits (any script's: Thai and full-width digits read as the same
#: number, as in the web forms), at most one decimal point, an optional sign. Python's
#: ``Decimal()`` alone also reads "1_5" as 15 and "1e3" as 1000: a slip in a dose sent as text
#: through the API or a script would be stored ten or a thousand times over.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def has_comma(raw: Any) -> bool:
    """Text with a comma in it ("1,5"): answered with :data:`COMMA_DECIMAL`, never guessed."""
    return isinstance(raw, str) and "," in raw


def finite_decimal(raw: Any) -> Decimal | None:
    """``raw`` (a number, or its text with or without spaces around) as a finite Decimal;
    None when it is not one ("abc", "NaN", "Infinity", "1_5", "1e3", "0x10"). A number that
    is already one (an int, a float from JSON, a Decimal from a form) is taken as it is. The
    caller says what to type."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if not _PLAIN_NUMBER.fullmatch(text):
            return None
    elif isinstance(raw, int | float | Decimal):
        text = str(raw)
    else:
        return None
    try:
        value = Decimal(text)
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
