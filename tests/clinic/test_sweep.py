"""The sweep's lookback: loading only the rows the rules can read changes no finding; worker
processes give the same alerts as one process."""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import json
import random
import re

import pytest
from django.utils import timezone

from speciosa import safety
from speciosa.clinic import alerts
from speciosa.clinic.models import (
    Alert,
    Assessment,
    DiaryDay,
    Dose,
    LabResult,
    Medication,
    Patient,
    SubstanceUse,
)
from speciosa.knowledge import instruments
from speciosa.safety import rules


def _at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def _history(patient: Patient, *, days: int = 420, seed: int = 1, stop_diary: int = 0, stop_doses: int = 0,
             escalate: bool = False) -> None:
    """A rich generated history ending today: diaries, doses, every instrument the rules read
    and some they do not, labs (a prolactin baseline over a year old), substances, medications."""
    rng = random.Random(seed)
    today = timezone.now().astimezone(dt.UTC).date()
    cows, sows, phq9 = (instruments.get_instrument(i) for i in ("cows", "sows", "phq9"))
    diary, doses, assessments, labs, subs = [], [], [], [], []
    for n in range(days, -1, -1):
        day = today - dt.timedelta(days=n)
        if n >= stop_diary and rng.random() < 0.9:
            diary.append(DiaryDay(patient=patient, day=day))
        if n >= stop_doses:
            for k in range(1 + int(rng.random() * 3)):
                amount = (4.0 if escalate and n < 14 else 2.0) * (0.9 + 0.2 * rng.random())
                doses.append(Dose(patient=patient, source="patient", taken_at=_at(day, 7 + 5 * k),
                                  amount=round(amount, 3), unit="g", mitragynine_percent=1.5))
        assessments.append(Assessment(patient=patient, source="patient", instrument="craving-nrs",
                                      instrument_version="v1", at=_at(day, 20), items={"craving": n % 11},
                                      total=n % 11))
        if n % 5 == 0 or n == 1:
            items = {it.id: rng.choice([v.value for v in it.values]) for it in cows.items}
            assessments.append(Assessment(patient=patient, source="clinician", instrument="cows",
                                          instrument_version=cows.version, at=_at(day, 10), items=items,
                                          total=instruments.score(cows, items).total))
        if n % 3 == 0:
            items = {it.id: min(4, int(rng.random() * (5 if n < 3 else 2))) for it in sows.items}
            assessments.append(Assessment(patient=patient, source="patient", instrument="sows",
                                          instrument_version=sows.version, at=_at(day, 11), items=items,
                                          total=instruments.score(sows, items).total))
        if n % 9 == 0:
            items = {it.id: int(rng.random() * 2) for it in phq9.items if it.scored}
            assessments.append(Assessment(patient=patient, source="clinician", instrument="phq9",
                                          instrument_version=phq9.version, at=_at(day, 12), items=items))
        if n % 7 == 0:
            items = {"reduced-sex-drive": int(n < 60), "seizure": int(n == 20), "dark-urine-yellow-eyes": int(n == 35),
                     "nausea": 1}
            assessments.append(Assessment(patient=patient, source="patient", instrument="side-effects",
                                          instrument_version="speciosa-1", at=_at(day, 21), items=items))
        if n in (400, 200, 100, 300) or n % 42 == 0:
            value = 8.0 if n >= 400 else 8.0 + (400 - n) / 20
            labs.append(LabResult(patient=patient, source="clinician", lab="prolactin", collected_at=_at(day, 9),
                                  value=round(value, 1), unit="ng/mL"))
            labs.append(LabResult(patient=patient, source="clinician", lab="alt", collected_at=_at(day, 9),
                                  value=200 if n == 42 else 30, unit="U/L"))
        if n % 17 == 0:
            subs.append(SubstanceUse(patient=patient, source="patient", at=_at(day, 22),
                                     name=("alcohol", "alprazolam", "cannabis")[n % 3]))
    assessments.append(Assessment(patient=patient, source="clinician", instrument="audit-c",
                                  instrument_version="v1", at=_at(today - dt.timedelta(days=300), 9), total=9))
    DiaryDay.objects.bulk_create(diary)
    Dose.objects.bulk_create(doses)
    Assessment.objects.bulk_create(assessments)
    LabResult.objects.bulk_create(labs)
    SubstanceUse.objects.bulk_create(subs)
    Medication.objects.create(patient=patient, source="clinician", name="midazolam",
                              start=today - dt.timedelta(days=500))
    Medication.objects.create(patient=patient, source="clinician", name="sertraline",
                              start=today - dt.timedelta(days=400), end=today - dt.timedelta(days=100))


def _findings(timelines, pid, as_of):
    return [f.as_json() for f in safety.evaluate(timelines[pid], as_of)]


@pytest.mark.django_db
@pytest.mark.parametrize("variant", [
    {},
    {"stop_diary": 9},  # diary-missed, last day inside the window
    {"stop_diary": 80},  # diary-missed after a long gap: the 28 days before it are outside the window
    {"stop_doses": 100, "stop_diary": 100},  # last dose (named in evidence) long before the window
    {"escalate": True},
])
def test_rows_older_than_the_lookback_change_no_finding(clinic, variant):
    p = clinic.patient_a
    _history(p, **variant)
    now = timezone.now()
    full = alerts.load_timelines([p.pk])
    for back in (0, 1, 20, 150):
        as_of = now - dt.timedelta(days=back)
        windowed = alerts.load_timelines([p.pk], as_of=as_of)
        assert _findings(windowed, p.pk, as_of) == _findings(full, p.pk, as_of), (variant, back)
        assert len(windowed[p.pk].doses) <= len(full[p.pk].doses)
    windowed = alerts.load_timelines([p.pk], as_of=now)
    assert len(windowed[p.pk].doses) < len(full[p.pk].doses) / 5 or variant.get("stop_doses")
    assert all(a.instrument != "craving-nrs" for a in windowed[p.pk].assessments)  # no rule reads it
    rules_fired = {f["rule"] for f in _findings(windowed, p.pk, now)}
    assert rules_fired  # the history gives the rules work
    if variant.get("stop_diary") in (9, 80):
        assert "SAF-DIARY-GAP" in rules_fired
    if variant.get("stop_doses"):
        assert windowed[p.pk].doses  # the last dose is kept


@pytest.mark.django_db
def test_the_lookback_keeps_a_prolactin_baseline_older_than_a_year(clinic):
    p = clinic.patient_a
    now = timezone.now()
    for days_ago, value in ((500, 8.0), (1, 16.0)):
        LabResult.objects.create(patient=p, source="clinician", lab="prolactin",
                                 collected_at=now - dt.timedelta(days=days_ago), value=value, unit="ng/mL")
    timelines = alerts.load_timelines([p.pk], as_of=now)
    assert len(timelines[p.pk].labs) == 2
    alerts.evaluate_patients([p.pk], as_of=now)
    alert = Alert.objects.get(patient=p, rule="SAF-PRL-RISE", status="open")
    assert alert.evidence["baseline"]["value"] == 8.0 and alert.evidence["rise_percent"] == 100.0


def test_every_instrument_the_rules_read_has_a_window():
    source = "".join(inspect.getsource(importlib.import_module(f"{rules.__name__}.{area}"))
                     for area in rules.AREAS)
    read = set(re.findall(r'ctx\.assessments\("([^"]+)"', source))
    read |= set(re.findall(r'ctx\.assessments_before\("([^"]+)"', source))
    assert read and read <= set(alerts.lookback().assessments)
    assert "side-effects" in alerts.lookback().assessments


def test_the_lookback_follows_the_settings():
    default = alerts.lookback()
    wider = alerts.lookback({"co_use_lookback_days": 120, "kratom_current_use_days": 60, "diary_gap_days": 30,
                             "sows_baseline_days": 60})
    assert default.substances > 30 and wider.substances > 120
    assert default.doses > 28 and wider.doses > 60
    assert default.diary_days > 35 and wider.diary_days > 58
    assert wider.assessments["sows"] > 63
    assert default.assessments["audit-c"] > 365


@pytest.mark.django_db(transaction=True)
def test_two_workers_give_the_same_alerts_as_one(clinic, monkeypatch):
    patients = [clinic.patient_a, clinic.patient_b] + [
        Patient.objects.create(site=clinic.site_a, care_team=clinic.team_a, identifier=f"W-{i}", given_name="W",
                               family_name=f"Worker{i}", birth_date=dt.date(1980, 1, 1), sex="female")
        for i in range(3)]
    for i, p in enumerate(patients):
        _history(p, days=60, seed=i, stop_diary=10 if i % 2 else 0, escalate=i == 3)
    monkeypatch.setattr(alerts, "CHUNK", 2)
    now = timezone.now()
    first = alerts.sweep(as_of=now, workers=2)
    assert first.patients == len(patients) and first.created == first.findings > 0
    snapshot = sorted(Alert.objects.filter(status__in=Alert.ACTIVE).values_list("patient_id", "rule", "message"))
    again = alerts.sweep(as_of=now, workers=2)
    assert again.created == 0 and again.updated == first.findings and again.stopped == 0
    one = alerts.sweep(as_of=now)
    assert (one.findings, one.created) == (first.findings, 0)
    assert sorted(Alert.objects.filter(status__in=Alert.ACTIVE).values_list("patient_id", "rule", "message")) \
        == snapshot
    for pid, rule in Alert.objects.filter(status__in=Alert.ACTIVE).values_list("patient_id", "rule"):
        assert Alert.objects.filter(patient_id=pid, rule=rule, status__in=Alert.ACTIVE).count() == 1


@pytest.mark.django_db
def test_an_unchanged_finding_moves_only_last_seen_at(clinic):
    p = clinic.patient_a
    LabResult.objects.create(patient=p, source="clinician", lab="prolactin",
                             collected_at=timezone.now() - dt.timedelta(days=1), value=60, unit="ng/mL")
    alerts.sweep()
    alert = Alert.objects.get(patient=p, rule="SAF-PRL-HIGH")
    before = (alert.message, json.dumps(alert.evidence, sort_keys=True), alert.last_seen_at)
    result = alerts.sweep()
    alert.refresh_from_db()
    assert result.updated >= 1 and result.created == 0
    assert (alert.message, json.dumps(alert.evidence, sort_keys=True)) == before[:2]
    assert alert.last_seen_at > before[2]


def test_the_diary_band_of_the_first_and_last_days_of_the_calendar_is_a_date_range():
    # band 0 starts at ordinal 0, which date.fromordinal refuses; the last band runs past
    # 31 December 9999; taking days before 1 January of year 1 overflows
    import datetime as _dt

    from speciosa.clinic.alerts import band_days

    lo, hi = band_days(0, 28, _dt.date(2026, 1, 1))
    assert (lo, hi) == (_dt.date.min, _dt.date.fromordinal(63))
    last = _dt.date.max.toordinal() // 64
    lo, hi = band_days(last, 28, _dt.date.max)
    assert hi == _dt.date.max - _dt.timedelta(days=1) and lo == (
        _dt.date.fromordinal(last * 64) - _dt.timedelta(days=28))
    assert band_days(10, 28, _dt.date.fromordinal(10 * 64 + 5)) == (
        _dt.date.fromordinal(640 - 28), _dt.date.fromordinal(640 + 4))
