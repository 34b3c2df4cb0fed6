"""Issue 19: the medication pages (clinician: list on the patient page, add, change dose,
stop, correct, confirm, review; patient: "My medicines"). Happy paths, hostile input, another
patient's ids and every role."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from tests.conftest import form_token

from speciosa.clinic import medications
from speciosa.clinic.models import AuditEntry, Medication, MedicationReview, Source


def today():
    return timezone.localdate()


def add_post(token="t-med", **over) -> dict:
    data = {"token": form_token(token), "drug_name": "Subutex", "strength": "8",
            "strength_unit": "mg", "form": "sublingual-tablet", "dose_amount": "2",
            "dose_unit": "tablet", "frequency": "once daily", "route": "sublingual",
            "start_date": (today() - dt.timedelta(days=10)).isoformat(), "status": "active",
            "prescriber": "clinic", "indication": "opioid use disorder"}
    data.update(over)
    return data


def bup(clinic, patient=None, **kw):
    patient = patient or clinic.patient_a
    clinician = clinic.clinician_a if patient == clinic.patient_a else clinic.clinician_b
    data = {"drug": "buprenorphine", "dose_amount": "16", "dose_unit": "mg",
            "start": today() - dt.timedelta(days=10), "prescriber": "clinic"}
    data.update(kw)
    return medications.record_medication(clinician, patient, data)


@pytest.mark.django_db
def test_a_brand_from_the_list_is_coded_and_shown_on_the_patient_page(clinic, login):
    client = login(clinic.clinician_a)
    url = reverse("medication_new", args=[clinic.patient_a.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b'<datalist id="drug-table">' in page.content and b'value="Subutex"' in page.content
    response = client.post(url, add_post())
    assert response.status_code == 302
    med = Medication.objects.get(patient=clinic.patient_a)
    assert (med.drug, med.name, med.rxnorm, med.dose_amount, med.source) == (
        "buprenorphine", "Subutex", "1819", 2, Source.CLINICIAN)
    assert AuditEntry.objects.filter(model="Medication", object_id=med.pk, action="create").exists()
    detail = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    assert "Subutex" in detail and "not coded" not in detail.split('id="medications"')[1][:3000]


@pytest.mark.django_db
def test_free_text_is_stored_not_coded_and_marked_so(clinic, login):
    client = login(clinic.clinician_a)
    client.post(reverse("medication_new", args=[clinic.patient_a.pk]),
                add_post(drug_name="Grandma's tonic", strength="", strength_unit="", form="",
                         dose_amount="", dose_unit="", route=""))
    med = Medication.objects.get(patient=clinic.patient_a)
    assert (med.drug, med.name, med.coded) == ("", "Grandma's tonic", False)
    detail = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    section = detail.split('id="medications"')[1].split("</section>")[0]
    assert "Grandma&#x27;s tonic" in section and "not coded" in section


@pytest.mark.django_db
def test_a_double_post_stores_one_medication(clinic, login):
    client = login(clinic.clinician_a)
    url = reverse("medication_new", args=[clinic.patient_a.pk])
    assert client.post(url, add_post("same")).status_code == 302
    assert client.post(url, add_post("same")).status_code == 302
    assert Medication.objects.filter(patient=clinic.patient_a).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("over", "field", "text"), [
    ({"strength_unit": "mgs"}, "strength_unit", "Unknown unit &#x27;mgs&#x27;"),
    ({"dose_unit": "spoon"}, "dose_unit", "Unknown unit &#x27;spoon&#x27;"),
    ({"route": "ear"}, "route", "Unknown route"),
    ({"end_date": "2000-01-01", "status": "stopped"}, "end_date", "before the start"),
    ({"start_date": ""}, "start_date", "Give the date it was started"),
    ({"strength": "8,5"}, "strength", "point"),
    ({"strength": "-2"}, "strength", "more than 0"),
    ({"drug_name": ""}, "drug_name", "required"),
    ({"token": "made-up"}, None, "not made by this server"),
])
def test_bad_input_gets_its_message_and_stores_nothing(clinic, login, over, field, text):
    client = login(clinic.clinician_a)
    data = add_post()
    data.update(over)  # a "token" here is sent as it is (not signed)
    response = client.post(reverse("medication_new", args=[clinic.patient_a.pk]), data)
    assert response.status_code == 200
    body = response.content.decode()
    assert text in body, body[body.find("error"):][:400]
    if field:
        assert f'id="id_{field}"' in body
        errors = response.context["form"].errors
        assert field in errors, errors
    assert not Medication.objects.exists()


@pytest.mark.django_db
def test_a_duplicate_overlapping_entry_is_refused(clinic, login):
    bup(clinic)
    client = login(clinic.clinician_a)
    response = client.post(reverse("medication_new", args=[clinic.patient_a.pk]), add_post())
    assert "already on the list" in response.context["form"].errors["drug_name"][0]
    assert Medication.objects.count() == 1


@pytest.mark.django_db
def test_change_dose_starts_a_course_following_the_old(clinic, login):
    med = bup(clinic)
    client = login(clinic.clinician_a)
    url = reverse("medication_change", args=[clinic.patient_a.pk, med.pk])
    page = client.get(url)
    assert page.status_code == 200 and b'value="16' in page.content
    response = client.post(url, {"token": form_token("chg"), "dose_amount": "12",
                                 "dose_unit": "mg", "frequency": "once daily",
                                 "at_date": today().isoformat(), "reason": "sedation"})
    assert response.status_code == 302
    new = Medication.objects.current().get(patient=clinic.patient_a, status="active")
    old = new.follows
    assert (new.dose_amount, old.dose_amount, old.status, old.end) == (12, 16, "stopped", today())
    # a retry sends the same form again (other values with the same token are refused:
    # tests/web/test_adversarial_form_replay.py)
    again = client.post(url, {"token": form_token("chg"), "dose_amount": "12", "dose_unit": "mg",
                              "frequency": "once daily", "at_date": today().isoformat(),
                              "reason": "sedation"})
    assert again.status_code == 302
    assert Medication.objects.filter(patient=clinic.patient_a, dose_amount=12).count() == 1


@pytest.mark.django_db
def test_stop_with_reason_and_time_and_stop_before_start_refused(clinic, login):
    med = bup(clinic)
    client = login(clinic.clinician_a)
    url = reverse("medication_stop", args=[clinic.patient_a.pk, med.pk])
    early = (today() - dt.timedelta(days=30)).isoformat()
    response = client.post(url, {"token": form_token("s1"), "at_date": early,
                                 "stop_reason": "side effects", "status": "stopped"})
    assert "before the start" in response.context["form"].errors["at_date"][0]
    assert Medication.objects.current().get().status == "active"
    response = client.post(url, {"token": form_token("s2"), "at_date": today().isoformat(),
                                 "at_time": "00:00", "stop_reason": "side effects",
                                 "status": "stopped"})
    assert response.status_code == 302
    stopped = Medication.objects.current().get()
    assert (stopped.status, stopped.stop_reason, stopped.end) == ("stopped", "side effects", today())
    assert stopped.end_at is not None and stopped.replaces_id == med.pk
    assert AuditEntry.objects.filter(object_id=stopped.pk, action="stop").exists()


@pytest.mark.django_db
def test_correct_keeps_the_history(clinic, login):
    med = bup(clinic)
    client = login(clinic.clinician_a)
    url = reverse("medication_correct", args=[clinic.patient_a.pk, med.pk])
    page = client.get(url)
    assert page.status_code == 200 and b'value="buprenorphine"' in page.content
    post = add_post("c1", drug_name="buprenorphine", dose_amount="8", dose_unit="mg",
                    start_date=med.start.isoformat(), reason="typed 16 for 8")
    assert client.post(url, post).status_code == 302
    new = Medication.objects.current().get()
    assert (new.dose_amount, new.replaces_id, new.change_reason) == (8, med.pk, "typed 16 for 8")
    history = client.get(reverse("record_history", args=[clinic.patient_a.pk, "medication", new.pk]))
    assert history.status_code == 200 and history.content.count(b"buprenorphine") >= 2
    # withdrawing needs the reason only
    url = reverse("medication_correct", args=[clinic.patient_a.pk, new.pk])
    assert client.post(url, {"token": form_token("c2"), "retract": "on",
                             "reason": "wrong patient"}).status_code == 302
    assert not Medication.objects.current().exists()


@pytest.mark.django_db
def test_a_medication_review_says_reconciled_on_by(clinic, login):
    bup(clinic)
    client = login(clinic.clinician_a)
    url = reverse("medication_review", args=[clinic.patient_a.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"token": form_token("r1"), "note": "with the patient"}).status_code == 302
    assert client.post(url, {"token": form_token("r1"), "note": "with the patient"}).status_code == 302
    review = MedicationReview.objects.get()
    assert review.medications == [Medication.objects.get().pk]
    detail = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    assert f"Reconciled on {timezone.localtime(review.at):%-d %b %Y}" in detail
    assert "by Ada Okafor" in detail


@pytest.mark.django_db
def test_the_patient_adds_a_supplement_and_the_clinician_confirms_it(clinic, login, client):
    login(clinic.patient_a.user)
    url = reverse("my_medicines")
    page = client.get(url)
    assert page.status_code == 200 and b"Add something I take" in page.content
    post = {"token": form_token("p1"), "drug_name": "St John's wort", "category": "supplement",
            "dose_amount": "1", "dose_unit": "capsule", "frequency": "once a day",
            "start_date": (today() - dt.timedelta(days=3)).isoformat()}
    assert client.post(url, post).status_code == 302
    assert client.post(url, post).status_code == 302  # the double tap
    med = Medication.objects.get()
    assert (med.source, med.prescriber, med.category, med.needs_confirmation) == (
        Source.PATIENT, "none", "supplement", True)
    assert b"waiting for your clinician to confirm" in client.get(url).content

    login(clinic.clinician_a)
    worklist = client.get(reverse("worklist")).content.decode()
    assert "Medicines to confirm" in worklist and "St John&#x27;s wort" in worklist
    detail = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    assert "1 to confirm" in detail and "not yet confirmed" in detail
    confirm = reverse("medication_confirm", args=[clinic.patient_a.pk, med.pk])
    assert client.post(confirm, {"token": form_token("cf")}).status_code == 302
    done = Medication.objects.current().get()
    assert done.confirmed_by == clinic.clinician_a and not done.needs_confirmation
    again = client.post(confirm, {"token": form_token("cf2")})
    assert again.status_code == 400  # the old version: changed since
    assert Medication.objects.filter(confirmed_at__isnull=False).count() == 1
    assert "Medicines to confirm" not in client.get(reverse("worklist")).content.decode()

    login(clinic.patient_a.user)
    assert b"confirmed by your clinician" in client.get(url).content


@pytest.mark.django_db
def test_a_patient_cannot_add_a_clinic_prescription_or_bad_dates(clinic, login):
    client = login(clinic.patient_a.user)
    post = {"token": form_token("p2"), "drug_name": "melatonin", "category": "supplement",
            "start_date": (today() + dt.timedelta(days=5)).isoformat()}
    response = client.post(reverse("my_medicines"), post)
    assert "in the future" in response.context["form"].errors["start_date"][0]
    assert not Medication.objects.exists()


@pytest.mark.django_db
def test_the_clinician_corrects_and_confirms_a_patient_entry_in_one_go(clinic, login):
    med = medications.record_medication(clinic.patient_a.user, clinic.patient_a,
                                        {"name": "sertraline", "start": today(),
                                         "prescriber": "outside"})
    client = login(clinic.clinician_a)
    url = reverse("medication_correct", args=[clinic.patient_a.pk, med.pk])
    post = add_post("cc", drug_name="sertraline", strength="50", strength_unit="mg",
                    form="tablet", dose_amount="1", dose_unit="tablet", route="oral",
                    start_date=today().isoformat(), prescriber="outside", indication="",
                    reason="dose from the pack", confirm="on")
    assert client.post(url, post).status_code == 302
    new = Medication.objects.current().get()
    assert (new.drug, new.strength, new.source, new.confirmed_by) == (
        "sertraline", 50, Source.PATIENT, clinic.clinician_a)


# --------------------------------------------------------------------------- access


def _urls(patient, med):
    pid = patient.pk
    return {
        "get": [reverse("medication_new", args=[pid]), reverse("medication_review", args=[pid]),
                reverse("medication_change", args=[pid, med.pk]),
                reverse("medication_stop", args=[pid, med.pk]),
                reverse("medication_correct", args=[pid, med.pk])],
        "post": [reverse("medication_confirm", args=[pid, med.pk])],
    }


@pytest.mark.django_db
def test_another_patients_medication_under_my_patients_url_is_not_found(clinic, login):
    theirs = bup(clinic, clinic.patient_b)
    client = login(clinic.clinician_a)
    pid = clinic.patient_a.pk
    for name in ("medication_change", "medication_stop", "medication_correct"):
        url = reverse(name, args=[pid, theirs.pk])
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"token": form_token("x"), "at_date": today().isoformat(),
                                 "stop_reason": "x", "reason": "x"}).status_code == 404
    assert client.post(reverse("medication_confirm", args=[pid, theirs.pk]),
                       {"token": form_token("y")}).status_code == 404
    assert Medication.objects.count() == 1 and Medication.objects.get().pk == theirs.pk


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["clinician_a", "patient_a", "patient_b", "researcher", "admin",
                                 "anonymous"])
def test_every_role_against_the_medication_pages(clinic, client, login, who):
    mine = bup(clinic)
    theirs = bup(clinic, clinic.patient_b)
    if who != "anonymous":
        user = getattr(clinic, who)
        login(getattr(user, "user", user))
    for patient, med in ((clinic.patient_a, mine), (clinic.patient_b, theirs)):
        urls = _urls(patient, med)
        for method, url in [("get", u) for u in urls["get"]] + [("post", u) for u in urls["post"]]:
            response = getattr(client, method)(url, {"token": form_token(f"{who}{url}")}
                                               if method == "post" else None)
            code = response.status_code
            if who == "anonymous":
                assert code == 302 and response["Location"].startswith("/login/"), url
            elif who == "clinician_a" and patient == clinic.patient_a:
                assert code in (200, 302, 400), (url, code)
            else:
                assert code in (403, 404), (who, url, code)
                assert patient.family_name.encode() not in response.content
    my = client.get(reverse("my_medicines"))
    if who.startswith("patient"):
        assert my.status_code == 200
        other = clinic.patient_b if who == "patient_a" else clinic.patient_a
        assert b"buprenorphine" in my.content and other.family_name.encode() not in my.content
    elif who == "anonymous":
        assert my.status_code == 302
    else:
        assert my.status_code == 403
    assert Medication.objects.filter(confirmed_at__isnull=False).count() == 0


@pytest.mark.django_db
def test_amounts_and_forms_are_shown_as_people_write_them(clinic, login):
    bup(clinic, strength="100", strength_unit="mcg", dose_amount="0.5", dose_unit="tablet",
        form="sublingual-tablet", route="sublingual")
    client = login(clinic.clinician_a)
    detail = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    section = " ".join(detail.split('id="medications"')[1].split("</section>")[0].split())
    assert "100 mcg" in section, section[:1500]
    assert "0.5 tablet" in section, section[:2000]
    assert "0.5 tablet" in section and "1E+2" not in section
    assert "sublingual tablet · under the tongue" in section


@pytest.mark.django_db
def test_the_patient_stops_a_medicine_they_added_but_not_a_prescription(clinic, login):
    mine = medications.record_medication(clinic.patient_a.user, clinic.patient_a, {
        "name": "melatonin", "start": today() - dt.timedelta(days=9), "prescriber": "none"})
    prescribed = bup(clinic)
    theirs = medications.record_medication(clinic.patient_b.user, clinic.patient_b, {
        "name": "zinc", "start": today(), "prescriber": "none"})
    client = login(clinic.patient_a.user)
    page = client.get(reverse("my_medicines")).content.decode()
    assert reverse("my_medicine_stop", args=[mine.pk]) in page
    assert reverse("my_medicine_stop", args=[prescribed.pk]) not in page
    for other in (prescribed, theirs):
        url = reverse("my_medicine_stop", args=[other.pk])
        assert client.get(url).status_code == 404
        assert client.post(url, {"token": form_token("x"), "at_date": today().isoformat(),
                                 "stop_reason": "x"}).status_code == 404
    url = reverse("my_medicine_stop", args=[mine.pk])
    early = client.post(url, {"token": form_token("s1"), "stop_reason": "sleep is fine",
                              "at_date": (today() - dt.timedelta(days=20)).isoformat()})
    assert "before the start" in early.context["form"].errors["at_date"][0]
    done = client.post(url, {"token": form_token("s2"), "stop_reason": "sleep is fine",
                             "at_date": today().isoformat()})
    assert done.status_code == 302
    stopped = Medication.objects.current().get(name="melatonin")
    assert (stopped.status, stopped.stop_reason, stopped.entered_by) == (
        "stopped", "sleep is fine", clinic.patient_a.user)
    assert Medication.objects.current().get(pk=prescribed.pk).status == "active"
    assert Medication.objects.get(pk=theirs.pk).status == "active"
    login(clinic.clinician_a)
    assert client.get(reverse("my_medicine_stop", args=[mine.pk])).status_code == 403


@pytest.mark.django_db
def test_a_paused_medication_can_be_stopped_but_not_changed(clinic, login):
    med = bup(clinic, status="on-hold")
    client = login(clinic.clinician_a)
    detail = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    assert reverse("medication_stop", args=[clinic.patient_a.pk, med.pk]) in detail
    assert reverse("medication_change", args=[clinic.patient_a.pk, med.pk]) not in detail
    response = client.post(reverse("medication_stop", args=[clinic.patient_a.pk, med.pk]), {
        "token": form_token("s"), "at_date": today().isoformat(), "stop_reason": "not restarted",
        "status": "stopped"})
    assert response.status_code == 302
    assert Medication.objects.current().get().status == "stopped"
