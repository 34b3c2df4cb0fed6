"""The diary in the patient's language (docs/translation.md): the same dose typed as Spanish
writes it ("1,5") and as English writes it ("1.5") is one and a half grams in the database,
and each page shows it back in its own way; a Spanish number that could be read two ways
("1.500") is refused, not guessed; the API reads points only, whatever the language."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from speciosa.clinic.models import Dose, Profile

from .conftest import diary_post

pytestmark = pytest.mark.django_db


def _speaking(user, language: str) -> None:
    Profile.objects.filter(user=user).update(language=language)


def test_the_same_dose_in_spanish_and_in_english_from_the_form_to_the_database_to_the_page(
        clinic, login, client):
    from django.test import Client
    from tests.conftest import verified_login

    _speaking(clinic.patient_a.user, "es")
    es = verified_login(Client(), clinic.patient_a.user)
    form = es.get(reverse("diary_today")).content.decode()
    assert '<html lang="es">' in form and "Guardar el diario" in form
    # the amount box takes a comma where Spanish writes one (a number box would refuse it)
    assert 'type="text" name="doses-0-amount"' in form and 'inputmode="decimal"' in form
    r = es.post(reverse("diary_today"), diary_post(**{"doses-0-amount": "1,5"}))
    assert r.status_code == 302, r.content.decode()[:2000]
    spanish = Dose.objects.get(patient=clinic.patient_a)
    assert spanish.amount == Decimal("1.5")
    home = es.get(reverse("me")).content.decode()
    assert "Kratom 1,5 g de hoja" in home and "1.5" not in home.split("Mis últimos 30 días")[1]
    day = es.get(reverse("diary_today")).content.decode()
    assert "Kratom 1,5 g de hoja" in day
    correct = es.get(reverse("my_entry_correct", args=["dose", spanish.pk])).content.decode()
    assert 'value="1,5"' in correct

    _speaking(clinic.patient_b.user, "en")
    en = verified_login(Client(), clinic.patient_b.user)
    form = en.get(reverse("diary_today")).content.decode()
    assert 'type="number" name="doses-0-amount"' in form  # English as before
    r = en.post(reverse("diary_today"), diary_post(**{"doses-0-amount": "1.5"}))
    assert r.status_code == 302
    english = Dose.objects.get(patient=clinic.patient_b)
    assert english.amount == spanish.amount == Decimal("1.5")
    assert "Kratom 1.5 g leaf" in en.get(reverse("me")).content.decode()
    correct = en.get(reverse("my_entry_correct", args=["dose", english.pk])).content.decode()
    assert 'value="1.5"' in correct


def test_in_english_a_comma_still_gets_use_a_point(clinic, login):
    client = login(clinic.patient_a.user)
    r = client.post(reverse("diary_today"), diary_post(**{"doses-0-amount": "1,5"}))
    assert r.status_code == 200
    assert "Use a point for decimals: write 1.5, not 1,5." in r.content.decode()
    assert Dose.objects.count() == 0


@pytest.mark.parametrize(("typed", "stored"), [
    ("1,5", Decimal("1.5")), ("0,25", Decimal("0.25")), ("1.5", Decimal("1.5")),
    ("2", Decimal("2")),
])
def test_spanish_numbers_that_can_be_read_one_way_only_are_read_that_way(clinic, login, typed,
                                                                        stored):
    _speaking(clinic.patient_a.user, "es")
    r = login(clinic.patient_a.user).post(reverse("diary_today"),
                                          diary_post(**{"doses-0-amount": typed}))
    assert r.status_code == 302, r.content.decode()[:1500]
    assert Dose.objects.get().amount == stored


@pytest.mark.parametrize("typed", ["1.500", "12.345", "1.5,2"])
def test_a_spanish_number_that_could_be_read_two_ways_is_refused_saying_how_to_write_it(
        clinic, login, typed):
    _speaking(clinic.patient_a.user, "es")
    r = login(clinic.patient_a.user).post(reverse("diary_today"),
                                          diary_post(**{"doses-0-amount": typed}))
    assert r.status_code == 200
    html = r.content.decode()
    assert (f"“{typed}” no está claro: escriba los decimales con coma (1,5) y los miles sin "
            "punto (1500).") in html
    assert f'value="{typed}"' in html  # what was typed stays in the box
    assert Dose.objects.count() == 0


def test_in_thai_the_decimal_point_stays(clinic, login):
    _speaking(clinic.patient_a.user, "th")
    client = login(clinic.patient_a.user)
    r = client.post(reverse("diary_today"), diary_post(**{"doses-0-amount": "1,5"}))
    assert r.status_code == 200 and "ใช้จุดสำหรับทศนิยม" in r.content.decode()
    assert client.post(reverse("diary_today"), diary_post(
        token="t-2", **{"doses-0-amount": "1.5"})).status_code == 302
    assert Dose.objects.get().amount == Decimal("1.5")


def test_the_api_reads_points_only_whatever_the_language(clinic):
    from rest_framework.test import APIClient
    from tests.api.conftest import new_key

    _speaking(clinic.patient_a.user, "es")
    client = APIClient(HTTP_HOST="localhost")
    client.force_authenticate(clinic.patient_a.user)
    body = {"doses": [{"taken_at": timezone.now().isoformat(), "amount": "2,5", "unit": "g"}]}
    r = client.post("/api/v1/me/diary/", body, format="json",
                    headers={**new_key(), "Accept-Language": "es"})
    assert r.status_code == 400 and Dose.objects.count() == 0
    assert any(m.startswith("Use a point for decimals") for v in r.json()["errors"].values()
               for m in v)  # and in English, whatever the login's language
    assert r["Content-Language"] == "en"
    body["doses"][0]["amount"] = 2.5
    r = client.post("/api/v1/me/diary/", body, format="json",
                    headers={**new_key(), "Accept-Language": "es"})
    assert r.status_code == 201, r.content
    assert Dose.objects.get().amount == Decimal("2.5")
    assert r.json()["doses"][0]["amount"] == 2.5


def test_the_reading_of_a_typed_number_by_language():
    from django.core.exceptions import ValidationError
    from django.utils import translation

    from speciosa.web.forms import decimal_text

    with translation.override("es"):
        assert [decimal_text(t) for t in ("1,5", "1.5", "1.234,5", "12", " 0,75 ")] == [
            "1.5", "1.5", "1234.5", "12", "0.75"]
        for typed in ("1.500", "1.234.567", "1.5,2"):
            with pytest.raises(ValidationError) as caught:
                decimal_text(typed)
            assert caught.value.code == "ambiguous"
    for language in ("en", "th"):
        with translation.override(language):
            assert decimal_text("1.500") == "1.500"
            with pytest.raises(ValidationError) as caught:
                decimal_text("1,5")
            assert caught.value.code == "comma"


def test_the_diarys_questions_come_in_the_patients_language(clinic, login):
    _speaking(clinic.patient_a.user, "es")
    r = login(clinic.patient_a.user).post(reverse("diary_today"), diary_post(
        **{"doses-0-amount": "2", "doses-0-unit": "capsule"}))
    html = r.content.decode()
    assert r.status_code == 200 and Dose.objects.count() == 0
    assert "¿Cuántos gramos hay en una cápsula? Viene en la etiqueta." in html
    assert "Sí, es correcto: guardarlo tal como está" in html
