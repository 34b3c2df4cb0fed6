"""A site's own crisis number without a name is named in the patient's language (issue 17,
adversarial pass): numbers_for called it "crisis line" in English whatever the language, so a
Thai or Spanish patient read "โทร 1669 หรือ crisis line ที่หมายเลข ..." on the home page and the
questionnaire's self-harm notice. It is now urgent-help content like the countries' lines'
names, translated (draft) in es and th."""

from __future__ import annotations

import pytest
from django.urls import reverse

from speciosa.clinic import crisis
from speciosa.clinic.models import Profile

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("language", "name"), [
    ("th", "สายด่วนช่วยเหลือภาวะวิกฤต"), ("es", "la línea de crisis"), ("en", "crisis line"),
])
def test_a_sites_own_crisis_line_is_named_in_the_patients_language(clinic, login, language,
                                                                  name):
    site = clinic.patient_a.site
    site.country, site.crisis_line, site.crisis_line_name = "TH", "02 123 4567", ""
    site.save()
    assert crisis.numbers_for(site, language).crisis_name == name
    Profile.objects.filter(user=clinic.patient_a.user).update(language=language)
    page = login(clinic.patient_a.user).get(reverse("me")).content.decode()
    assert f'<html lang="{language}">' in page
    assert "02 123 4567" in page and name in page
    if language != "en":
        assert "crisis line" not in page
