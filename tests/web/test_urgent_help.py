"""Help for the patient in the moment (issue 13): a diary that reports a seizure, dark urine or
yellow eyes, or oversedation or slow breathing is followed at once by the emergency number,
the crisis line and how to reach the clinic; the numbers are site settings with US defaults
and a documented list for other countries; nothing clinical goes into the e-mail."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from speciosa.clinic import crisis
from speciosa.clinic.models import Assessment, DiaryDay
from speciosa.knowledge import evidence, instruments

from .conftest import diary_post

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("code", "words"), [
    ("seizure", "a seizure"),
    ("dark-urine-yellow-eyes", "dark urine or yellow eyes"),
    ("oversedation-slow-breathing", "breathing slowly"),
])
def test_an_urgent_symptom_shows_the_numbers_at_once_after_saving(clinic, login, code, words):
    client = login(clinic.patient_a.user)
    r = client.post(reverse("diary_today"), diary_post(side_effects=[code]), follow=True)
    html = r.content.decode()
    assert r.redirect_chain[-1][0] == reverse("me") + "?saved=1"
    assert "Get help now" in html and words in html
    assert 'href="tel:911"' in html and 'href="tel:988"' in html
    assert "988 Suicide &amp; Crisis Lifeline" in html
    assert "call your care team on the number they gave you" in html
    # shown once: the next visit to the page is back to normal
    assert "Get help now" not in client.get(reverse("me")).content.decode()


def test_a_non_urgent_symptom_shows_no_help_box(clinic, login):
    client = login(clinic.patient_a.user)
    html = client.post(reverse("diary_today"), diary_post(side_effects=["nausea", "confusion"]),
                       follow=True).content.decode()
    assert "Saved" in html and "Get help now" not in html


def test_a_retried_submission_stores_one_diary_and_still_shows_the_help(clinic, login):
    client = login(clinic.patient_a.user)
    post = diary_post(token="t-urgent", side_effects=["seizure"])
    client.post(reverse("diary_today"), post)
    html = client.post(reverse("diary_today"), post, follow=True).content.decode()
    assert "Get help now" in html
    assert DiaryDay.objects.count() == 1
    assert Assessment.objects.filter(instrument="side-effects").count() == 1


def test_the_site_sets_the_numbers_and_a_blank_one_takes_its_countrys(clinic, login):
    site = clinic.site_a
    site.country, site.clinic_phone, site.clinic_hours = "GB", "01632 960 001", "Mon-Fri 9-17"
    site.save()
    html = login(clinic.patient_a.user).post(
        reverse("diary_today"), diary_post(side_effects=["seizure"]), follow=True).content.decode()
    assert 'href="tel:999"' in html and 'href="tel:116 123"' in html and "Samaritans" in html
    assert 'href="tel:01632 960 001"' in html and "Mon-Fri 9-17" in html
    assert "tel:911" not in html
    site.crisis_line, site.crisis_line_name = "0800 000 000", "Our local line"
    site.save()
    numbers = crisis.numbers_for(site)
    assert (numbers.emergency, numbers.crisis, numbers.crisis_name) == \
        ("999", "0800 000 000", "Our local line")
    # another patient's page (another site, US) is not affected
    assert crisis.numbers_for(clinic.site_b).emergency == "911"


def test_an_unknown_country_falls_back_to_the_united_states():
    class Site:
        country = "ZZ"

    assert crisis.numbers_for(Site()).crisis == "988"


def test_every_country_in_the_list_cites_a_source_that_resolves():
    for code, numbers in crisis.COUNTRIES.items():
        assert numbers.citations, code
        for cid in numbers.citations:
            evidence.resolve(cid)
    for _words, cites in crisis.URGENT_SYMPTOMS.values():
        for cid in cites:
            evidence.resolve(cid)


def test_phq9_item_9_above_0_is_a_reason_for_help_where_a_patient_completes_it():
    assert crisis.urgent_reasons((), {"self-harm": 1}) == ["self-harm"]
    assert crisis.urgent_reasons((), {"self-harm": 0}) == []
    assert crisis.urgent_reasons(["nausea", "seizure"], None) == ["seizure"]


def test_the_checklist_has_the_new_items_and_flags_oversedation():
    inst = instruments.get_instrument("side-effects")
    ids = {i.id for i in inst.items}
    assert {"oversedation-slow-breathing", "confusion", "palpitations-chest-pain"} <= ids
    items = {i.id: 0 for i in inst.items} | {"oversedation-slow-breathing": 1}
    assert "oversedation-slow-breathing" in instruments.score(inst, items).flags


def test_the_care_teams_email_about_the_urgent_alert_names_no_symptom(clinic, login, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    clinic.clinician_a.email = "ada@example.org"
    clinic.clinician_a.save()
    login(clinic.patient_a.user).post(reverse("diary_today"),
                                      diary_post(side_effects=["seizure"]))
    assert mail.outbox, "the urgent seizure alert e-mails the care team"
    text = " ".join(m.subject + " " + m.body for m in mail.outbox).lower()
    assert "seizure" not in text and "quinn" not in text
