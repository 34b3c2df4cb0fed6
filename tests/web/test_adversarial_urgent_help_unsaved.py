"""Help in the moment when the diary is not saved yet (issue 13, adversarial pass): a patient
ticks 'seizure' and 'breathing slowly' and writes an unusual dose (60 g); the diary comes back
asking to confirm the dose, and the help box was not shown: it waited for a save that a
patient having a seizure may never finish. The page that asks the question shows the numbers
at once; saving then shows them again; nothing is stored before the patient confirms."""

from __future__ import annotations

import pytest
from django.urls import reverse

from speciosa.clinic.models import Dose

from .conftest import diary_post

pytestmark = pytest.mark.django_db


def test_an_urgent_symptom_on_a_diary_that_asks_a_question_shows_the_numbers_at_once(clinic,
                                                                                        login):
    client = login(clinic.patient_a.user)
    post = diary_post(token="t-unsaved", side_effects=["seizure"], **{"doses-0-amount": "60"})
    r = client.post(reverse("diary_today"), post)
    html = r.content.decode()
    assert r.status_code == 200 and Dose.objects.count() == 0  # the question is asked
    assert "Get help now" in html and 'href="tel:911"' in html and "a seizure" in html
    assert "Your diary is not saved yet" in html
    assert "sees this entry once it is saved" in html and "will also see this entry" not in html


def test_a_form_error_without_an_urgent_symptom_shows_no_help(clinic, login):
    r = login(clinic.patient_a.user).post(reverse("diary_today"),
                                          diary_post(token="t-unsaved-2", **{"doses-0-amount": "60"}))
    assert r.status_code == 200 and "Get help now" not in r.content.decode()
