"""``/me/diary/`` and ``/me/diary/<day>/``: the patient's daily diary (doses, craving,
withdrawal, side effects, other substances). The message stands beside the field, the
input is kept, nothing is saved half-way and a retried submission stores one diary."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from speciosa.clinic.models import Assessment, DiaryDay, Dose

from .conftest import diary_post

pytestmark = pytest.mark.django_db


def test_the_diary_form_saves_and_a_double_tap_stores_one_diary(clinic, login):
    client = login(clinic.patient_a.user)
    url = reverse("diary_today")
    r1 = client.post(url, diary_post(craving="5"))
    r2 = client.post(url, diary_post(craving="5"))
    assert r1.status_code == 302 and r2.status_code == 302
    assert r1["Location"] == reverse("me") + "?saved=1"
    assert Dose.objects.count() == 1 and DiaryDay.objects.count() == 1
    assert Assessment.objects.get(instrument="craving-nrs").total == 5


def test_a_diary_for_yesterday_is_stored_on_yesterday(clinic, login):
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    r = login(clinic.patient_a.user).post(reverse("diary_day", args=[yesterday.isoformat()]),
                                          diary_post(craving="2"))
    assert r.status_code == 302
    assert DiaryDay.objects.get().day == yesterday
    assert timezone.localtime(Dose.objects.get().taken_at).date() == yesterday


def test_text_where_a_number_belongs_is_refused_beside_the_field(clinic, login):
    client = login(clinic.patient_a.user)
    r = client.post(reverse("diary_today"), diary_post(**{"doses-0-amount": "two"}))
    assert r.status_code == 200
    assert "Enter a number" in r.content.decode()
    assert Dose.objects.count() == 0


def test_a_craving_of_11_is_refused_and_the_rest_is_kept(clinic, login):
    client = login(clinic.patient_a.user)
    r = client.post(reverse("diary_today"), diary_post(craving="11", side_effect_other="dizzy"))
    html = r.content.decode()
    assert r.status_code == 200 and "Select a valid choice" in html
    assert 'value="dizzy"' in html
    assert Dose.objects.count() == 0


def test_a_dose_without_its_time_says_to_give_the_time(clinic, login):
    r = login(clinic.patient_a.user).post(reverse("diary_today"),
                                          diary_post(**{"doses-0-time": ""}))
    assert r.status_code == 200 and "Give the time you took this dose." in r.content.decode()
    assert DiaryDay.objects.count() == 0


def test_a_diary_for_a_future_day_is_not_offered(clinic, login):
    client = login(clinic.patient_a.user)
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    assert client.get(reverse("diary_day", args=[tomorrow])).status_code == 404
    assert client.post(reverse("diary_day", args=[tomorrow]), diary_post()).status_code == 404
    assert DiaryDay.objects.count() == 0


@pytest.mark.parametrize("day", ["yesterday", "2026-02-30", "2026-13-01", "1-1-1"])
def test_a_day_that_is_not_a_date_is_not_found(clinic, login, day):
    assert login(clinic.patient_a.user).get(reverse("diary_day", args=[day])).status_code == 404


def test_opening_todays_diary_again_shows_what_is_recorded_and_offers_to_correct_it(clinic, login):
    client = login(clinic.patient_a.user)
    client.post(reverse("diary_today"), diary_post())
    page = client.get(reverse("diary_today")).content.decode()
    dose = Dose.objects.get()
    assert "Already in this day's diary" in page and "Kratom 2 g leaf" in page
    assert reverse("my_entry_correct", args=["dose", dose.pk]) in page
    assert "Correct it here instead of adding it again" in page


def test_a_diary_is_always_written_to_the_patients_own_record(clinic, login):
    # the URL names no patient: whatever is posted, the diary is the logged-in patient's
    r = login(clinic.patient_a.user).post(reverse("diary_today"),
                                          diary_post(patient=str(clinic.patient_b.pk)))
    assert r.status_code == 302
    assert DiaryDay.objects.get().patient == clinic.patient_a
    assert not Dose.objects.filter(patient=clinic.patient_b).exists()


def test_the_diary_day_is_the_day_at_the_patients_clinic(clinic, login):
    import zoneinfo

    site = clinic.patient_a.site
    site.time_zone = "Pacific/Kiritimati"  # UTC+14: often a day ahead of the server
    site.save()
    client = login(clinic.patient_a.user)
    r = client.post(reverse("diary_today"),
                    diary_post(craving="3", **{"doses-0-amount": "", "doses-0-time": ""}))
    assert r.status_code == 302
    expected = timezone.now().astimezone(zoneinfo.ZoneInfo("Pacific/Kiritimati")).date()
    assert DiaryDay.objects.get().day == expected


def test_ticked_boxes_and_chosen_scores_stay_chosen_when_the_diary_is_refused(clinic, login):
    client = login(clinic.patient_a.user)
    r = client.post(reverse("diary_today"), diary_post(**{
        "craving": "4", "side_effects": ["constipation", "itching"], "substances": ["alcohol"],
        "sows-yawning": "3", "doses-0-amount": "-1"}))
    html = r.content.decode()
    assert r.status_code == 200 and "more than 0" in html
    assert 'name="craving" value="4" id="id_craving_4" checked' in html
    assert 'value="constipation" id="id_side_effects_' in html
    assert html.count('name="side_effects"') > 2 and html.count(" checked>") >= 5
    assert 'name="sows-yawning" value="3" id="id_sows-yawning_3" checked' in html
    assert 'name="craving" value="5" id="id_craving_5">' in html  # the others are not
