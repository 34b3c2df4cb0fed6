"""Services: validation with messages that say what to fix, all-or-nothing saves,
idempotent retries, audit entries with before and after."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.utils import DatabaseError
from django.utils import timezone

from speciosa.clinic import services
from speciosa.clinic.models import Assessment, AuditEntry, DiaryDay, Dose, LabResult, Note


def _dose(**kw):
    base = {"taken_at": timezone.now() - dt.timedelta(hours=2), "amount": "3", "unit": "g"}
    base.update(kw)
    return base


def _diary(clinic, token=None, **kw):
    entry = services.DiaryInput(day=timezone.localdate(), doses=kw.pop("doses", [_dose()]), **kw)
    return services.record_diary(clinic.patient_a.user, clinic.patient_a, entry, token=token)


@pytest.mark.django_db
def test_a_diary_stores_doses_craving_and_side_effects_with_an_estimate(clinic):
    diary = _diary(clinic, craving=4, side_effects=["constipation"])
    dose = Dose.objects.get(diary=diary)
    assert dose.amount == Decimal("3.000") and dose.unit == "g"
    assert dose.mitragynine_mg is not None and dose.mitragynine_mg > 0
    craving = Assessment.objects.get(diary=diary, instrument="craving-nrs")
    assert craving.total == 4
    checklist = Assessment.objects.get(diary=diary, instrument="side-effects")
    assert checklist.items["constipation"] == 1 and checklist.items["seizure"] == 0
    assert AuditEntry.objects.filter(patient=clinic.patient_a, action="create").count() == 3


@pytest.mark.django_db
def test_it_rejects_a_craving_of_11_and_saves_nothing(clinic):
    with pytest.raises(ValidationError) as exc:
        _diary(clinic, craving=11)
    assert "craving" in exc.value.message_dict
    assert "10" in " ".join(exc.value.message_dict["craving"])
    assert Dose.objects.count() == 0 and DiaryDay.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("amount, message", [("-2", "more than 0"), ("0", "more than 0"),
                                             ("lots", "number")])
def test_it_rejects_a_bad_dose_amount_and_names_the_field(clinic, amount, message):
    with pytest.raises(ValidationError) as exc:
        _diary(clinic, doses=[_dose(), _dose(amount=amount)])
    assert message in exc.value.message_dict["doses-1-amount"][0]
    assert Dose.objects.count() == 0


@pytest.mark.django_db
def test_it_rejects_a_dose_in_the_future(clinic):
    with pytest.raises(ValidationError) as exc:
        _diary(clinic, doses=[_dose(taken_at=timezone.now() + dt.timedelta(hours=3))])
    assert "future" in exc.value.message_dict["doses-0-taken_at"][0]


@pytest.mark.django_db
def test_it_rejects_a_sows_item_of_5_naming_the_item(clinic):
    from speciosa.knowledge import instruments

    sows = instruments.get_instrument("sows")
    items = {i.id: 1 for i in sows.items}
    first = sows.items[0].id
    items[first] = 5
    with pytest.raises(ValidationError) as exc:
        _diary(clinic, sows=items)
    assert f"sows-{first}" in exc.value.message_dict
    assert Assessment.objects.count() == 0 and Dose.objects.count() == 0


@pytest.mark.django_db
def test_a_retried_diary_submission_stores_one_record(clinic):
    entry = services.DiaryInput(day=timezone.localdate(), doses=[_dose()], craving=3)
    first = services.record_diary(clinic.patient_a.user, clinic.patient_a, entry, token="tok-1")
    again = services.record_diary(clinic.patient_a.user, clinic.patient_a, entry, token="tok-1")
    assert first.pk == again.pk
    assert Dose.objects.count() == 1 and Assessment.objects.count() == 1


@pytest.mark.django_db
def test_a_second_diary_for_the_same_day_adds_to_it(clinic):
    first = _diary(clinic, token="a")
    second = services.record_diary(clinic.patient_a.user, clinic.patient_a, services.DiaryInput(
        day=timezone.localdate(), doses=[_dose(amount="1.5")]), token="b")
    assert first.pk == second.pk
    assert DiaryDay.objects.count() == 1 and Dose.objects.filter(diary=first).count() == 2


@pytest.mark.django_db
def test_an_empty_diary_is_refused(clinic):
    with pytest.raises(ValidationError) as exc:
        _diary(clinic, doses=[])
    assert "Nothing to save" in exc.value.message_dict["__all__"][0]


@pytest.mark.django_db
def test_a_capsule_dose_without_grams_per_capsule_is_kept_and_reported_not_guessed(clinic):
    # asked first (tests/clinic/test_diary_trust.py); confirmed, it is kept unconverted
    diary = _diary(clinic, doses=[_dose(unit="capsule", amount="4", confirmed_unusual=True)])
    dose = Dose.objects.get(diary=diary)
    assert dose.confirmed_unusual
    assert dose.mitragynine_mg is None
    assert dose.conversion_note.startswith("Not converted")


@pytest.mark.django_db
def test_a_clinician_cannot_write_a_patients_diary(clinic):
    with pytest.raises(PermissionError):
        services.record_diary(clinic.clinician_a, clinic.patient_a,
                              services.DiaryInput(day=timezone.localdate(), doses=[_dose()]))


def _lab(clinic, **kw):
    data = {"lab": "prolactin", "collected_at": timezone.now() - dt.timedelta(days=1),
            "value": Decimal("30"), "unit": "ng/mL"}
    data.update(kw)
    return services.record_lab(clinic.clinician_a, clinic.patient_a, data, token=kw.get("token"))


@pytest.mark.django_db
def test_a_prolactin_in_miu_per_l_keeps_its_unit_and_gets_a_canonical_value(clinic):
    lab = _lab(clinic, value=Decimal("636"), unit="m[IU]/L")
    assert lab.unit == "m[IU]/L" and lab.value == Decimal("636")
    assert lab.canonical_unit == "ng/mL"
    assert lab.canonical_value == pytest.approx(30.0)
    assert lab.flag == "high"  # female patient, above the upper reference limit


@pytest.mark.django_db
@pytest.mark.parametrize("kw, field", [({"unit": ""}, "unit"), ({"value": Decimal("-1")}, "value"),
                                       ({"unit": "furlongs"}, "unit"), ({"value": None}, "value")])
def test_a_lab_value_without_unit_negative_or_in_an_unknown_unit_is_refused(clinic, kw, field):
    with pytest.raises(ValidationError) as exc:
        _lab(clinic, **kw)
    assert field in exc.value.message_dict
    assert LabResult.objects.count() == 0


@pytest.mark.django_db
def test_an_implausible_lab_value_must_be_confirmed_before_it_is_stored(clinic):
    with pytest.raises(services.NeedsConfirmation) as exc:
        _lab(clinic, value=Decimal("90000"))
    assert "confirm" in exc.value.message_dict["value"][0].lower()
    assert LabResult.objects.count() == 0
    lab = _lab(clinic, value=Decimal("90000"), confirmed_unusual=True)
    assert lab.confirmed_unusual is True


@pytest.mark.django_db
def test_a_clinician_of_another_team_cannot_record_a_lab(clinic):
    with pytest.raises(PermissionError):
        services.record_lab(clinic.clinician_b, clinic.patient_a, {
            "lab": "prolactin", "collected_at": timezone.now(), "value": 10, "unit": "ng/mL"})


@pytest.mark.django_db
def test_a_cows_assessment_is_scored_by_the_one_scorer(clinic):
    from speciosa.knowledge import instruments

    cows = instruments.get_instrument("cows")
    items = {i.id: i.allowed[1] for i in cows.items}
    expected = instruments.score(cows, items)
    a = services.record_assessment(clinic.clinician_a, clinic.patient_a, "cows", items)
    assert a.total == expected.total and a.band == (expected.band or "")
    assert a.instrument_version == cows.version


@pytest.mark.django_db
def test_an_incomplete_cows_is_refused_with_the_missing_items(clinic):
    from speciosa.knowledge import instruments

    cows = instruments.get_instrument("cows")
    items = {i.id: 0 for i in cows.items[:-1]}
    with pytest.raises(ValidationError) as exc:
        services.record_assessment(clinic.clinician_a, clinic.patient_a, "cows", items)
    assert cows.items[-1].id in exc.value.message_dict
    assert Assessment.objects.count() == 0


@pytest.mark.django_db
def test_a_correction_keeps_the_earlier_version_and_audits_before_and_after(clinic):
    lab = _lab(clinic, value=Decimal("30"))
    new = services.correct_record(clinic.clinician_a, lab, {"value": Decimal("13")}, "transcription error")
    lab.refresh_from_db()
    assert lab.superseded is True and lab.value == Decimal("30")
    assert new.replaces_id == lab.pk and new.value == Decimal("13") and new.flag == "normal"
    entry = AuditEntry.objects.get(action="correct")
    assert entry.before["value"] == "30" and entry.after["value"] == "13"
    assert entry.reason == "transcription error" and entry.user == clinic.clinician_a
    assert list(LabResult.objects.current()) == [new]


@pytest.mark.django_db
def test_a_correction_needs_a_reason(clinic):
    note = services.record_note(clinic.clinician_a, clinic.patient_a, "first")
    with pytest.raises(ValidationError) as exc:
        services.correct_record(clinic.clinician_a, note, {"text": "second"}, "  ")
    assert "reason" in exc.value.message_dict
    assert Note.objects.count() == 1


@pytest.mark.django_db
def test_a_superseded_entry_cannot_be_corrected_again(clinic):
    note = services.record_note(clinic.clinician_a, clinic.patient_a, "first")
    services.correct_record(clinic.clinician_a, note, {"text": "second"}, "typo")
    note.refresh_from_db()
    with pytest.raises(ValidationError):
        services.correct_record(clinic.clinician_a, note, {"text": "third"}, "typo")


@pytest.mark.django_db
def test_the_audit_trail_cannot_be_edited_or_deleted(clinic):
    services.record_note(clinic.clinician_a, clinic.patient_a, "a note")
    entry = AuditEntry.objects.get()
    with pytest.raises(PermissionError):
        entry.reason = "changed"
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    # and not through the database either (triggers)
    with pytest.raises(DatabaseError), connection.cursor() as cursor:
        from django.db import transaction

        with transaction.atomic():
            cursor.execute("UPDATE clinic_auditentry SET reason = 'x'")
    with pytest.raises(DatabaseError), connection.cursor() as cursor:
        from django.db import transaction

        with transaction.atomic():
            cursor.execute("DELETE FROM clinic_auditentry")
    assert AuditEntry.objects.get().reason == ""


@pytest.mark.django_db
def test_two_users_may_use_the_same_token_without_clashing(clinic):
    a = services.record_note(clinic.clinician_a, clinic.patient_a, "from a", token="same")
    clinic.team_a.members.add(clinic.clinician_b)
    b = services.record_note(clinic.clinician_b, clinic.patient_a, "from b", token="same")
    assert a.pk != b.pk and Note.objects.count() == 2


@pytest.mark.django_db
def test_a_retried_correction_returns_the_first_result(clinic):
    note = services.record_note(clinic.clinician_a, clinic.patient_a, "first")
    new = services.correct_record(clinic.clinician_a, note, {"text": "second"}, "typo", token="c")
    note.refresh_from_db()
    again = services.correct_record(clinic.clinician_a, note, {"text": "second"}, "typo", token="c")
    assert again.pk == new.pk and Note.objects.count() == 2


@pytest.mark.django_db
def test_withdrawing_twice_writes_one_audit_entry(clinic):
    note = services.record_note(clinic.clinician_a, clinic.patient_a, "oops")
    services.retract_record(clinic.clinician_a, note, "wrong patient")
    services.retract_record(clinic.clinician_a, note, "wrong patient")
    assert AuditEntry.objects.filter(action="retract").count() == 1
    note.refresh_from_db()
    assert note.retracted


@pytest.mark.django_db
def test_an_unknown_instrument_is_a_validation_error(clinic):
    with pytest.raises(ValidationError) as exc:
        services.record_assessment(clinic.clinician_a, clinic.patient_a, "kds", {"x": 1})
    assert "instrument" in exc.value.message_dict


@pytest.mark.django_db
def test_a_lab_value_with_too_many_digits_is_refused(clinic):
    with pytest.raises(ValidationError) as exc:
        _lab(clinic, value=Decimal("12.123456"))
    assert "4 after the decimal point" in exc.value.message_dict["value"][0]


@pytest.mark.django_db
@pytest.mark.parametrize("field, value, message", [
    ("mitragynine_percent", "150", "between 0 and 100"), ("mitragynine_percent", "abc", "as a number"),
    ("grams_per_capsule", "0", "between 0 and 5"), ("grams_per_capsule", "nan", "as a number")])
def test_label_values_out_of_range_or_not_numbers_are_refused(clinic, field, value, message):
    with pytest.raises(ValidationError) as exc:
        _diary(clinic, doses=[_dose(unit="capsule", **{field: value})])
    assert message in exc.value.message_dict[f"doses-0-{field}"][0]
    assert Dose.objects.count() == 0
