"""``/patients/<id>/assessments/<instrument>/new/``: a clinician records a scored instrument."""

from __future__ import annotations

import pytest
from django.urls import reverse

from speciosa.clinic.models import Assessment

from .conftest import instrument_post, local_minute

pytestmark = pytest.mark.django_db


def _url(patient, instrument_id="cows"):
    return reverse("assessment_new", args=[patient.pk, instrument_id])


def test_a_phq9_is_scored_stored_once_and_shown_on_the_patient_page(clinic, login):
    from speciosa.knowledge import instruments

    items = {i.id: "1" for i in instruments.get_instrument("phq9").items}
    data = instrument_post("phq9", "t-phq9", **items) | {"note": "in clinic"}
    client = login(clinic.clinician_a)
    first = client.post(_url(clinic.patient_a, "phq9"), data)
    again = client.post(_url(clinic.patient_a, "phq9"), data)  # a double tap
    assert first.status_code == again.status_code == 302
    assert first["Location"] == reverse("patient_detail", args=[clinic.patient_a.pk])
    stored = Assessment.objects.get()
    assert (stored.instrument, stored.total, stored.band) == ("phq9", 9, "mild")
    assert stored.entered_by == clinic.clinician_a and stored.note == "in clinic"


def test_a_cows_with_a_measured_pulse_is_scored_from_the_pulse(clinic, login):
    data = instrument_post("cows", "t-cows2", pulse="0") | {"pulse_bpm": "105"}
    del data["item-pulse"]
    r = login(clinic.clinician_a).post(_url(clinic.patient_a), data)
    assert r.status_code == 302
    a = Assessment.objects.get()
    assert a.items["pulse"] == 2 and a.total == 2


def test_a_cows_with_a_pupil_score_of_3_is_refused(clinic, login):
    data = instrument_post("cows", "t-cows", pupil="3")
    r = login(clinic.clinician_a).post(_url(clinic.patient_a), data)
    assert r.status_code == 200 and "Select a valid choice" in r.content.decode()
    assert Assessment.objects.count() == 0


def test_a_time_in_the_future_is_refused_beside_the_time(clinic, login):
    data = instrument_post("cows", "t-cows3") | {"at": local_minute(days_ago=-2)}
    r = login(clinic.clinician_a).post(_url(clinic.patient_a), data)
    assert r.status_code == 200
    assert "This time is in the future; give the time it happened." in r.content.decode()
    assert Assessment.objects.count() == 0


@pytest.mark.parametrize("instrument_id", ["sows", "craving-nrs", "no-such-thing"])
def test_an_instrument_the_clinician_does_not_record_is_not_found(clinic, login, instrument_id):
    # SOWS and the craving scale are the patient's own, in the diary
    response = login(clinic.clinician_a).get(_url(clinic.patient_a, instrument_id))
    assert response.status_code == 404


def test_another_care_teams_patient_is_not_found_and_nothing_is_stored(clinic, login):
    client = login(clinic.clinician_a)
    assert client.get(_url(clinic.patient_b)).status_code == 404
    assert client.post(_url(clinic.patient_b), instrument_post("cows", "t-b")).status_code == 404
    assert Assessment.objects.count() == 0


def test_the_patient_page_offers_every_instrument_a_clinician_records(clinic, login):
    from speciosa.knowledge import instruments

    client = login(clinic.clinician_a)
    page = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    offered = [i.id for i in instruments.clinician_recorded()]
    assert set(offered) == {"cows", "phq9", "gad7", "audit-c", "asex"}
    for instrument_id in offered:
        assert _url(clinic.patient_a, instrument_id) in page
        assert client.get(_url(clinic.patient_a, instrument_id)).status_code == 200
    assert _url(clinic.patient_a, "sows") not in page
