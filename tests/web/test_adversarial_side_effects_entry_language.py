"""Today's side-effect checklist on the diary page is in the patient's language (issue 17,
adversarial pass): the list of the day's entries described it in English whatever the
language ("Side effects" / "Nausea" / "none reported" / "other: ..."), while the checklist
itself was in Thai or Spanish."""

from __future__ import annotations

import pytest
from django.urls import reverse

from speciosa.clinic.models import Assessment, Profile

from .conftest import diary_post

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("language", "words"), [
    ("th", ["ผลข้างเคียง", "คลื่นไส้"]),
    ("es", ["Efectos secundarios", "Náuseas"]),
    ("en", ["Side effects", "Nausea"]),
])
def test_the_days_side_effects_are_described_in_the_patients_language(clinic, login, language,
                                                                      words):
    Profile.objects.filter(user=clinic.patient_a.user).update(language=language)
    client = login(clinic.patient_a.user)
    r = client.post(reverse("diary_today"), diary_post(side_effects=["nausea"]))
    assert r.status_code == 302, r.content.decode()[:1500]
    assert Assessment.objects.filter(instrument="side-effects").count() == 1
    page = client.get(reverse("diary_today")).content.decode()
    entries = page.split("<ul", 1)[1].split("</ul>", 1)[0]  # the day's entries
    for w in words:
        assert w in entries, (w, entries[:1500])
    if language != "en":
        assert "Side effects" not in entries and "Nausea" not in entries
