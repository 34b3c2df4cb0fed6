"""Issue 19, taper plans: what a clinician enters is validated (hostile cases store nothing),
kept with its history (corrections, replacements, stops), audited and stored once per token;
and the plan is compared with the diary day by day, with real numbers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from speciosa.clinic import taper, treatment
from speciosa.clinic.models import AuditEntry, DiaryDay, Dose, TaperPlan


def today():
    return timezone.localdate()


def day(n):
    return today() + dt.timedelta(days=n)


def four_weeks(start=None, **kw):
    """A four-week taper the clinician typed: 4 g, 3 g, 2 g, 1 g a day, a week each."""
    start = start or day(1)
    steps = []
    for week, amount in enumerate(("2", "1.5", "1", "0.5")):
        steps.append({"start": (start + dt.timedelta(days=7 * week)).isoformat(),
                      "end": (start + dt.timedelta(days=7 * week + 6)).isoformat(),
                      "amount": amount, "unit": "g", "doses_per_day": 2})
    data = {"kind": "kratom", "reason": "agreed at the visit: a slow taper", "steps": steps}
    data.update(kw)
    return data


def messages(exc):
    return exc.value.message_dict


def nothing_stored():
    return TaperPlan.objects.count() == 0 and not AuditEntry.objects.filter(
        model="TaperPlan").exists()


@pytest.mark.django_db
def test_a_plan_is_stored_as_typed_audited_and_once_per_token(clinic):
    plan = taper.record_plan(clinic.clinician_a, clinic.patient_a, four_weeks(), token="t1")
    again = taper.record_plan(clinic.clinician_a, clinic.patient_a, four_weeks(), token="t1")
    assert again.pk == plan.pk and TaperPlan.objects.count() == 1
    assert (plan.kind, plan.status, plan.start, plan.end) == ("kratom", "active", day(1), day(28))
    assert [s.per_day for s in taper.steps_of(plan)] == [Decimal(4), Decimal(3), Decimal(2),
                                                         Decimal(1)]
    assert plan.steps[1] == {"start": day(8).isoformat(), "end": day(14).isoformat(),
                             "amount": "1.5", "unit": "g", "doses_per_day": 2,
                             "mitragynine_percent": None, "grams_per_capsule": None}
    entry = AuditEntry.objects.get(model="TaperPlan", object_id=plan.pk)
    assert entry.action == "create" and entry.user == clinic.clinician_a
    assert entry.after["reason"] == "agreed at the visit: a slow taper"


@pytest.mark.django_db
@pytest.mark.parametrize("change, key, words", [
    ({"end": "START-1"}, "steps-0-end", "before it starts"),
    ({"unit": "grams"}, "steps-0-unit", "unknown unit 'grams'"),
    ({"amount": "60"}, "steps-0-amount", "above 50, the diary's plausibility limit"),
    ({"amount": "0"}, "steps-0-amount", "must be more than 0"),
    ({"amount": "-2"}, "steps-0-amount", "must be more than 0"),
    ({"amount": "abc"}, "steps-0-amount", "as a number"),
    ({"amount": "1,5"}, "steps-0-amount", "Use a point for decimals"),
    ({"amount": "NaN"}, "steps-0-amount", "as a number"),
    ({"doses_per_day": 0}, "steps-0-doses_per_day", "whole number from 1 to 12"),
    ({"doses_per_day": "2.5"}, "steps-0-doses_per_day", "whole number from 1 to 12"),
    ({"doses_per_day": 13}, "steps-0-doses_per_day", "whole number from 1 to 12"),
    ({"unit": "capsule"}, "steps-0-grams_per_capsule", "grams per capsule"),
    ({"unit": "mg_extract", "amount": "100"}, "steps-0-mitragynine_percent", "labelled mitragynine"),
    ({"start": "1999-01-01"}, "steps-0-start", "check the year"),
    ({"start": "2026-13-40"}, "steps-0-start", "is not a date"),
    ({"glass": 1}, "steps-0-__all__", "unknown field(s) glass"),
])
def test_a_bad_step_is_refused_under_its_field_and_nothing_is_stored(clinic, change, key, words):
    data = four_weeks()
    step = data["steps"][0]
    step.update(change)
    if step.get("end") == "START-1":
        step["end"] = (dt.date.fromisoformat(step["start"]) - dt.timedelta(days=1)).isoformat()
    with pytest.raises(ValidationError) as exc:
        taper.record_plan(clinic.clinician_a, clinic.patient_a, data, token="bad")
    assert words.lower() in " ".join(messages(exc)[key]).lower(), messages(exc)
    assert list(messages(exc)) == [key]
    assert nothing_stored()


@pytest.mark.django_db
def test_overlapping_steps_are_refused_naming_both(clinic):
    data = four_weeks()
    data["steps"][1]["start"] = data["steps"][0]["end"]  # day 7 in both weeks
    with pytest.raises(ValidationError) as exc:
        taper.record_plan(clinic.clinician_a, clinic.patient_a, data)
    assert "Step 2" in messages(exc)["steps-1-start"][0]
    assert "overlaps step 1" in messages(exc)["steps-1-start"][0]
    assert nothing_stored()


@pytest.mark.django_db
def test_steps_typed_out_of_order_are_stored_in_date_order(clinic):
    data = four_weeks()
    data["steps"].reverse()
    plan = taper.record_plan(clinic.clinician_a, clinic.patient_a, data)
    assert [s["amount"] for s in plan.steps] == ["2", "1.5", "1", "0.5"]


@pytest.mark.django_db
@pytest.mark.parametrize("data, key", [
    ({"kind": "detox"}, "kind"), ({"kind": ""}, "kind"), ({"reason": "  "}, "reason"),
    ({"steps": []}, "steps"), ({"steps": "2 g a day"}, "steps"), ({"extra": 1}, "__all__"),
])
def test_a_bad_plan_is_refused_under_its_field(clinic, data, key):
    with pytest.raises(ValidationError) as exc:
        taper.record_plan(clinic.clinician_a, clinic.patient_a, four_weeks(**data))
    assert key in messages(exc)
    assert nothing_stored()


@pytest.mark.django_db
def test_a_plan_longer_than_a_year_or_with_too_many_steps_is_refused(clinic):
    data = four_weeks(start=day(-10))
    data["steps"][-1]["end"] = day(400).isoformat()
    with pytest.raises(ValidationError) as exc:
        taper.record_plan(clinic.clinician_a, clinic.patient_a, data)
    assert "steps-3-end" in messages(exc)  # more than 366 days ahead
    many = four_weeks(steps=[{"start": day(i).isoformat(), "end": day(i).isoformat(),
                              "amount": "1", "unit": "g", "doses_per_day": 1} for i in range(53)])
    with pytest.raises(ValidationError) as exc:
        taper.record_plan(clinic.clinician_a, clinic.patient_a, many)
    assert "at most 52 steps" in messages(exc)["steps"][0]
    assert nothing_stored()


def _decision(clinic, patient, choice):
    from speciosa.education.models import Decision

    return Decision.objects.create(patient=patient, choice=choice, reason="agreed together",
                                   clinician=clinic.clinician_a, patient_agreed_name="x",
                                   decided_at=timezone.now() - dt.timedelta(days=1))


@pytest.mark.django_db
def test_another_patients_episode_or_decision_is_refused_as_unknown(clinic):
    other = treatment.record_episode(clinic.clinician_b, clinic.patient_b, {
        "drug": "buprenorphine", "formulation": "sublingual", "dose_mg": "16",
        "start": day(-3)})
    theirs = _decision(clinic, clinic.patient_b, "buprenorphine")
    for field, value in (("episode", other.pk), ("decision", theirs.pk), ("episode", 999999),
                         ("episode", "x"), ("decision", True)):
        with pytest.raises(ValidationError) as exc:
            taper.record_plan(clinic.clinician_a, clinic.patient_a,
                              four_weeks(kind="buprenorphine", **{field: value}))
        assert messages(exc)[field][0].startswith("No such"), (field, value, messages(exc))
    assert nothing_stored()


@pytest.mark.django_db
def test_a_move_links_its_own_episode_and_decision_of_the_same_drug_only(clinic):
    p = clinic.patient_a
    ep = treatment.record_episode(clinic.clinician_a, p, {
        "drug": "methadone", "formulation": "oral-liquid", "dose_mg": "30",
        "dispensing_clinic": "OTP", "start": day(-2)})
    chose = _decision(clinic, p, "methadone")
    with pytest.raises(ValidationError) as exc:
        taper.record_plan(clinic.clinician_a, p, four_weeks(kind="buprenorphine", episode=ep.pk,
                                                            decision=chose.pk))
    assert "methadone episode" in messages(exc)["episode"][0]
    assert "not a move to buprenorphine" in messages(exc)["decision"][0]
    with pytest.raises(ValidationError) as exc:
        taper.record_plan(clinic.clinician_a, p, four_weeks(episode=ep.pk))
    assert "A kratom taper goes with no treatment episode" in messages(exc)["episode"][0]
    plan = taper.record_plan(clinic.clinician_a, p, four_weeks(kind="methadone", episode=ep.pk,
                                                               decision=chose.pk))
    assert (plan.episode, plan.decision) == (ep, chose)


@pytest.mark.django_db
def test_only_the_care_team_records_a_plan(clinic):
    for user in (clinic.patient_a.user, clinic.clinician_b, clinic.researcher):
        with pytest.raises(PermissionDenied):
            taper.record_plan(user, clinic.patient_a, four_weeks())
    assert nothing_stored()


@pytest.mark.django_db
def test_a_second_active_plan_is_refused_replace_keeps_the_history(clinic):
    p, c = clinic.patient_a, clinic.clinician_a
    first = taper.record_plan(c, p, four_weeks())
    with pytest.raises(ValidationError) as exc:
        taper.record_plan(c, p, four_weeks())
    assert "There is an active taper plan" in messages(exc)["__all__"][0]
    slower = four_weeks()
    slower["steps"] = slower["steps"][:2]
    new = taper.replace_plan(c, p, first, slower, reason="too fast for her", token="r1")
    again = taper.replace_plan(c, p, first, slower, reason="too fast for her", token="r1")
    assert again.pk == new.pk
    old = TaperPlan.objects.get(replaces=first)
    first.refresh_from_db()
    assert first.superseded and old.status == "replaced" and old.stop_reason == "replaced: too fast for her"
    assert new.follows == old and new.status == "active" and new.end == day(14)
    assert list(taper.current_plans(p)) == [new, old]
    assert taper.active_plan(p) == new
    actions = list(AuditEntry.objects.filter(model="TaperPlan").order_by("id")
                   .values_list("action", "object_id"))
    assert actions == [("create", first.pk), ("stop", old.pk), ("create", new.pk)]
    with pytest.raises(ValidationError):  # the replaced version cannot be replaced again
        taper.replace_plan(c, p, first, slower, reason="again")


@pytest.mark.django_db
def test_a_correction_replaces_the_row_and_keeps_the_earlier_version(clinic):
    from speciosa.clinic import selectors

    p, c = clinic.patient_a, clinic.clinician_a
    plan = taper.record_plan(c, p, four_weeks())
    steps = [dict(s) for s in plan.steps]
    steps[0]["amount"] = "1.75"
    fixed = taper.correct_plan(c, p, plan, {"steps": steps}, reason="typed 2 for 1.75",
                               token="c1")
    assert taper.correct_plan(c, p, plan, {"steps": steps}, reason="typed 2 for 1.75",
                              token="c1").pk == fixed.pk
    assert fixed.replaces_id == plan.pk and fixed.steps[0]["amount"] == "1.75"
    assert fixed.reason == plan.reason and fixed.status == "active"
    assert selectors.record_history(fixed) == [fixed, TaperPlan.objects.get(pk=plan.pk)]
    entry = AuditEntry.objects.get(model="TaperPlan", object_id=fixed.pk)
    assert entry.action == "correct" and entry.reason == "typed 2 for 1.75"
    assert entry.before["steps"][0]["amount"] == "2" and entry.after["steps"][0]["amount"] == "1.75"
    bad = [dict(s) for s in fixed.steps]
    bad[2]["unit"] = "spoon"
    with pytest.raises(ValidationError) as exc:
        taper.correct_plan(c, p, fixed, {"steps": bad}, reason="x")
    assert "steps-2-unit" in messages(exc)
    with pytest.raises(ValidationError) as exc:
        taper.correct_plan(c, p, fixed, {"reason": "new"}, reason="")
    assert "change_reason" in messages(exc)
    assert TaperPlan.objects.count() == 2


@pytest.mark.django_db
def test_a_stop_is_a_new_version_with_day_and_reason(clinic):
    p, c = clinic.patient_a, clinic.clinician_a
    plan = taper.record_plan(c, p, four_weeks(start=day(-3)))
    with pytest.raises(ValidationError) as exc:
        taper.stop_plan(c, p, plan, reason="", on=None)
    assert "stop_reason" in messages(exc)
    with pytest.raises(ValidationError) as exc:
        taper.stop_plan(c, p, plan, reason="started buprenorphine", on=day(2))
    assert "in the future" in messages(exc)["stopped_on"][0]
    stopped = taper.stop_plan(c, p, plan, reason="started buprenorphine", token="s1")
    assert taper.stop_plan(c, p, plan, reason="started buprenorphine", token="s1") == stopped
    assert (stopped.status, stopped.stopped_on, stopped.stop_reason) == (
        "stopped", today(), "started buprenorphine")
    assert taper.active_plan(p) is None
    with pytest.raises(ValidationError) as exc:
        taper.stop_plan(c, p, stopped, reason="again")
    assert "already stopped" in messages(exc)["__all__"][0]
    # another patient's plan is unknown to this patient's services
    with pytest.raises(ValidationError) as exc:
        taper.stop_plan(clinic.clinician_b, clinic.patient_b, stopped, reason="x")
    assert messages(exc)["plan"] == ["No such taper plan in this patient's record."]
    with pytest.raises(ValidationError):
        taper.plan_for(clinic.patient_b, plan.pk)


@pytest.mark.django_db
def test_planned_doses_are_placed_evenly_through_the_day(clinic):
    plan = taper.record_plan(clinic.clinician_a, clinic.patient_a, four_weeks())
    doses = taper.planned_doses(plan)
    assert len(doses) == 28 * 2
    assert [d.taken_at.strftime("%H:%M") for d in doses[:2]] == ["08:00", "22:00"]
    assert {d.amount for d in doses} == {2.0, 1.5, 1.0, 0.5}
    assert [t.strftime("%H:%M") for t in taper.DOSE_TIMES[3]] == ["08:00", "15:00", "22:00"]


# --------------------------------------------------------------------------- planned vs taken

def _dose(patient, on, amount, unit, *, hour=12, diary=True, **kw):
    tz = dt.UTC
    diary_day = DiaryDay.objects.get_or_create(patient=patient, day=on)[0] if diary else None
    return Dose.objects.create(patient=patient, entered_by=patient.user, source="patient",
                               taken_at=dt.datetime.combine(on, dt.time(hour), tzinfo=tz),
                               amount=Decimal(str(amount)), unit=unit, diary=diary_day, **kw)


@pytest.mark.django_db
def test_planned_against_taken_day_by_day_with_unit_conversion(clinic):
    p = clinic.patient_a
    data = four_weeks(start=day(-6))  # days -6..0: 2 g twice a day = 4 g a day
    plan = taper.record_plan(clinic.clinician_a, p, data)
    _dose(p, day(-6), 2, "g", hour=8)
    _dose(p, day(-6), 2, "g", hour=20)                                   # 4 g: as planned
    _dose(p, day(-5), 6, "capsule", grams_per_capsule=Decimal("0.5"))    # 3 g: less
    # day -4: nothing at all (no diary)
    DiaryDay.objects.create(patient=p, day=day(-3))                      # a diary, no kratom
    _dose(p, day(-2), 1, "glass")                                        # 79 mg vs 60 mg
    _dose(p, day(-1), 5, "g", mitragynine_percent=Decimal("2"))          # 5 g: more
    _dose(p, day(0), 4, "capsule", hour=9)                               # no grams per capsule
    rows = {r.day: r for r in taper.planned_vs_taken(plan)}
    assert sorted(rows) == [day(i) for i in range(-6, 1)]
    r = rows[day(-6)]
    assert (r.planned, r.taken, r.status, r.doses) == (Decimal(4), 4.0, "as-planned", 2)
    assert r.planned_mg == pytest.approx(60.0) and r.taken_mg == pytest.approx(60.0)
    r = rows[day(-5)]
    assert (r.taken, r.status, r.difference) == (3.0, "below", -1.0)
    assert r.taken_mg == pytest.approx(45.0)  # 3 g x 1.5 % (the default)
    r = rows[day(-4)]
    assert (r.recorded, r.taken, r.taken_mg, r.status) == (False, None, None, "no-diary")
    r = rows[day(-3)]
    assert (r.recorded, r.taken, r.taken_mg, r.status) == (True, 0.0, 0.0, "below")
    r = rows[day(-2)]  # tea cannot be grams of leaf without assuming: compared in mg
    assert r.taken is None and r.taken_mg == pytest.approx(79.0) and r.status == "above"
    assert any("cannot be expressed in g" in n for n in r.notes)
    assert any("estimated mg mitragynine" in n for n in r.notes)
    r = rows[day(-1)]
    assert (r.taken, r.status) == (5.0, "above")
    assert r.taken_mg == pytest.approx(100.0)  # 5 g x 2 % (the label)
    r = rows[day(0)]
    assert r.taken is None and r.taken_mg is None and r.status == "not-comparable"
    assert any("capsule dose needs grams per capsule" in n for n in r.notes)


@pytest.mark.django_db
def test_a_plan_in_capsules_counts_leaf_doses_by_its_capsule_size(clinic):
    p = clinic.patient_a
    plan = taper.record_plan(clinic.clinician_a, p, {
        "kind": "kratom", "reason": "capsules", "steps": [
            {"start": day(-1).isoformat(), "end": day(5).isoformat(), "amount": "4",
             "unit": "capsule", "grams_per_capsule": "0.5", "doses_per_day": 2}]})
    _dose(p, day(-1), 3, "g")                                             # 6 capsules of 0.5 g
    _dose(p, day(0), 2, "capsule", grams_per_capsule=Decimal("1"))       # 2 g = 4 capsules
    rows = taper.planned_vs_taken(plan)
    assert [(r.day, r.planned, r.taken, r.status) for r in rows] == [
        (day(-1), Decimal(8), 6.0, "below"), (day(0), Decimal(8), 4.0, "below")]
    assert rows[0].planned_mg == pytest.approx(60.0)  # 8 x 0.5 g x 1.5 %
    # the comparison stops at today, and at the day a plan stopped
    stopped = taper.stop_plan(clinic.clinician_a, p, plan, reason="switched", on=day(-1))
    assert [r.day for r in taper.planned_vs_taken(stopped)] == [day(-1)]


@pytest.mark.django_db
def test_a_day_between_steps_says_no_step_and_a_corrected_dose_counts_once(clinic):
    from speciosa.clinic import services

    p = clinic.patient_a
    plan = taper.record_plan(clinic.clinician_a, p, {
        "kind": "kratom", "reason": "r", "steps": [
            {"start": day(-3).isoformat(), "end": day(-3).isoformat(), "amount": "1",
             "unit": "mg_mitragynine", "doses_per_day": 1},
            {"start": day(-1).isoformat(), "end": day(0).isoformat(), "amount": "30",
             "unit": "mg_mitragynine", "doses_per_day": 1}]})
    dose = _dose(p, day(-1), 10, "mg_mitragynine")
    services.correct_record(clinic.clinician_a, dose, {"amount": Decimal(30)}, "typo")
    rows = {r.day: r for r in taper.planned_vs_taken(plan)}
    assert rows[day(-2)].status == "no-step" and rows[day(-2)].planned is None
    assert (rows[day(-1)].taken, rows[day(-1)].status) == (30.0, "as-planned")
    assert rows[day(0)].status == "no-diary"
