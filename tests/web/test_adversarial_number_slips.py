"""A typed amount is digits and one decimal separator, nothing else (issue 17, adversarial
pass): the forms' number reading passed the text to Decimal(), which reads "1_5" as 15 and
"1e3" as 1000, so a slip of the thumb stored ten or a thousand times the dose meant. Digits of
other scripts (Thai ๑.๕, full-width １.５) are still the same number."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from speciosa.web.forms import LocaleDecimalField


@pytest.mark.parametrize("language", ["en", "es", "th"])
@pytest.mark.parametrize("typed", ["1_5", "1e3", "1E1", "1.5.2", "."])
def test_a_slip_is_refused(language, typed):
    field = LocaleDecimalField(max_digits=9, decimal_places=3, required=False)
    with translation.override(language), pytest.raises(ValidationError):
        field.clean(typed)


@pytest.mark.parametrize("language", ["en", "th"])
@pytest.mark.parametrize(("typed", "number"), [
    ("1.5", Decimal("1.5")), ("๑.๕", Decimal("1.5")), ("１.５", Decimal("1.5")), (".5", Decimal("0.5")),
    ("2", Decimal("2")), ("2.", Decimal("2")),
])
def test_plain_numbers_in_any_digits_are_read(language, typed, number):
    field = LocaleDecimalField(max_digits=9, decimal_places=3, required=False)
    with translation.override(language):
        assert field.clean(typed) == number
