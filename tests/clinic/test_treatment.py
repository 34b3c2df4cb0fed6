"""Issue 19 item 4: treatment episodes of medication for opioid use disorder (buprenorphine,
methadone, naltrexone): validation, changes, stops, injections, idempotency, audit, access,
and the rules reading the episodes (co-use, CYP3A, QT with methadone, naltrexone with
kratom)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from speciosa.clinic import services, treatment
from speciosa.clinic.models import Alert, AuditEntry, RuleSetting, TreatmentEpisode


def today():
    return timezone.localdate()


def days_ago(n):
    return today() - dt.timedelta(days=n)


def bup(**kw):
    data = {"drug": "buprenorphine", "formulation": "sublingual", "dose_mg": "16",
            "start": days_ago(20)}
    data.update(kw)
    return data


def methadone(**kw):
    data = {"drug": "methadone", "formulation": "oral-liquid", "dose_mg": "60",
            "dispensing_clinic": "Harbour Street OTP", "start": days_ago(30)}
    data.update(kw)
    return data


def kratom_today(clinic):
    at = timezone.now() - dt.timedelta(hours=3)
    services.record_diary(clinic.patient_a.user, clinic.patient_a, services.DiaryInput(
        day=timezone.localtime(at).date(), doses=[{"taken_at": at, "amount": 3, "unit": "g"}]))


def topics(patient):
    return set(Alert.objects.filter(patient=patient).values_list("topic", flat=True))


@pytest.mark.django_db
def test_an_episode_is_stored_audited_and_once_per_token(clinic):
    ep = treatment.record_episode(clinic.clinician_a, clinic.patient_a, bup(), token="t1")
    again = treatment.record_episode(clinic.clinician_a, clinic.patient_a, bup(), token="t1")
    assert again.pk == ep.pk and TreatmentEpisode.objects.count() == 1
    assert (ep.drug, ep.formulation, ep.dose_mg, ep.status) == (
        "buprenorphine", "sublingual", Decimal("16"), "active")
    assert AuditEntry.objects.get(model="TreatmentEpisode", object_id=ep.pk).action == "create"


@pytest.mark.django_db
@pytest.mark.parametrize(("data", "field", "text"), [
    (bup(end=days_ago(25), status="stopped", stop_reason="x"), "end", "before the start"),
    (bup(dose_unit="mL"), "dose_unit", "Unknown unit 'mL'"),
    (bup(dose_unit="tablets"), "dose_unit", "Unknown unit"),
    (bup(dose_mg="0"), "dose_mg", "more than 0"),
    (bup(dose_mg="-8"), "dose_mg", "more than 0"),
    (bup(dose_mg="16000"), "dose_mg", "typing errors"),
    (bup(dose_mg="1,5"), "dose_mg", "point"),
    (bup(dose_mg="lots"), "dose_mg", "as a number"),
    (bup(formulation="oral-liquid"), "formulation", "Unknown formulation"),
    (bup(drug="oxycodone"), "drug", "buprenorphine, methadone or naltrexone"),
    (methadone(dose_mg=""), "dose_mg", "daily methadone dose"),
    (methadone(dispensing_clinic=""), "dispensing_clinic", "dispenses"),
    (bup(dispensing_clinic="OTP"), "dispensing_clinic", "Only a methadone"),
    (bup(injection_dates=[days_ago(3).isoformat()]), "injection_dates", "extended-release"),
    (bup(formulation="xr-injection", dose_mg="300", injection_dates=[days_ago(40).isoformat()]),
     "injection_dates", "before the episode started"),
    (bup(formulation="xr-injection", dose_mg="300", injection_dates=["soon"]),
     "injection_dates", "not a date"),
    (bup(start=today() + dt.timedelta(days=2)), "start", "future"),
    (bup(start=dt.date(1901, 1, 1)), "start", "check the year"),
    (bup(status="stopped", end=days_ago(2)), "stop_reason", "Say why"),
    (bup(end=days_ago(2)), "status", "choose stopped"),
    (bup(colour="blue"), "__all__", "Unknown field(s): colour"),
])
def test_bad_input_is_refused_with_its_message_and_nothing_stored(clinic, data, field, text):
    with pytest.raises(ValidationError) as exc:
        treatment.record_episode(clinic.clinician_a, clinic.patient_a, data)
    assert text in " ".join(exc.value.message_dict[field]), exc.value.message_dict
    assert not TreatmentEpisode.objects.exists()
    assert not AuditEntry.objects.filter(model="TreatmentEpisode").exists()


@pytest.mark.django_db
def test_an_overlapping_episode_of_the_same_drug_is_refused_another_drug_is_not(clinic):
    treatment.record_episode(clinic.clinician_a, clinic.patient_a, bup())
    with pytest.raises(ValidationError) as exc:
        treatment.record_episode(clinic.clinician_a, clinic.patient_a,
                                 bup(formulation="buccal-film", start=days_ago(5)))
    assert "already runs from" in exc.value.message_dict["drug"][0]
    with pytest.raises(ValidationError):  # an earlier episode reaching into it too
        treatment.record_episode(clinic.clinician_a, clinic.patient_a, bup(
            start=days_ago(40), end=days_ago(10), status="stopped", stop_reason="x"))
    # a closed one before it, and another drug at the same time, are fine
    treatment.record_episode(clinic.clinician_a, clinic.patient_a, bup(
        start=days_ago(60), end=days_ago(30), status="stopped", stop_reason="relapse"))
    treatment.record_episode(clinic.clinician_a, clinic.patient_a, methadone(start=days_ago(3)))
    assert TreatmentEpisode.objects.count() == 3


@pytest.mark.django_db
def test_methadone_above_the_site_level_needs_confirmation(clinic):
    with pytest.raises(services.NeedsConfirmation) as exc:
        treatment.record_episode(clinic.clinician_a, clinic.patient_a, methadone(dose_mg="120"))
    message = exc.value.message_dict["dose_mg"][0]
    assert "above 100 mg/day" in message and "site convention" in message
    assert not TreatmentEpisode.objects.exists()
    ep = treatment.record_episode(clinic.clinician_a, clinic.patient_a,
                                  methadone(dose_mg="120", confirmed_dose=True))
    assert ep.confirmed_dose and ep.dose_mg == 120
    # the site sets its own level
    RuleSetting.objects.create(name="methadone_confirm_above_mg", value=150,
                               changed_by=clinic.admin, reason="site protocol")
    other = treatment.record_episode(clinic.clinician_b, clinic.patient_b, methadone(dose_mg="140"))
    assert not other.confirmed_dose


@pytest.mark.django_db
def test_a_change_stops_the_episode_and_starts_the_next(clinic):
    ep = treatment.record_episode(clinic.clinician_a, clinic.patient_a, methadone())
    new = treatment.change_episode(clinic.clinician_a, clinic.patient_a, ep, {"dose_mg": "80"},
                                   reason="cravings", token="c1")
    again = treatment.change_episode(clinic.clinician_a, clinic.patient_a, ep, {"dose_mg": "80"},
                                     reason="cravings", token="c1")
    assert again.pk == new.pk
    old = new.follows
    assert (old.status, old.end, old.dose_mg, old.replaces_id) == ("stopped", today(), 60, ep.pk)
    assert (new.status, new.start, new.dose_mg, new.dispensing_clinic) == (
        "active", today(), 80, "Harbour Street OTP")
    with pytest.raises(ValidationError) as exc:
        treatment.change_episode(clinic.clinician_a, clinic.patient_a, new,
                                 {"drug": "naltrexone"}, reason="switch")
    assert "stop this episode" in exc.value.message_dict["drug"][0]
    with pytest.raises(ValidationError) as exc:
        treatment.change_episode(clinic.clinician_a, clinic.patient_a, new, {"dose_mg": "70"},
                                 reason="x", at=days_ago(40))
    assert "before the episode started" in exc.value.message_dict["start"][0]


@pytest.mark.django_db
def test_stop_with_reason_and_stop_before_start_refused(clinic):
    ep = treatment.record_episode(clinic.clinician_a, clinic.patient_a, bup())
    with pytest.raises(ValidationError) as exc:
        treatment.stop_episode(clinic.clinician_a, clinic.patient_a, ep, reason="x",
                               at=days_ago(30))
    assert "before the start" in exc.value.message_dict["end"][0]
    with pytest.raises(ValidationError) as exc:
        treatment.stop_episode(clinic.clinician_a, clinic.patient_a, ep, reason="")
    assert "Say why" in exc.value.message_dict["stop_reason"][0]
    stopped = treatment.stop_episode(clinic.clinician_a, clinic.patient_a, ep,
                                     reason="moved to XR injection", at=timezone.now(), token="s")
    assert (stopped.status, stopped.end, stopped.stop_reason) == (
        "stopped", today(), "moved to XR injection")
    assert stopped.end_at is not None
    assert AuditEntry.objects.filter(model="TreatmentEpisode", action="stop").count() == 1
    with pytest.raises(ValidationError):
        treatment.stop_episode(clinic.clinician_a, clinic.patient_a, stopped, reason="again")


@pytest.mark.django_db
def test_injections_of_an_extended_release_episode(clinic):
    ep = treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "naltrexone", "formulation": "xr-injection", "dose_mg": "380",
        "start": days_ago(40), "injection_dates": [days_ago(40).isoformat()]})
    second = treatment.add_injection(clinic.clinician_a, clinic.patient_a, ep, days_ago(12),
                                     token="i1")
    assert second.injection_dates == [days_ago(40).isoformat(), days_ago(12).isoformat()]
    assert treatment.add_injection(clinic.clinician_a, clinic.patient_a, ep, days_ago(12),
                                   token="i1").pk == second.pk
    with pytest.raises(ValidationError) as exc:
        treatment.add_injection(clinic.clinician_a, clinic.patient_a, second, days_ago(12))
    assert "already recorded" in exc.value.message_dict["injection_dates"][0]
    with pytest.raises(ValidationError) as exc:
        treatment.add_injection(clinic.clinician_a, clinic.patient_a, second,
                                today() + dt.timedelta(days=1))
    assert "future" in exc.value.message_dict["injection_dates"][0]


@pytest.mark.django_db
def test_another_patients_episode_and_other_roles_are_refused(clinic):
    theirs = treatment.record_episode(clinic.clinician_b, clinic.patient_b, bup())
    with pytest.raises(ValidationError) as exc:
        treatment.episode_for(clinic.patient_a, theirs.pk)
    assert exc.value.message_dict["episode"] == ["No such treatment episode in this patient's record."]
    with pytest.raises(ValidationError):
        treatment.stop_episode(clinic.clinician_a, clinic.patient_a, theirs, reason="x")
    for user in (clinic.clinician_a, clinic.patient_b.user, clinic.researcher, clinic.admin):
        with pytest.raises(PermissionDenied):
            treatment.record_episode(user, clinic.patient_b, bup(start=days_ago(200),
                                                                 end=days_ago(100),
                                                                 status="stopped",
                                                                 stop_reason="x"))
        with pytest.raises(PermissionDenied):
            treatment.stop_episode(user, clinic.patient_b, theirs, reason="x")
    assert TreatmentEpisode.objects.count() == 1 and TreatmentEpisode.objects.get().status == "active"


# --------------------------------------------------------------------------- the rules


@pytest.mark.django_db
def test_a_buprenorphine_episode_with_current_kratom_raises_co_use_and_cyp3a(clinic):
    kratom_today(clinic)
    treatment.record_episode(clinic.clinician_a, clinic.patient_a, bup())
    found = topics(clinic.patient_a)
    assert {"co-use-sedative", "interaction-cyp3a"} <= found
    alert = Alert.objects.get(patient=clinic.patient_a, topic="co-use-sedative")
    assert "buprenorphine sublingual tablet (treatment episode)" in alert.message


@pytest.mark.django_db
def test_a_methadone_episode_with_current_kratom_raises_the_qt_finding(clinic):
    kratom_today(clinic)
    treatment.record_episode(clinic.clinician_a, clinic.patient_a, methadone())
    qt = Alert.objects.get(patient=clinic.patient_a, topic="qt-risk")
    assert "methadone oral liquid (treatment episode)" in qt.message
    assert "krantz-2009-methadone-qtc" in qt.citations


@pytest.mark.django_db
def test_kratom_while_on_a_naltrexone_episode_needs_review_and_stopping_ends_it(clinic):
    kratom_today(clinic)
    ep = treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "naltrexone", "formulation": "oral-tablet", "dose_mg": "50",
        "start": days_ago(10)})
    alert = Alert.objects.get(patient=clinic.patient_a, topic="naltrexone-kratom")
    assert alert.rule == "SAF-NALTREXONE-KRATOM" and "overdose" in alert.message
    # a naltrexone episode is no opioid co-use
    assert "co-use-sedative" not in topics(clinic.patient_a)
    treatment.stop_episode(clinic.clinician_a, clinic.patient_a, ep, reason="patient choice",
                           at=days_ago(1))
    alert.refresh_from_db()
    assert alert.stopped_firing_at is not None


# --------------------------------------------------------------------------- the decision aid


def decision(clinic, patient, choice):
    from speciosa.education.models import Decision

    return Decision.objects.create(patient=patient, choice=choice, reason="agreed together",
                                   clinician=clinic.clinician_a, patient_agreed_name="Maya Quinn",
                                   decided_at=timezone.now() - dt.timedelta(days=1))


@pytest.mark.django_db
def test_an_episode_carries_out_a_decision_of_the_same_drug_only(clinic):
    chosen = decision(clinic, clinic.patient_a, "buprenorphine")
    ep = treatment.record_episode(clinic.clinician_a, clinic.patient_a, bup(decision=chosen.pk))
    assert ep.decision == chosen
    new = treatment.change_episode(clinic.clinician_a, clinic.patient_a, ep, {"dose_mg": "12"},
                                   reason="sedated")
    assert new.decision == chosen  # the next episode carries the same decision
    for bad, text in ((decision(clinic, clinic.patient_a, "methadone").pk, "chose methadone"),
                      (decision(clinic, clinic.patient_a, "supervised-taper").pk,
                       "not a medication for opioid use disorder"),
                      (decision(clinic, clinic.patient_b, "buprenorphine").pk, "No such decision"),
                      (999999, "No such decision"), (1.5, "whole number")):
        with pytest.raises(ValidationError) as exc:
            treatment.record_episode(clinic.clinician_a, clinic.patient_a,
                                     bup(decision=bad, start=days_ago(90), end=days_ago(60),
                                         status="stopped", stop_reason="x"))
        assert text in exc.value.message_dict["decision"][0], exc.value.message_dict
    assert TreatmentEpisode.objects.current().count() == 2
