"""Issue 19: the medication list's service layer (validation, history, idempotency, audit,
access) and the rules reading what it stores."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from speciosa.clinic import medications, services
from speciosa.clinic.models import Alert, AuditEntry, Medication, MedicationReview, Source

TODAY = timezone.localdate


def bup(**kw):
    data = {"drug": "buprenorphine", "strength": "8", "strength_unit": "mg",
            "form": "sublingual-tablet", "dose_amount": "2", "dose_unit": "tablet",
            "frequency": "once daily", "route": "sublingual", "prescriber": "clinic",
            "start": TODAY() - dt.timedelta(days=20), "indication": "opioid use disorder"}
    data.update(kw)
    return data


def messages(exc) -> dict:
    return exc.value.message_dict


@pytest.mark.django_db
def test_a_coded_medication_takes_the_table_name_and_rxcui_and_is_audited(clinic):
    med = medications.record_medication(clinic.clinician_a, clinic.patient_a, bup())
    assert (med.drug, med.name, med.rxnorm) == ("buprenorphine", "buprenorphine", "1819")
    assert (med.strength, med.strength_unit, med.dose_amount, med.dose_unit) == (
        Decimal("8"), "mg", Decimal("2"), "tablet")
    assert (med.status, med.source, med.coded) == ("active", Source.CLINICIAN, True)
    entry = AuditEntry.objects.get(model="Medication", object_id=med.pk)
    assert entry.action == "create" and entry.after["rxnorm"] == "1819"


@pytest.mark.django_db
def test_a_brand_name_is_kept_as_shown_with_the_coded_drug(clinic):
    med = medications.record_medication(clinic.clinician_a, clinic.patient_a,
                                        {"drug": "Alprazolam", "name": "Xanax 1 mg",
                                         "start": TODAY()})
    assert (med.drug, med.name, med.rxnorm) == ("alprazolam", "Xanax 1 mg", "596")


@pytest.mark.django_db
def test_free_text_is_stored_not_coded(clinic):
    med = medications.record_medication(clinic.clinician_a, clinic.patient_a,
                                        {"name": "Zyzzolex 5 mg", "start": TODAY()})
    assert (med.drug, med.rxnorm, med.coded) == ("", "", False)
    alert = Alert.objects.get(patient=clinic.patient_a, topic="medication-not-classified")
    assert alert.evidence == {"not_classified": ["Zyzzolex 5 mg"]}


@pytest.mark.parametrize(("data", "field", "text"), [
    ({"end": TODAY() - dt.timedelta(days=25), "status": "stopped"}, "end", "before the start"),
    ({"strength_unit": "mgs"}, "strength_unit", "Unknown unit 'mgs'"),
    ({"dose_unit": "spoon"}, "dose_unit", "Unknown unit 'spoon'"),
    ({"strength": "8", "strength_unit": ""}, "strength_unit", "Give the unit"),
    ({"strength": "-1"}, "strength", "more than 0"),
    ({"strength": "NaN"}, "strength", "as a number"),
    ({"route": "ear"}, "route", "Unknown route 'ear'"),
    ({"form": "gummy"}, "form", "Unknown form"),
    ({"status": "finished"}, "status", "Unknown status"),
    ({"drug": "kratomix"}, "drug", "not a drug in the table"),
    ({"drug": "benzodiazepine"}, "drug", "not a drug in the table"),
    ({"rxnorm": "6813"}, "rxnorm", "not buprenorphine's ingredient code"),
    ({"start": TODAY() + dt.timedelta(days=3)}, "start", "in the future"),
    ({"start": dt.date(1900, 1, 1)}, "start", "check the year"),
    ({"start": dt.datetime(2026, 1, 1, 8, 0)}, "start", "time zone"),
    ({"start": "yesterday"}, "start", "YYYY-MM-DD"),
    ({"status": "stopped"}, "end", "date it was stopped"),
    ({"end": TODAY() - dt.timedelta(days=2)}, "status", "no longer taken"),
    ({"stop_reason": "side effects"}, "stop_reason", "stop date"),
    ({"frequency": "x" * 81}, "frequency", "at most 80"),
    ({"colour": "blue"}, "__all__", "Unknown field(s): colour"),
])
@pytest.mark.django_db
def test_bad_input_is_refused_with_a_message_and_nothing_is_stored(clinic, data, field, text):
    with pytest.raises(ValidationError) as exc:
        medications.record_medication(clinic.clinician_a, clinic.patient_a, bup(**data))
    assert text in " ".join(messages(exc)[field]), messages(exc)
    assert not Medication.objects.exists()
    assert not AuditEntry.objects.filter(model="Medication").exists()


@pytest.mark.django_db
def test_an_overlapping_duplicate_of_the_same_drug_is_refused(clinic):
    medications.record_medication(clinic.clinician_a, clinic.patient_a, bup())
    with pytest.raises(ValidationError) as exc:
        medications.record_medication(clinic.clinician_a, clinic.patient_a,
                                      bup(name="Subutex", start=TODAY() - dt.timedelta(days=3)))
    assert "already on the list" in messages(exc)["drug"][0]
    # free text: the same name (any case) overlapping
    medications.record_medication(clinic.clinician_a, clinic.patient_a,
                                  {"name": "Fish oil", "start": TODAY()})
    with pytest.raises(ValidationError) as exc:
        medications.record_medication(clinic.clinician_a, clinic.patient_a,
                                      {"name": "fish OIL", "start": TODAY()})
    assert "already on the list" in messages(exc)["name"][0]
    assert Medication.objects.count() == 2
    # a course that ended before the new one starts is no duplicate
    medications.record_medication(clinic.clinician_a, clinic.patient_a, bup(
        start=TODAY() - dt.timedelta(days=200), end=TODAY() - dt.timedelta(days=100),
        status="completed"))
    assert Medication.objects.count() == 3


@pytest.mark.django_db
def test_a_retried_submission_stores_one_medication(clinic):
    first = medications.record_medication(clinic.clinician_a, clinic.patient_a, bup(), token="t1")
    again = medications.record_medication(clinic.clinician_a, clinic.patient_a, bup(), token="t1")
    assert first.pk == again.pk and Medication.objects.count() == 1


@pytest.mark.django_db
def test_who_may_add_a_medication(clinic):
    for user in (clinic.clinician_b, clinic.researcher, clinic.admin, clinic.patient_b.user):
        with pytest.raises(PermissionDenied):
            medications.record_medication(user, clinic.patient_a, bup())
    assert not Medication.objects.exists()


@pytest.mark.django_db
def test_a_patient_adds_a_supplement_and_a_clinician_confirms_it(clinic):
    patient = clinic.patient_a
    with pytest.raises(ValidationError) as exc:
        medications.record_medication(patient.user, patient, bup())
    assert "added by your clinician" in messages(exc)["prescriber"][0]
    med = medications.record_medication(patient.user, patient, {
        "name": "St John's wort", "category": "supplement", "prescriber": "none",
        "start": TODAY()}, token="p1")
    assert med.source == Source.PATIENT and med.needs_confirmation
    with pytest.raises(PermissionDenied):
        medications.confirm_medication(patient.user, patient, med)
    with pytest.raises(PermissionDenied):
        medications.confirm_medication(clinic.clinician_b, patient, med)
    confirmed = medications.confirm_medication(clinic.clinician_a, patient, med, token="c1")
    assert confirmed.replaces_id == med.pk and confirmed.source == Source.PATIENT
    assert (confirmed.confirmed_by, confirmed.needs_confirmation) == (clinic.clinician_a, False)
    assert medications.confirm_medication(clinic.clinician_a, patient, med,
                                          token="c1").pk == confirmed.pk
    with pytest.raises(ValidationError):
        medications.confirm_medication(clinic.clinician_a, patient, confirmed)
    assert AuditEntry.objects.filter(model="Medication", action="confirm").count() == 1
    assert list(medications.current_medications(patient)) == [confirmed]


@pytest.mark.django_db
def test_another_patients_medication_is_refused(clinic):
    theirs = medications.record_medication(clinic.clinician_b, clinic.patient_b,
                                           bup(prescriber="outside"))
    with pytest.raises(ValidationError) as exc:
        medications.stop_medication(clinic.clinician_a, clinic.patient_a, theirs, reason="x")
    assert messages(exc) == {"medication": ["No such medication in this patient's record."]}
    with pytest.raises(ValidationError):
        medications.medication_for(clinic.patient_a, theirs.pk)
    with pytest.raises(ValidationError):
        medications.medication_for(clinic.patient_a, "1; DROP TABLE")
    assert medications.medication_for(clinic.patient_b, theirs.pk) == theirs
    assert Medication.objects.get(pk=theirs.pk).status == "active"


@pytest.mark.django_db
def test_stopping_keeps_history_and_the_rules_no_longer_count_it(clinic):
    patient = clinic.patient_a
    services.record_diary(patient.user, patient, services.DiaryInput(
        day=TODAY(), doses=[{"taken_at": timezone.now() - dt.timedelta(hours=1),
                             "amount": "2", "unit": "g"}]))
    benzo = medications.record_medication(clinic.clinician_a, patient, {
        "drug": "diazepam", "strength": "5", "strength_unit": "mg", "dose_amount": "1",
        "dose_unit": "tablet", "frequency": "at night", "route": "oral",
        "start": TODAY() - dt.timedelta(days=10)})
    medications.record_medication(clinic.clinician_a, patient, bup())
    alert = Alert.objects.get(patient=patient, topic="co-use-sedative")
    assert alert.evidence["classes"] == ["opioid", "benzodiazepine"]
    cyp = Alert.objects.get(patient=patient, topic="interaction-cyp3a")
    assert cyp.evidence["opioid_substrates"] == ["buprenorphine"]
    with pytest.raises(ValidationError) as exc:
        medications.stop_medication(clinic.clinician_a, patient, benzo, reason="")
    assert "why" in messages(exc)["stop_reason"][0]
    with pytest.raises(ValidationError) as exc:
        medications.stop_medication(clinic.clinician_a, patient, benzo, reason="taper done",
                                    at=TODAY() - dt.timedelta(days=30))
    assert "before the start" in messages(exc)["end"][0]
    stopped = medications.stop_medication(clinic.clinician_a, patient, benzo,
                                          reason="taper done", token="s1")
    assert (stopped.status, stopped.end, stopped.replaces_id) == ("stopped", TODAY(), benzo.pk)
    assert Medication.objects.get(pk=benzo.pk).superseded
    alert.refresh_from_db()
    assert alert.evidence["classes"] == ["opioid"]  # the benzodiazepine is no longer counted
    entry = AuditEntry.objects.get(model="Medication", object_id=stopped.pk)
    assert entry.action == "stop" and entry.before["status"] == "active"
    with pytest.raises(ValidationError):  # the old version cannot be stopped again
        medications.stop_medication(clinic.clinician_a, patient, benzo, reason="again")


@pytest.mark.django_db
def test_a_dose_change_stops_one_course_and_starts_the_next(clinic):
    patient = clinic.patient_a
    med = medications.record_medication(clinic.clinician_a, patient, bup())
    with pytest.raises(ValidationError) as exc:
        medications.change_medication(clinic.clinician_a, patient, med, {"drug": "methadone"},
                                      reason="switch")
    assert "stop this one" in messages(exc)["drug"][0]
    with pytest.raises(ValidationError) as exc:
        medications.change_medication(clinic.clinician_a, patient, med,
                                      {"dose_unit": "teaspoon"}, reason="more")
    assert "Unknown unit" in messages(exc)["dose_unit"][0]
    new = medications.change_medication(clinic.clinician_a, patient, med,
                                        {"dose_amount": "3"}, reason="cravings", token="ch1")
    assert (new.dose_amount, new.start, new.status, new.drug) == (
        Decimal("3"), TODAY(), "active", "buprenorphine")
    old = new.follows
    assert (old.status, old.end, old.replaces_id) == ("stopped", TODAY(), med.pk)
    assert old.stop_reason == "changed: cravings"
    assert medications.change_medication(clinic.clinician_a, patient, med, {"dose_amount": "3"},
                                         reason="cravings", token="ch1").pk == new.pk
    assert [m.pk for m in medications.current_medications(patient)] == [new.pk, old.pk]
    with pytest.raises(PermissionDenied):
        medications.change_medication(patient.user, patient, new, {"dose_amount": "1"},
                                      reason="me")


@pytest.mark.django_db
def test_a_correction_replaces_the_entry_and_keeps_its_history(clinic):
    patient = clinic.patient_a
    med = medications.record_medication(clinic.clinician_a, patient, bup())
    new = services.correct_record(clinic.clinician_a, med, {"strength": "2"}, "typo: 2 mg")
    assert (new.strength, new.replaces_id, new.drug) == (Decimal("2"), med.pk, "buprenorphine")
    with pytest.raises(ValidationError) as exc:
        services.correct_record(clinic.clinician_a, new, {"strength_unit": "mgs"}, "unit")
    assert "Unknown unit" in messages(exc)["strength_unit"][0]
    with pytest.raises(ValidationError):
        services.correct_record(clinic.clinician_a, new, {"confirmed_by": 1}, "sneaky")
    entry = AuditEntry.objects.get(model="Medication", object_id=new.pk)
    assert entry.action == "correct" and entry.before["strength"] == "8"


@pytest.mark.django_db
def test_a_date_time_start_is_kept_with_its_day_in_the_site_zone(clinic):
    clinic.site_a.time_zone = "Asia/Bangkok"
    clinic.site_a.save()
    at = (timezone.now() - dt.timedelta(days=1)).replace(hour=20, minute=30, second=0,
                                                          microsecond=0, tzinfo=dt.UTC)
    med = medications.record_medication(clinic.clinician_a, clinic.patient_a,
                                        bup(start=at.isoformat()))
    assert med.start_at == at
    assert med.start == at.astimezone(dt.timezone(dt.timedelta(hours=7))).date()


@pytest.mark.django_db
def test_a_medication_review_lists_the_entries_it_covered(clinic):
    patient = clinic.patient_a
    a = medications.record_medication(clinic.clinician_a, patient, bup())
    wrong = medications.record_medication(clinic.clinician_a, patient,
                                          {"name": "typo", "start": TODAY()})
    services.retract_record(clinic.clinician_a, wrong, "entered in error")
    review = medications.record_medication_review(clinic.clinician_a, patient, note="all ok",
                                                  token="r1")
    assert review.medications == [a.pk] and review.entered_by == clinic.clinician_a
    assert medications.record_medication_review(clinic.clinician_a, patient,
                                                token="r1").pk == review.pk
    assert MedicationReview.objects.count() == 1
    with pytest.raises(PermissionDenied):
        medications.record_medication_review(patient.user, patient)


@pytest.mark.django_db
def test_the_migration_marks_ended_courses_completed(clinic):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("speciosa.clinic.migrations.0016_medication_details")
    old = Medication.objects.create(patient=clinic.patient_a, source="import", name="x",
                                    start=TODAY() - dt.timedelta(days=90),
                                    end=TODAY() - dt.timedelta(days=30))
    ongoing = Medication.objects.create(patient=clinic.patient_a, source="import", name="y",
                                        start=TODAY() - dt.timedelta(days=90))
    migration.ended_courses_completed(apps, None)
    assert Medication.objects.get(pk=old.pk).status == "completed"
    assert Medication.objects.get(pk=ongoing.pk).status == "active"
