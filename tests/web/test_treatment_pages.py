"""Issue 19 item 4: the treatment episode pages (start, change, stop, injection) and their
section on the patient page; hostile input, another patient's ids, every role."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone
from tests.conftest import form_token

from speciosa.clinic import treatment
from speciosa.clinic.models import TreatmentEpisode


def days_ago(n):
    return (timezone.localdate() - dt.timedelta(days=n)).isoformat()


def new_post(token="e1", **over):
    data = {"token": form_token(token), "drug": "methadone", "formulation": "oral-liquid",
            "dose_mg": "60", "dispensing_clinic": "Harbour Street OTP",
            "start_date": days_ago(14)}
    data.update(over)
    return data


@pytest.mark.django_db
def test_a_methadone_episode_is_started_and_shown(clinic, login):
    client = login(clinic.clinician_a)
    url = reverse("episode_new", args=[clinic.patient_a.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, new_post()).status_code == 302
    assert client.post(url, new_post()).status_code == 302  # the double tap
    ep = TreatmentEpisode.objects.get()
    assert (ep.drug, ep.dose_mg, ep.dispensing_clinic) == ("methadone", 60, "Harbour Street OTP")
    page = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    html = page.split('id="treatment"')[1].split("</section>")[0]
    section = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "Methadone oral liquid" in section and "60 mg per day" in section
    assert "dispensed by Harbour Street OTP" in section


@pytest.mark.django_db
@pytest.mark.parametrize(("over", "field", "text"), [
    ({"dose_mg": ""}, "dose_mg", "daily methadone dose"),
    ({"dose_mg": "0"}, "dose_mg", "more than 0"),
    ({"dose_mg": "5000"}, "dose_mg", "typing errors"),
    ({"formulation": "xr-injection"}, "formulation", "Unknown formulation"),
    ({"drug": "heroin"}, "drug", "buprenorphine, methadone or naltrexone"),
    ({"dispensing_clinic": ""}, "dispensing_clinic", "dispenses"),
    ({"injection_date": days_ago(3)}, "injection_date", "extended-release"),
    ({"start_date": ""}, "start_date", "required"),
])
def test_bad_input_gets_its_message_and_stores_nothing(clinic, login, over, field, text):
    client = login(clinic.clinician_a)
    response = client.post(reverse("episode_new", args=[clinic.patient_a.pk]), new_post(**over))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors and text in " ".join(errors[field]), errors
    assert not TreatmentEpisode.objects.exists()


@pytest.mark.django_db
def test_methadone_above_the_site_level_asks_to_confirm_then_stores(clinic, login):
    client = login(clinic.clinician_a)
    url = reverse("episode_new", args=[clinic.patient_a.pk])
    response = client.post(url, new_post(dose_mg="130"))
    assert response.status_code == 200 and "site convention" in response.content.decode()
    assert b'name="confirmed_dose"' in response.content and not TreatmentEpisode.objects.exists()
    assert client.post(url, new_post("e2", dose_mg="130", confirmed_dose="on")).status_code == 302
    assert TreatmentEpisode.objects.get().confirmed_dose


@pytest.mark.django_db
def test_an_overlapping_episode_is_refused_on_the_page(clinic, login):
    client = login(clinic.clinician_a)
    url = reverse("episode_new", args=[clinic.patient_a.pk])
    client.post(url, new_post())
    response = client.post(url, new_post("e2", start_date=days_ago(3)))
    assert "already runs from" in response.context["form"].errors["drug"][0]
    assert TreatmentEpisode.objects.count() == 1


@pytest.mark.django_db
def test_change_stop_and_injection(clinic, login):
    client = login(clinic.clinician_a)
    ep = treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "buprenorphine", "formulation": "xr-injection", "dose_mg": "300",
        "start": timezone.localdate() - dt.timedelta(days=40),
        "injection_dates": [days_ago(40)]})
    pid = clinic.patient_a.pk
    response = client.post(reverse("episode_injection", args=[pid, ep.pk]),
                           {"token": form_token("i"), "day": days_ago(10)})
    assert response.status_code == 302
    ep = TreatmentEpisode.objects.current().get()
    assert ep.injection_dates == [days_ago(40), days_ago(10)]
    response = client.post(reverse("episode_change", args=[pid, ep.pk]), {
        "token": form_token("c"), "formulation": "xr-injection", "dose_mg": "100",
        "at_date": days_ago(0), "reason": "maintenance dose"})
    assert response.status_code == 302
    new = TreatmentEpisode.objects.current().get(status="active")
    assert new.dose_mg == 100 and new.follows.dose_mg == 300
    early = client.post(reverse("episode_stop", args=[pid, new.pk]), {
        "token": form_token("s1"), "at_date": days_ago(60), "stop_reason": "x"})
    assert "before the start" in early.context["form"].errors["at_date"][0]
    done = client.post(reverse("episode_stop", args=[pid, new.pk]), {
        "token": form_token("s2"), "at_date": days_ago(0), "stop_reason": "completed plan"})
    assert done.status_code == 302
    assert not TreatmentEpisode.objects.current().filter(status="active").exists()
    page = client.get(reverse("patient_detail", args=[pid])).content.decode()
    assert "Past episodes (2)" in page


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["clinician_a", "clinician_b", "patient_a", "researcher",
                                 "admin", "anonymous"])
def test_every_role_against_the_episode_pages(clinic, client, login, who):
    theirs = treatment.record_episode(clinic.clinician_b, clinic.patient_b, {
        "drug": "naltrexone", "formulation": "oral-tablet", "dose_mg": "50",
        "start": timezone.localdate()})
    if who != "anonymous":
        user = getattr(clinic, who)
        login(getattr(user, "user", user))
    pid = clinic.patient_b.pk
    urls = [reverse("episode_new", args=[pid])] + [
        reverse(name, args=[pid, theirs.pk]) for name in ("episode_change", "episode_stop",
                                                         "episode_injection")]
    # team A's patient's address with team B's episode id
    urls += [reverse(name, args=[clinic.patient_a.pk, theirs.pk])
             for name in ("episode_change", "episode_stop", "episode_injection")]
    for url in urls:
        for method in ("get", "post"):
            response = getattr(client, method)(url, {"token": form_token(f"{who}{url}"),
                                                     "at_date": days_ago(0),
                                                     "stop_reason": "x", "day": days_ago(0)}
                                               if method == "post" else None)
            code = response.status_code
            if who == "anonymous":
                assert code == 302 and response["Location"].startswith("/login/")
            elif who == "clinician_b" and f"/patients/{pid}/" in url:
                assert code in (200, 302), (url, code)
            else:
                assert code in (403, 404), (who, url, code)
                assert b"Reyes" not in response.content
    if who != "clinician_b":
        assert TreatmentEpisode.objects.get().status == "active"


@pytest.mark.django_db
def test_an_episode_is_corrected_with_its_history_or_withdrawn(clinic, login):
    ep = treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "buprenorphine", "formulation": "sublingual", "dose_mg": "8",
        "start": timezone.localdate() - dt.timedelta(days=5)})
    client = login(clinic.clinician_a)
    pid = clinic.patient_a.pk
    url = reverse("episode_correct", args=[pid, ep.pk])
    page = client.get(url)
    assert page.status_code == 200 and b'value="8' in page.content
    bad = client.post(url, {"token": form_token("c0"), "drug": "buprenorphine",
                            "formulation": "oral-liquid", "dose_mg": "16",
                            "start_date": days_ago(5), "status": "active", "reason": "typo"})
    assert "Unknown formulation" in bad.context["form"].errors["formulation"][0]
    done = client.post(url, {"token": form_token("c1"), "drug": "buprenorphine",
                             "formulation": "buccal-film", "dose_mg": "16",
                             "start_date": days_ago(5), "status": "active",
                             "reason": "it was the film, 16 mg"})
    assert done.status_code == 302
    new = TreatmentEpisode.objects.current().get()
    assert (new.formulation, new.dose_mg, new.replaces_id, new.change_reason) == (
        "buccal-film", 16, ep.pk, "it was the film, 16 mg")
    history = client.get(reverse("record_history", args=[pid, "episode", new.pk]))
    text = history.content.decode()
    assert history.status_code == 200 and "16 mg per day" in text and "8 mg per day" in text
    gone = client.post(reverse("episode_correct", args=[pid, new.pk]), {
        "token": form_token("c2"), "retract": "on", "reason": "wrong patient"})
    assert gone.status_code == 302 and not TreatmentEpisode.objects.current().exists()


@pytest.mark.django_db
def test_medications_and_episodes_are_on_the_timeline_and_in_the_api(clinic, login):
    from speciosa.clinic import medications

    medications.record_medication(clinic.clinician_a, clinic.patient_a, {
        "drug": "alprazolam", "name": "Xanax", "start": timezone.localdate() - dt.timedelta(days=3)})
    ep = treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "buprenorphine", "formulation": "sublingual", "dose_mg": "16",
        "start": timezone.localdate() - dt.timedelta(days=2)})
    client = login(clinic.clinician_a)
    page = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    timeline = page.split("<h2>Timeline</h2>")[1]
    assert "Medication: Xanax" in timeline and "Treatment: Buprenorphine sublingual tablet" in timeline
    assert reverse("episode_correct", args=[clinic.patient_a.pk, ep.pk]) in timeline
    from rest_framework.test import APIClient

    api = APIClient(HTTP_HOST="localhost")
    api.force_authenticate(clinic.clinician_a)
    rows = api.get(f"/api/v1/patients/{clinic.patient_a.pk}/timeline/").json()["results"]
    kinds = {(r["kind"], r["record_kind"]) for r in rows}
    assert {("medication", "medication"), ("treatment", "episode")} <= kinds


@pytest.mark.django_db
def test_an_episode_is_started_from_the_latest_decision(clinic, login):
    from speciosa.education.models import Decision

    chosen = Decision.objects.create(patient=clinic.patient_a, choice="xr-naltrexone",
                                     reason="wants a monthly injection",
                                     clinician=clinic.clinician_a, patient_agreed_name="Maya Quinn",
                                     decided_at=timezone.now() - dt.timedelta(days=1))
    client = login(clinic.clinician_a)
    pid = clinic.patient_a.pk
    detail = client.get(reverse("patient_detail", args=[pid])).content.decode()
    link = f"{reverse('episode_new', args=[pid])}?decision={chosen.pk}"
    assert link in detail
    page = client.get(link)
    form = page.context["form"]
    assert (form.initial["drug"], form.initial["formulation"], form.initial["decision"]) == (
        "naltrexone", "xr-injection", chosen.pk)
    assert "Carries out the decision" in page.content.decode()
    response = client.post(reverse("episode_new", args=[pid]), {
        "token": form_token("d1"), "drug": "naltrexone", "formulation": "xr-injection",
        "dose_mg": "380", "start_date": days_ago(0), "injection_date": days_ago(0),
        "decision": str(chosen.pk)})
    assert response.status_code == 302
    assert TreatmentEpisode.objects.get().decision == chosen
    assert link not in client.get(reverse("patient_detail", args=[pid])).content.decode()
    # another patient's decision id does not prefill anything
    other = Decision.objects.create(patient=clinic.patient_b, choice="methadone", reason="x",
                                    clinician=clinic.clinician_b, patient_agreed_name="Omar",
                                    decided_at=timezone.now())
    page = client.get(f"{reverse('episode_new', args=[pid])}?decision={other.pk}")
    assert page.status_code == 200 and "decision" not in page.context["form"].initial
    assert b"Omar" not in page.content
