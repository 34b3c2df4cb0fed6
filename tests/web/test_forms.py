"""Every form through the web: the message beside the field, the input kept, nothing saved
half-way, one record for a retried submission."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from speciosa.clinic.models import Assessment, AuditEntry, DiaryDay, Dose, LabResult, Note

pytestmark = pytest.mark.django_db


def _local(days_ago=0, hours_ago=1):
    t = timezone.localtime() - dt.timedelta(days=days_ago, hours=hours_ago)
    return t.strftime("%Y-%m-%dT%H:%M")


def _diary_post(**over):
    data = {"token": over.pop("token", "t-diary"), "doses-TOTAL_FORMS": "3", "doses-INITIAL_FORMS": "0",
            "doses-MIN_NUM_FORMS": "0", "doses-MAX_NUM_FORMS": "12",
            "doses-0-time": "00:01", "doses-0-amount": "2", "doses-0-unit": "g",
            "doses-1-unit": "g", "doses-2-unit": "g"}
    data.update(over)
    return data


def test_the_diary_form_saves_and_a_double_tap_stores_one_diary(clinic, login):
    client = login(clinic.patient_a.user)
    url = reverse("diary_today")
    r1 = client.post(url, _diary_post(craving="5"))
    r2 = client.post(url, _diary_post(craving="5"))
    assert r1.status_code == 302 and r2.status_code == 302
    assert Dose.objects.count() == 1 and DiaryDay.objects.count() == 1
    assert Assessment.objects.get(instrument="craving-nrs").total == 5


def test_text_where_a_number_belongs_is_refused_beside_the_field(clinic, login):
    client = login(clinic.patient_a.user)
    r = client.post(reverse("diary_today"), _diary_post(**{"doses-0-amount": "two"}))
    assert r.status_code == 200
    assert "Enter a number" in r.content.decode()
    assert Dose.objects.count() == 0


def test_a_craving_of_11_is_refused_and_the_rest_is_kept(clinic, login):
    client = login(clinic.patient_a.user)
    r = client.post(reverse("diary_today"), _diary_post(craving="11", side_effect_other="dizzy"))
    html = r.content.decode()
    assert r.status_code == 200 and "Select a valid choice" in html
    assert 'value="dizzy"' in html
    assert Dose.objects.count() == 0


def test_a_diary_for_a_future_day_is_not_offered(clinic, login):
    client = login(clinic.patient_a.user)
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    assert client.get(reverse("diary_day", args=[tomorrow])).status_code == 404


def test_opening_todays_diary_again_says_it_will_add_to_it(clinic, login):
    client = login(clinic.patient_a.user)
    client.post(reverse("diary_today"), _diary_post())
    page = client.get(reverse("diary_today")).content.decode()
    assert "already wrote today" in page


def _lab_post(**over):
    data = {"token": over.pop("token", "t-lab"), "lab": "prolactin", "collected_at": _local(1),
            "value": "18", "unit": "ng/mL"}
    data.update(over)
    return data


def test_a_lab_without_a_unit_is_refused_beside_the_unit(clinic, login):
    client = login(clinic.clinician_a)
    r = client.post(reverse("lab_new", args=[clinic.patient_a.pk]), _lab_post(unit=""))
    assert r.status_code == 200 and "Give the unit" in r.content.decode()
    assert LabResult.objects.count() == 0


def test_an_implausible_lab_asks_for_confirmation_then_stores_it(clinic, login):
    client = login(clinic.clinician_a)
    url = reverse("lab_new", args=[clinic.patient_a.pk])
    r = client.post(url, _lab_post(value="90000"))
    assert r.status_code == 200 and "confirmed_unusual" in r.content.decode()
    assert LabResult.objects.count() == 0
    r = client.post(url, _lab_post(value="90000", confirmed_unusual="on"))
    assert r.status_code == 302 and LabResult.objects.get().confirmed_unusual


def test_a_lab_result_appears_on_the_patient_page_with_its_flag(clinic, login):
    client = login(clinic.clinician_a)
    client.post(reverse("lab_new", args=[clinic.patient_a.pk]), _lab_post(value="40"))
    page = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    assert "40 ng/mL" in page and "high" in page


def test_a_cows_with_a_pupil_score_of_3_is_refused(clinic, login):
    from speciosa.knowledge import instruments

    cows = instruments.get_instrument("cows")
    data = {"token": "t-cows"} | {f"item-{i.id}": str(i.allowed[0]) for i in cows.items}
    data["item-pupil"] = "3"
    client = login(clinic.clinician_a)
    r = client.post(reverse("assessment_new", args=[clinic.patient_a.pk, "cows"]), data)
    assert r.status_code == 200 and "Select a valid choice" in r.content.decode()
    assert Assessment.objects.count() == 0


def test_a_cows_with_a_measured_pulse_is_scored_from_the_pulse(clinic, login):
    from speciosa.knowledge import instruments

    cows = instruments.get_instrument("cows")
    data = {"token": "t-cows2", "pulse_bpm": "105"} | {f"item-{i.id}": "0" for i in cows.items if i.id != "pulse"}
    client = login(clinic.clinician_a)
    r = client.post(reverse("assessment_new", args=[clinic.patient_a.pk, "cows"]), data)
    assert r.status_code == 302
    a = Assessment.objects.get()
    assert a.items["pulse"] == 2 and a.total == 2


def test_an_empty_note_is_refused(clinic, login):
    client = login(clinic.clinician_a)
    r = client.post(reverse("note_new", args=[clinic.patient_a.pk]), {"token": "n1", "text": ""})
    assert r.status_code == 200 and Note.objects.count() == 0


def test_a_note_with_markup_is_shown_as_text(clinic, login):
    client = login(clinic.clinician_a)
    client.post(reverse("note_new", args=[clinic.patient_a.pk]), {"token": "n2", "text": "<script>alert(1)</script>"})
    page = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_correcting_a_lab_through_the_page_keeps_the_history(clinic, login):
    client = login(clinic.clinician_a)
    client.post(reverse("lab_new", args=[clinic.patient_a.pk]), _lab_post(value="40"))
    lab = LabResult.objects.get()
    url = reverse("record_correct", args=[clinic.patient_a.pk, "lab", lab.pk])
    r = client.post(url, {"token": "c1", "value": "14", "reason": ""})
    assert r.status_code == 200 and LabResult.objects.count() == 1
    r = client.post(url, {"token": "c1", "value": "14", "reason": "wrong sample"})
    assert r.status_code == 302
    history = client.get(r["Location"]).content.decode()
    assert "40 ng/mL" in history and "14 ng/mL" in history and "wrong sample" in history
    assert AuditEntry.objects.filter(action="correct", reason="wrong sample").count() == 1


def test_opening_a_patient_record_is_audited(clinic, login):
    client = login(clinic.clinician_a)
    client.get(reverse("patient_detail", args=[clinic.patient_a.pk]))
    entry = AuditEntry.objects.get(action="view")
    assert entry.patient == clinic.patient_a and entry.user == clinic.clinician_a


def test_state_changing_requests_need_the_csrf_token(clinic, verified_login_of):
    from django.test import Client

    client = verified_login_of(Client(enforce_csrf_checks=True), clinic.clinician_a)
    r = client.post(reverse("note_new", args=[clinic.patient_a.pk]), {"token": "n3", "text": "x"})
    assert r.status_code == 403 and Note.objects.count() == 0


def test_the_diary_day_is_the_day_at_the_patients_clinic(clinic, login):
    import zoneinfo

    site = clinic.patient_a.site
    site.time_zone = "Pacific/Kiritimati"  # UTC+14: often a day ahead of the server
    site.save()
    client = login(clinic.patient_a.user)
    r = client.post(reverse("diary_today"), _diary_post(craving="3", **{"doses-0-amount": "", "doses-0-time": ""}))
    assert r.status_code == 302
    expected = timezone.now().astimezone(zoneinfo.ZoneInfo("Pacific/Kiritimati")).date()
    assert DiaryDay.objects.get().day == expected


def test_ticked_boxes_and_chosen_scores_stay_chosen_when_the_diary_is_refused(clinic, login):
    client = login(clinic.patient_a.user)
    r = client.post(reverse("diary_today"), _diary_post(**{
        "craving": "4", "side_effects": ["constipation", "itching"], "substances": ["alcohol"],
        "sows-yawning": "3", "doses-0-amount": "-1"}))
    html = r.content.decode()
    assert r.status_code == 200 and "more than 0" in html
    assert 'name="craving" value="4" id="id_craving_4" checked' in html
    assert 'value="constipation" id="id_side_effects_' in html
    assert html.count('name="side_effects"') > 2 and html.count(" checked>") >= 5
    assert 'name="sows-yawning" value="3" id="id_sows-yawning_3" checked' in html
    assert 'name="craving" value="5" id="id_craving_5">' in html  # the others are not
