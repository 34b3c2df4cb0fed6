"""The write kernel (speciosa.clinic.writes): the pieces every write path shares."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from speciosa.clinic import alerts, services, writes
from speciosa.clinic.models import Alert, Assessment, AuditEntry
from speciosa.knowledge import instruments as kinstruments


def _alert(patient) -> Alert:
    return Alert.objects.create(patient=patient, rule="prolactin-high", topic="prolactin", severity="warning",
                                message="m")


@pytest.mark.django_db
def test_it_audits_an_acknowledgement_and_a_resolution_with_their_own_actions(clinic):
    alert = _alert(clinic.patient_a)
    alerts.acknowledge(clinic.clinician_a, alert)
    alerts.resolve(clinic.clinician_a, alert, "Discussed; repeat test in 4 weeks.")
    entries = list(AuditEntry.objects.filter(model="Alert", object_id=alert.pk).order_by("id")
                   .values_list("action", "before", "after", "reason"))
    assert entries == [
        ("acknowledge", {"status": "open"}, {"status": "acknowledged"}, "acknowledged"),
        ("resolve", {"status": "acknowledged"}, {"status": "resolved"}, "Discussed; repeat test in 4 weeks."),
    ]
    assert not AuditEntry.objects.filter(action="correct").exists()


@pytest.mark.django_db
def test_every_service_refuses_with_the_one_permission_error(clinic):
    from speciosa.education import services as eservices

    other_team = clinic.clinician_b
    calls = [
        lambda: services.record_note(other_team, clinic.patient_a, "not mine"),
        lambda: services.record_diary(clinic.clinician_a, clinic.patient_a, services.DiaryInput(
            day=timezone.localdate(), doses=[])),
        lambda: alerts.acknowledge(other_team, _alert(clinic.patient_a)),
        lambda: eservices.assign_page(other_team, clinic.patient_a, "prolactin"),
        lambda: eservices.record_decision(other_team, clinic.patient_a, {}),
    ]
    for call in calls:
        with pytest.raises(writes.AccessDenied) as exc:
            call()
        # a Django PermissionDenied (the web answers 403) and a PermissionError (outside the web)
        assert isinstance(exc.value, PermissionDenied) and isinstance(exc.value, PermissionError)
        assert str(exc.value)


@pytest.mark.django_db
def test_the_web_answers_a_service_refusal_with_403_without_a_handler_of_its_own(clinic, login, monkeypatch):
    from speciosa.education import services as eservices

    def refuse(*args, **kwargs):
        raise writes.AccessDenied("Only a clinician of this patient's care team can assign reading.")

    from speciosa.web.forms import new_token

    monkeypatch.setattr(eservices, "assign_page", refuse)
    response = login(clinic.clinician_a).post(f"/patients/{clinic.patient_a.pk}/education/assign/",
                                              {"page_id": "prolactin", "token": new_token()})
    assert response.status_code == 403


def test_invalid_keeps_the_flat_keys_and_gives_each_message_its_location():
    inner = ValidationError({"amount": "The amount must be more than 0.", "__all__": "Check this dose."})
    exc = writes.Invalid({**writes.Invalid.under(("doses", 2), inner), ("craving",): "Choose 0 to 10.",
                          (): "Nothing to save yet."})
    assert exc.message_dict == {"doses-2-amount": ["The amount must be more than 0."],
                                "doses-2-__all__": ["Check this dose."],
                                "craving": ["Choose 0 to 10."], "__all__": ["Nothing to save yet."]}
    assert writes.error_locations(exc) == [
        (("doses", 2, "amount"), ["The amount must be more than 0."]),
        (("doses", 2, "__all__"), ["Check this dose."]),
        (("craving",), ["Choose 0 to 10."]),
        ((), ["Nothing to save yet."]),
    ]
    # a plain ValidationError has one-part locations
    assert writes.error_locations(inner) == [(("amount",), ["The amount must be more than 0."]),
                                             ((), ["Check this dose."])]


@pytest.mark.django_db
def test_a_diary_error_on_the_second_dose_carries_its_structured_location(clinic):
    good = {"taken_at": timezone.now() - dt.timedelta(hours=2), "amount": "3", "unit": "g"}
    with pytest.raises(writes.Invalid) as exc:
        services.record_diary(clinic.patient_a.user, clinic.patient_a, services.DiaryInput(
            day=timezone.localdate(), doses=[good, {**good, "amount": "-1"}]))
    assert writes.error_locations(exc.value) == [(("doses", 1, "amount"), ["The amount must be more than 0."])]


@pytest.mark.django_db
def test_every_path_stores_a_scored_response_with_the_one_mapping(clinic):
    phq9 = kinstruments.get_instrument("phq9")
    items = {i.id: 1 for i in phq9.items}
    score = kinstruments.score(phq9, items)
    fields = writes.assessment_fields(phq9, items, score)
    assert fields == {"instrument": "phq9", "instrument_version": phq9.version, "items": items,
                      "total": score.total, "band": score.band, "complete": True, "flags": list(score.flags)}
    stored = services.record_assessment(clinic.clinician_a, clinic.patient_a, "phq9", items)
    assert {k: getattr(stored, k) for k in fields} == fields
    assert Assessment.objects.get().total == 9


def test_the_after_change_hook_is_installed_once_by_the_clinic_app():
    from speciosa import tasks

    assert writes.AFTER_CHANGE_HOOKS == [tasks.after_change]
    writes.install_after_change_hook(tasks.after_change)
    assert writes.AFTER_CHANGE_HOOKS == [tasks.after_change]


@pytest.mark.parametrize("at, message", [
    (dt.datetime(2026, 1, 1, 12), "time zone"),
    (None, "time zone"),
])
def test_a_time_without_a_time_zone_is_refused(at, message):
    with pytest.raises(ValidationError) as exc:
        writes.not_in_future(at, "at")
    assert message in exc.value.message_dict["at"][0]


def test_a_time_a_little_ahead_is_a_phone_clock_and_further_ahead_is_refused():
    writes.not_in_future(timezone.now() + writes.CLOCK_SKEW - dt.timedelta(seconds=5), "at")
    with pytest.raises(ValidationError) as exc:
        writes.not_in_future(timezone.now() + writes.CLOCK_SKEW + dt.timedelta(seconds=5), "at")
    assert "future" in exc.value.message_dict["at"][0]


@pytest.mark.django_db
def test_a_lab_flag_comes_from_the_knowledge_functions(clinic):
    lab = services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": "alt", "collected_at": timezone.now() - dt.timedelta(days=1), "value": Decimal("200"),
        "unit": "U/L"})
    from speciosa.knowledge import labs as klabs

    assert lab.flag == klabs.flag_against(lab.canonical_value, (lab.reference_low, lab.reference_high)) == "high"
