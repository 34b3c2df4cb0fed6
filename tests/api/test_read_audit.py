"""Issue 11, item 7: every read of patient data is audited with who, when, what and why,
including the reads that were not: the chart data, record history (web and API), the
decisions list, the patient lists (web and API) and a FHIR search across patients (one
entry per search naming the patients and resources it showed, not one per row)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from speciosa.clinic import services
from speciosa.clinic.models import AuditEntry


def _views(**filters):
    return list(AuditEntry.objects.filter(action="view", **filters).order_by("seq"))


@pytest.fixture
def note(clinic):
    return services.record_note(clinic.clinician_a, clinic.patient_a, "Seen today.")


def _assert_one_entry(clinic, what, patient, obj=None):
    entries = _views(model=what)
    assert len(entries) == 1, [e.model for e in _views()]
    entry = entries[0]
    assert (entry.user, entry.patient) == (clinic.clinician_a, patient)
    assert entry.reason == "purpose of use: TREAT"
    assert timezone.now() - entry.at < dt.timedelta(minutes=1)
    if obj is not None:
        assert entry.object_id == obj.pk
    return entry


@pytest.mark.django_db
def test_the_chart_data_is_an_audited_read(clinic, login):
    assert login(clinic.clinician_a).get(f"/patients/{clinic.patient_a.pk}/charts.json").status_code == 200
    _assert_one_entry(clinic, "charts", clinic.patient_a)


@pytest.mark.django_db
def test_a_record_history_page_is_an_audited_read(clinic, login, note):
    url = f"/patients/{clinic.patient_a.pk}/note/{note.pk}/history/"
    assert login(clinic.clinician_a).get(url).status_code == 200
    _assert_one_entry(clinic, "history:note", clinic.patient_a, note)


@pytest.mark.django_db
def test_a_record_history_through_the_api_is_an_audited_read(clinic, api, note):
    url = f"/api/v1/patients/{clinic.patient_a.pk}/records/note/{note.pk}/history/"
    response = api(clinic.clinician_a).get(url)
    assert response.status_code == 200 and response.json()["results"][0]["text"] == "Seen today."
    _assert_one_entry(clinic, "history:note", clinic.patient_a, note)


@pytest.mark.django_db
def test_the_decisions_list_is_an_audited_read(clinic, login):
    assert login(clinic.clinician_a).get(f"/patients/{clinic.patient_a.pk}/decisions/").status_code == 200
    _assert_one_entry(clinic, "decisions", clinic.patient_a)


@pytest.mark.django_db
def test_the_api_patient_list_is_one_audited_read_naming_the_patients_on_the_page(clinic, api):
    from tests.conftest import make_patient

    extra = make_patient(clinic.site_a, clinic.team_a, None, "")
    response = api(clinic.clinician_a).get("/api/v1/patients/?q=")
    assert response.status_code == 200 and response.json()["count"] == 2
    entry = _assert_one_entry(clinic, "api:patient-list", None)
    assert entry.after["patients"] == sorted([clinic.patient_a.pk, extra.pk])
    assert clinic.patient_b.pk not in entry.after["patients"]


@pytest.mark.django_db
def test_the_web_patient_list_is_one_audited_read(clinic, login):
    assert login(clinic.clinician_a).get("/patients/?q=Quinn").status_code == 200
    entry = _assert_one_entry(clinic, "patient-list", None)
    assert entry.after == {"patients": [clinic.patient_a.pk], "query": "Quinn"}


@pytest.mark.django_db
def test_a_fhir_search_across_patients_is_one_entry_listing_what_it_showed(clinic, api):
    from tests.conftest import make_patient

    second = make_patient(clinic.site_a, clinic.team_a, None, "")
    for patient in (clinic.patient_a, second, clinic.patient_b):
        for value in (10, 20):
            services.record_lab(clinic.clinician_a if patient != clinic.patient_b else clinic.clinician_b,
                                patient, {"lab": "prolactin", "value": value, "unit": "ng/mL",
                                          "collected_at": timezone.now() - dt.timedelta(hours=value)})
    before = AuditEntry.objects.count()
    response = api(clinic.clinician_a).get("/fhir/Observation", HTTP_X_PURPOSE_OF_USE="TREAT")
    assert response.status_code == 200
    shown = [e["resource"] for e in response.json().get("entry", [])]
    assert len(shown) >= 4
    # one entry per patient shown and one for the search listing them (not one per row)
    assert AuditEntry.objects.count() == before + 3
    entry = AuditEntry.objects.get(model="fhir:search:Observation", patient=None)
    assert entry.user == clinic.clinician_a and entry.reason == "purpose of use: TREAT"
    assert entry.after["resources"] == [f"Observation/{r['id']}" for r in shown]
    assert entry.after["patients"] == sorted([clinic.patient_a.pk, second.pk])  # not Site B's


@pytest.mark.django_db
def test_a_read_refused_to_another_care_team_writes_no_view_of_that_patient(clinic, api, login, note):
    """The hostile case: clinician B asks for A's patient everywhere; nothing is shown and
    the trail does not claim B saw the patient."""
    client = login(clinic.clinician_b)
    for url in (f"/patients/{clinic.patient_a.pk}/charts.json",
                f"/patients/{clinic.patient_a.pk}/note/{note.pk}/history/",
                f"/patients/{clinic.patient_a.pk}/decisions/"):
        assert client.get(url).status_code == 404
    url = f"/api/v1/patients/{clinic.patient_a.pk}/records/note/{note.pk}/history/"
    assert api(clinic.clinician_b).get(url).status_code == 404
    assert not AuditEntry.objects.filter(action="view", patient=clinic.patient_a).exists()


@pytest.mark.django_db
def test_the_correction_page_which_shows_the_current_value_is_an_audited_read(clinic, login, note):
    url = f"/patients/{clinic.patient_a.pk}/note/{note.pk}/correct/"
    response = login(clinic.clinician_a).get(url)
    assert response.status_code == 200 and "Seen today." in response.content.decode()
    _assert_one_entry(clinic, "correct:note", clinic.patient_a, note)


@pytest.mark.django_db
def test_the_worklist_which_shows_alerts_of_patients_is_an_audited_read(clinic, login):
    from speciosa.clinic.models import Alert

    Alert.objects.create(patient=clinic.patient_a, rule="prolactin-raised", topic="prolactin",
                         severity="warning", message="Prolactin 41.7 ng/mL is above the range.",
                         next_step="Repeat.", citations=["kruegel-2019"], first_seen_at=timezone.now())
    Alert.objects.create(patient=clinic.patient_b, rule="prolactin-raised", topic="prolactin",
                         severity="warning", message="Other site's alert.", next_step="Repeat.",
                         citations=["kruegel-2019"], first_seen_at=timezone.now())
    response = login(clinic.clinician_a).get("/worklist/")
    assert response.status_code == 200 and "41.7" in response.content.decode()
    entry = _assert_one_entry(clinic, "worklist", None)
    assert entry.after["patients"] == [clinic.patient_a.pk]  # not the other site's patient
