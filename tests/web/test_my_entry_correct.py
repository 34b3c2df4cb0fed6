"""``/me/entries/<kind>/<id>/correct/``: a patient corrects or removes an entry of their own
diary (issue 15), and the diary page asks about implausible amounts and capsule sizes.
Another patient's entry is a 404; an entry older than the window is refused with a message."""

from __future__ import annotations

import datetime as dt
import html
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from tests.conftest import form_token

from speciosa.clinic.models import Dose, SubstanceUse

from .conftest import diary_post

pytestmark = pytest.mark.django_db


def _correct_post(**over) -> dict:
    data = {"token": form_token(over.pop("token", "t-fix")), "time": "00:01", "amount": "1.5", "unit": "g",
            "reason": "I entered it wrong"}
    data.update(over)
    return data


def _dose_of(client, **over):
    assert client.post(reverse("diary_today"), diary_post(**over)).status_code == 302
    return Dose.objects.current().latest("pk")


def test_a_patient_corrects_a_dose_and_the_diary_shows_the_new_value(clinic, login):
    client = login(clinic.patient_a.user)
    dose = _dose_of(client)
    url = reverse("my_entry_correct", args=["dose", dose.pk])
    page = client.get(url).content.decode()
    assert 'value="2' in page and "Times are in the clinic" in page
    r = client.post(url, _correct_post())
    assert r.status_code == 302 and r["Location"].endswith("?changed=1")
    new = Dose.objects.current().get()
    assert new.amount == Decimal("1.5") and new.replaces_id == dose.pk
    assert "Kratom 1.5 g leaf" in client.get(r["Location"]).content.decode()
    # the old version's address opens the current one
    assert client.get(url)["Location"] == reverse("my_entry_correct", args=["dose", new.pk])


def test_a_patient_removes_a_substance_entry(clinic, login):
    client = login(clinic.patient_a.user)
    client.post(reverse("diary_today"), diary_post(substances="alcohol"))
    use = SubstanceUse.objects.get()
    r = client.post(reverse("my_entry_correct", args=["substance", use.pk]),
                    _correct_post(remove="on", reason="not today"))
    assert r.status_code == 302
    use.refresh_from_db()
    assert use.retracted


def test_another_patients_entry_is_not_found_and_unchanged(clinic, login):
    other = _dose_of(login(clinic.patient_b.user))
    client = login(clinic.patient_a.user)
    url = reverse("my_entry_correct", args=["dose", other.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, _correct_post()).status_code == 404
    assert client.get(reverse("my_entry_correct", args=["note", other.pk])).status_code == 404
    other.refresh_from_db()
    assert not other.superseded


def test_a_clinician_uses_the_clinicians_correction_page_instead(clinic, login):
    dose = _dose_of(login(clinic.patient_a.user))
    r = login(clinic.clinician_a).get(reverse("my_entry_correct", args=["dose", dose.pk]))
    assert r.status_code == 403


def test_an_entry_older_than_the_window_says_whom_to_ask_and_refuses_a_post(clinic, login, settings):
    settings.DIARY_CORRECTION_DAYS = 1
    client = login(clinic.patient_a.user)
    day = timezone.localdate() - dt.timedelta(days=2)
    client.post(reverse("diary_day", args=[day.isoformat()]), diary_post())
    dose = Dose.objects.get()
    url = reverse("my_entry_correct", args=["dose", dose.pk])
    assert "Ask your care team" in client.get(url).content.decode()
    page = client.post(url, _correct_post()).content.decode()
    assert "can no longer be changed here" in page
    assert not Dose.objects.get().superseded
    assert "Correct or remove" not in client.get(reverse("diary_day", args=[day.isoformat()])).content.decode()


def test_an_implausible_amount_on_the_diary_shows_the_question_and_a_confirm_box(clinic, login):
    client = login(clinic.patient_a.user)
    page = client.post(reverse("diary_today"), diary_post(**{"doses-0-amount": "10000"})).content.decode()
    assert "far above what people report" in page and 'name="doses-0-confirmed_unusual"' in page
    assert Dose.objects.count() == 0
    r = client.post(reverse("diary_today"), diary_post(**{"doses-0-amount": "10000",
                                                          "doses-0-confirmed_unusual": "on"}))
    assert r.status_code == 302 and Dose.objects.get().confirmed_unusual


def test_a_capsule_dose_without_its_size_is_asked_with_the_usual_product_filled_in(clinic, login):
    client = login(clinic.patient_a.user)
    client.post(reverse("diary_today"), diary_post(**{
        "doses-0-unit": "capsule", "doses-0-amount": "4", "doses-0-product": "Red Bali",
        "doses-0-grams_per_capsule": "0.5"}))
    page = client.post(reverse("diary_today"), diary_post(token="t-2", **{
        "doses-0-unit": "capsule", "doses-0-amount": "3", "doses-0-time": "00:00"})).content.decode()
    assert "How many grams are in one capsule" in page
    assert "Filled in from your usual capsules (Red Bali, 0.5 g each)" in page
    assert 'name="doses-0-grams_per_capsule" value="0.5"' in page
    assert Dose.objects.count() == 1


def test_add_another_dose_without_javascript_gives_one_more_row_and_saves_nothing(clinic, login):
    client = login(clinic.patient_a.user)
    page = client.post(reverse("diary_today"), diary_post(**{"doses-TOTAL_FORMS": "1", "add_dose": "1"}))
    text = page.content.decode()
    assert 'name="doses-TOTAL_FORMS" value="2"' in text and 'name="doses-1-time"' in text
    assert 'name="doses-0-amount" value="2"' in text and Dose.objects.count() == 0


def test_the_browser_time_zone_is_used_when_it_differs_and_the_page_says_so(clinic, login):
    import zoneinfo

    client = login(clinic.patient_a.user)
    r = client.post(reverse("diary_today"), diary_post(browser_tz="Europe/Paris", **{"doses-0-time": "00:01"}))
    assert r.status_code == 302
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    # today's diary: 00:01 of the device's today (Paris is a day ahead of UTC from 23:00 UTC)
    assert Dose.objects.get().taken_at == dt.datetime.combine(timezone.localdate(timezone=paris), dt.time(0, 1),
                                                              tzinfo=paris)
    page = client.post(reverse("diary_today"), diary_post(token="t-z", browser_tz="Europe/Paris",
                                                          **{"doses-0-amount": "x"})).content.decode()
    page = html.unescape(page)
    assert "Times are read in your device's time zone, Europe/Paris (the clinic's is UTC)." in page
    bad = client.post(reverse("diary_today"), diary_post(token="t-y", browser_tz="Mars/Olympus",
                                                         **{"doses-0-amount": "x"})).content.decode()
    assert "Times are in the clinic's time zone, UTC." in html.unescape(bad)


def test_enter_in_a_field_saves_the_diary_rather_than_adding_a_row(clinic, login):
    """Without JavaScript the browser submits with the form's first submit button: a save."""
    page = login(clinic.patient_a.user).get(reverse("diary_today")).content.decode()
    form = page[page.index('<form method="post" novalidate class="diary"'):]
    first = form[form.index("<button"):form.index("</button>")]
    assert 'name="add_dose"' not in first and 'type="submit"' in first


def test_a_correction_sent_twice_lands_on_the_diary_both_times(clinic, login):
    """Adversarial pass: a double tap on 'Save the change' stored one version, but the second
    answer sent the patient back to the correction form (of the new version) with nothing
    said, as if the change had not been saved. A retry now gets the first answer."""
    client = login(clinic.patient_a.user)
    dose = _dose_of(client)
    url = reverse("my_entry_correct", args=["dose", dose.pk])
    first = client.post(url, _correct_post(token="t-twice"))
    again = client.post(url, _correct_post(token="t-twice"))
    assert first.status_code == again.status_code == 302
    assert again["Location"] == first["Location"] and first["Location"].endswith("?changed=1")
    assert Dose.objects.count() == 2 and Dose.objects.current().get().amount == Decimal("1.5")
    # another change sent to the old version's address opens the current version, unsaved
    other = client.post(url, _correct_post(token="t-other", amount="2.5"))
    assert other["Location"] == reverse("my_entry_correct", args=["dose", Dose.objects.current().get().pk])
    assert Dose.objects.count() == 2


def test_a_device_a_day_ahead_or_behind_the_clinic_reads_today_as_its_own_today(clinic, login):
    """Adversarial pass: the times were read in the device's zone but on the clinic's date. A
    patient in Auckland at 21:30 UTC (Wednesday morning there, still Tuesday at the clinic)
    writing 'an hour ago' in today's diary had the dose stored 24 hours earlier than taken,
    without a word; a patient behind the clinic (Pago Pago, or Los Angeles just after the
    clinic's midnight) was told that an hour ago is in the future. Today's diary now reads a
    time on the device's today; a correction keeps the dose on the date it has there."""
    import zoneinfo

    now = timezone.now()
    # whichever of the two has a date other than the clinic's (UTC) at this moment
    name = "Pacific/Kiritimati" if now.hour >= 10 else "Pacific/Pago_Pago"
    zone = zoneinfo.ZoneInfo(name)
    taken = (now - dt.timedelta(minutes=2)).astimezone(zone).replace(second=0, microsecond=0)
    if taken.date() == timezone.localdate():  # the two minutes crossed the device's midnight
        pytest.skip("the device's date is the clinic's for two minutes")
    client = login(clinic.patient_a.user)
    r = client.post(reverse("diary_today"), diary_post(browser_tz=name, **{"doses-0-time": f"{taken:%H:%M}"}))
    assert r.status_code == 302, html.unescape(r.content.decode())[-2000:]
    dose = Dose.objects.get()
    assert dose.taken_at == taken and dose.diary.day == timezone.localdate()
    # corrected on the same device (the page shows the time in its zone): the time stays put
    r = client.post(reverse("my_entry_correct", args=["dose", dose.pk]),
                    _correct_post(browser_tz=name, time=f"{taken:%H:%M}", amount="1.5"))
    assert r.status_code == 302
    new = Dose.objects.current().get()
    assert new.amount == Decimal("1.5") and new.taken_at == taken


def test_an_entry_the_care_team_corrected_is_not_offered_to_the_patient_to_change(clinic, login):
    """Adversarial pass: after a clinician corrected a patient's dose of today, the diary still
    offered 'Correct or remove' on it, and the page it opened said entries of today 'can no
    longer be changed here', as if the day were too old. The link is offered only on the
    patient's own entries; the page says the care team changed it."""
    from speciosa.clinic import services

    client = login(clinic.patient_a.user)
    dose = _dose_of(client)
    fixed = services.correct_record(clinic.clinician_a, dose, {"amount": Decimal("2.5")}, "checked with her")
    page = client.get(reverse("diary_today")).content.decode()
    assert "Kratom 2.5 g leaf" in page
    assert reverse("my_entry_correct", args=["dose", fixed.pk]) not in page
    page = html.unescape(client.get(reverse("my_entry_correct", args=["dose", fixed.pk])).content.decode())
    assert "Your care team changed this entry" in page and "can no longer be changed here" not in page
    assert client.post(reverse("my_entry_correct", args=["dose", fixed.pk]),
                       _correct_post(token="t-cl")).status_code == 403
    assert Dose.objects.current().get().pk == fixed.pk
