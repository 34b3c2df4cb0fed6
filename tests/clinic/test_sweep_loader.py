"""The sweep's bulk loader gives the rules exactly the facts a per-patient load gives.

A generated clinic on three sites (UTC, New York, Bangkok) with the cases a bulk load can get
wrong: corrected (superseded) and retracted records, doses and checklists on the local days at
the edge of each window, side-effect checklists whose items hold 0, 1, true, false, null or
"", instruments no rule reads, a last dose long before the window. The reference is each
patient's records read one by one through the ORM (full history), as the naive way did.

- without ``as_of`` the bulk load equals the reference, timeline for timeline;
- with ``as_of`` (now, a past time at a local midnight, a past time in the middle of a day)
  every fact of the windowed load is a fact of the reference, and the findings are the
  same as the reference's.
"""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo

import pytest
from django.utils import timezone

from speciosa import safety
from speciosa.clinic import alerts
from speciosa.clinic.models import (
    Assessment,
    CareTeam,
    DiaryDay,
    Dose,
    LabResult,
    Medication,
    Patient,
    Site,
    SubstanceUse,
)
from speciosa.knowledge import instruments
from speciosa.pharmacology.doses import Dose as PDose

ZONES = ("UTC", "America/New_York", "Asia/Bangkok")


def _f(x):
    return float(x) if x is not None else None


def reference_timeline(pid: int) -> safety.Timeline:
    """One patient's full history, read record by record through the ORM."""
    p = Patient.objects.select_related("site").get(pk=pid)
    doses = [PDose(d.taken_at, float(d.amount), d.unit, _f(d.mitragynine_percent),
                   _f(d.grams_per_capsule), d.product or None)
             for d in Dose.objects.current().filter(patient=p)]
    assessments, side_effects = [], []
    for a in Assessment.objects.current().filter(patient=p):
        if a.instrument == alerts.SIDE_EFFECTS_INSTRUMENT:
            side_effects += [safety.SideEffect(at=a.at, code=c) for c, v in (a.items or {}).items() if v]
        else:
            assessments.append(safety.Assessment(instrument=a.instrument, at=a.at, items=a.items or None,
                                                 total=a.total))
    own = LabResult.RangeSource.LABORATORY
    labs = [safety.LabResult(
        lab=x.lab, at=x.collected_at, value=_f(x.value), unit=x.unit or None, result=x.result or None,
        comparator=x.comparator or None, iu_factor=x.iu_factor, canonical_value=x.canonical_value,
        sample_state=x.sample_state or None, panel=x.panel_id,
        specimen_invalid=bool(x.panel and x.panel.specimen_problems),
        reference_unit=x.canonical_unit or None,
        reference_low=x.reference_low if x.reference_source == own else None,
        reference_high=x.reference_high if x.reference_source == own else None)
        for x in LabResult.objects.current().filter(patient=p)]
    meds = [safety.Medication(name=m.name, start=m.start, end=m.end, drug=m.drug or None, status=m.status)
            for m in Medication.objects.current().filter(patient=p)]
    subs = [safety.Substance(name=s.name, at=s.at) for s in SubstanceUse.objects.current().filter(patient=p)]
    days = [d.day for d in DiaryDay.objects.filter(patient=p)]
    return safety.Timeline(
        patient=safety.Patient(sex=p.sex, birth_date=p.birth_date, pregnant=p.pregnant,
                               breastfeeding=p.breastfeeding),
        doses=tuple(doses), assessments=tuple(assessments), labs=tuple(labs),
        side_effects=tuple(side_effects), medications=tuple(meds), substances=tuple(subs),
        diary_days=tuple(days), tz=zoneinfo.ZoneInfo(p.site.time_zone))


FIELDS = ("doses", "assessments", "labs", "side_effects", "medications", "substances", "diary_days")


def facts(tl: safety.Timeline) -> dict[str, list[str]]:
    """The timeline's facts, table by table (sorted: equal times may come in any order)."""
    out = {name: sorted(map(repr, getattr(tl, name))) for name in FIELDS}
    out["patient"] = [repr(tl.patient), str(tl.tz)]
    return out


def _history(p: Patient, tz: zoneinfo.ZoneInfo, rng: random.Random, today: dt.date, *,
             days: int, last_dose_days_ago: int = 0) -> None:
    cows, sows, phq9 = (instruments.get_instrument(i) for i in ("cows", "sows", "phq9"))
    se = [it.id for it in instruments.get_instrument("side-effects").items]
    lb = alerts.lookback(None)

    now = timezone.now()

    def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        """That local time, or now when it is still to come (records are never in the future)."""
        return min(dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz), now)

    for n in range(days, -1, -1):
        day = today - dt.timedelta(days=n)
        if rng.random() < 0.85:
            DiaryDay.objects.create(patient=p, day=day)
        if n >= last_dose_days_ago:
            for k in range(rng.randint(0, 3)):
                # the first and last minutes of the local day, and the days around each
                # window's first day, are where a UTC day or an off-by-one would show
                hour, minute = ((0, 0), (23, 59), (8 + 5 * k, 30))[rng.randint(0, 2)]
                d = Dose.objects.create(patient=p, source="patient", taken_at=local(day, hour, minute),
                                        amount=round(1.5 + 3 * rng.random(), 3), unit="g",
                                        mitragynine_percent=rng.choice([None, 1.5]),
                                        product=rng.choice(["", "", "Red Bali"]))
                if rng.random() < 0.1:  # corrected: the old row superseded, a new one stands
                    Dose.objects.filter(pk=d.pk).update(superseded=True)
                    Dose.objects.create(patient=p, source="patient", taken_at=d.taken_at, amount=9.5,
                                        unit="g", replaces=d)
                elif rng.random() < 0.05:
                    Dose.objects.filter(pk=d.pk).update(retracted=True)
        if n % 7 == 0 or n in (lb.assessments[alerts.SIDE_EFFECTS_INSTRUMENT] - 1,
                               lb.assessments[alerts.SIDE_EFFECTS_INSTRUMENT]):
            items = {c: rng.choice([0, 0, 1]) for c in se}
            items[rng.choice(se)] = rng.choice([True, False, None, "", 1, 0])
            a = Assessment.objects.create(patient=p, source="patient", instrument="side-effects",
                                          instrument_version="speciosa-1", at=local(day, 0, 5), items=items)
            if rng.random() < 0.1:
                Assessment.objects.filter(pk=a.pk).update(retracted=True)
        if n % 4 == 0 or n in (lb.assessments["cows"] - 1, lb.assessments["cows"]):
            items = {it.id: rng.choice([v.value for v in it.values]) for it in cows.items}
            a = Assessment.objects.create(patient=p, source="clinician", instrument="cows",
                                          instrument_version=cows.version, at=local(day, 23, 50), items=items,
                                          total=instruments.score(cows, items).total)
            if rng.random() < 0.15:
                Assessment.objects.filter(pk=a.pk).update(superseded=True)
        if n % 3 == 0:
            items = {it.id: rng.randint(0, 2 if n > 3 else 4) for it in sows.items}
            Assessment.objects.create(patient=p, source="patient", instrument="sows",
                                      instrument_version=sows.version, at=local(day, 11), items=items,
                                      total=instruments.score(sows, items).total)
        if n % 6 == 0:
            items = {it.id: rng.randint(0, 3) for it in phq9.items if it.scored}
            Assessment.objects.create(patient=p, source="clinician", instrument="phq9",
                                      instrument_version=phq9.version, at=local(day, 12), items=items)
        Assessment.objects.create(patient=p, source="patient", instrument="craving-nrs", instrument_version="v1",
                                  at=local(day, 20), items={"craving": n % 11}, total=n % 11)
        if n % 30 == 0:
            value = round(8 + 40 * rng.random(), 1)
            lab = LabResult.objects.create(patient=p, source="clinician", lab="prolactin", collected_at=local(day, 9),
                                           value=value, unit="ng/mL", canonical_value=value,
                                           canonical_unit="ng/mL", reference_low=4.0, reference_high=15.2,
                                           reference_source=rng.choice(["laboratory", ""]))
            if rng.random() < 0.2:
                LabResult.objects.filter(pk=lab.pk).update(retracted=True)
            LabResult.objects.create(patient=p, source="clinician", lab="alt", collected_at=local(day, 9),
                                     value=rng.choice([30, 240]), unit="U/L", canonical_value=30.0,
                                     canonical_unit="U/L")
        if rng.random() < 0.08:
            s = SubstanceUse.objects.create(patient=p, source="patient", at=local(day, 22),
                                            name=rng.choice(["alcohol", "alprazolam", "cannabis"]))
            if rng.random() < 0.2:
                SubstanceUse.objects.filter(pk=s.pk).update(retracted=True)
    Medication.objects.create(patient=p, source="clinician", name="midazolam", start=today - dt.timedelta(days=days))
    m = Medication.objects.create(patient=p, source="clinician", name="alprazolam",
                                  start=today - dt.timedelta(days=20))
    if rng.random() < 0.5:
        Medication.objects.filter(pk=m.pk).update(retracted=True)


@pytest.fixture
def generated(db):
    today = timezone.now().astimezone(dt.UTC).date()
    rng = random.Random(18)
    ids = []
    for i, name in enumerate(ZONES * 3):
        site = Site.objects.create(name=f"Loader {i}", time_zone=name)
        team = CareTeam.objects.create(site=site, name=f"Loader team {i}")
        p = Patient.objects.create(site=site, care_team=team, identifier=f"L-{i}", given_name="L",
                                   family_name=f"Loader{i}", birth_date=dt.date(1975, 1, 1),
                                   sex=("female", "male")[i % 2], in_care_since=today - dt.timedelta(days=100))
        _history(p, zoneinfo.ZoneInfo(name), rng, today, days=45 if i < 6 else 70,
                 last_dose_days_ago=60 if i == 7 else 0)
        ids.append(p.pk)
    return ids


@pytest.mark.django_db
def test_the_bulk_load_equals_a_per_patient_load(generated):
    bulk = alerts.load_timelines(generated)
    assert set(bulk) == set(generated)
    for pid in generated:
        ref = reference_timeline(pid)
        assert facts(bulk[pid]) == facts(ref), pid
    # the generated clinic has what the test is about
    assert Dose.objects.filter(superseded=True).exists() and Dose.objects.filter(retracted=True).exists()
    assert Assessment.objects.filter(retracted=True, instrument="side-effects").exists()
    assert any(tl.side_effects for tl in bulk.values())


def _as_ofs() -> list[dt.datetime]:
    now = timezone.now()
    ny = zoneinfo.ZoneInfo("America/New_York")
    midnight = dt.datetime.combine(now.astimezone(ny).date() - dt.timedelta(days=3), dt.time(), tzinfo=ny)
    return [now, midnight, midnight - dt.timedelta(days=5, hours=12, minutes=1)]


@pytest.mark.django_db
@pytest.mark.parametrize("when", [0, 1, 2])
def test_the_windowed_load_gives_the_same_facts_and_findings(generated, when):
    as_of = _as_ofs()[when]
    windowed = alerts.load_timelines(generated, as_of=as_of, settings={})
    fired = 0
    for pid in generated:
        ref = reference_timeline(pid)
        got, full = facts(windowed[pid]), facts(ref)
        for name in FIELDS:
            assert set(got[name]) <= set(full[name]), (pid, name)
        assert got["patient"] == full["patient"]
        want = [f.as_json() for f in safety.evaluate(ref, as_of)]
        assert [f.as_json() for f in safety.evaluate(windowed[pid], as_of)] == want, pid
        fired += len(want)
    assert fired > 0


@pytest.mark.django_db
def test_one_assessment_query_per_window(generated, monkeypatch):
    """Each window of instruments is one query, the side-effect checklists included (on
    PostgreSQL their ticked items come from jsonb_each): no query whose conditions exclude
    every row (the checklists' window asked again for everything but the checklists, the
    other windows for checklists they do not hold; issue 18: 173 ms of the server a chunk)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sent = []
    pg_rows = alerts._pg_rows

    def spy(conn, sql, params):
        sent.append(sql)
        return pg_rows(conn, sql, params)

    monkeypatch.setattr(alerts, "_pg_rows", spy)
    windows = alerts.lookback(None).assessments
    with CaptureQueriesContext(connection) as queries:
        loaded = alerts.load_timelines(generated, as_of=timezone.now())
    sent += [q["sql"] for q in queries.captured_queries]
    asked = [sql for sql in sent if '"clinic_assessment"' in sql]
    assert len(asked) == len(set(windows.values()))
    assert any(tl.side_effects for tl in loaded.values()) and any(tl.assessments for tl in loaded.values())
