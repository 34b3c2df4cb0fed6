"""A Spanish "1,500" is refused, never guessed (issue 17, adversarial pass).

Spain writes one and a half as "1,5" and "1,500"; Mexico and the United States, where many of
Speciosa's Spanish-speaking patients live, write a thousand and five hundred as "1,500" (a
comma between the thousands, a decimal point). The Spanish diary read "1,500" as 1.5: a
patient meaning 1,500 mg of extract had 1.5 mg stored, a thousand times less, and the rules
saw nothing. Like "1.500", it is now refused saying the two ways to write it; a comma that
cannot be a thousands comma ("1,5", "1,50", "0,500", "1234,500") is still a decimal comma."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from speciosa.clinic.models import Dose, Profile

from .conftest import diary_post

pytestmark = pytest.mark.django_db


def _spanish(clinic, login):
    Profile.objects.filter(user=clinic.patient_a.user).update(language="es")
    return login(clinic.patient_a.user)


@pytest.mark.parametrize(("typed", "small", "large"), [
    ("1,500", "1,5", "1500"), ("2,250", "2,25", "2250"), ("12,000", "12", "12000"),
])
def test_a_spanish_number_with_three_digits_after_its_comma_is_refused(clinic, login, typed,
                                                                        small, large):
    r = _spanish(clinic, login).post(reverse("diary_today"), diary_post(
        **{"doses-0-amount": typed, "doses-0-unit": "mg_extract"}))
    assert r.status_code == 200
    html = r.content.decode()
    assert (f"“{typed}” puede leerse de dos maneras: escriba {small} o {large}, según lo que "
            "quiera decir.") in html
    assert f'value="{typed}"' in html  # what was typed stays in the box
    assert Dose.objects.count() == 0


@pytest.mark.parametrize(("typed", "stored"), [
    ("1,5", Decimal("1.5")), ("1,50", Decimal("1.5")), ("0,500", Decimal("0.5")),
    ("1234,5", Decimal("1234.5")), ("1500", Decimal("1500")),
])
def test_a_comma_that_cannot_be_between_thousands_is_still_a_decimal_comma(clinic, login, typed,
                                                                          stored):
    r = _spanish(clinic, login).post(reverse("diary_today"), diary_post(
        **{"doses-0-amount": typed, "doses-0-unit": "mg_extract",
           "doses-0-confirmed_unusual": "on"}))  # past the plausibility question
    assert r.status_code == 302, r.content.decode()[:1500]
    assert Dose.objects.get().amount == stored
