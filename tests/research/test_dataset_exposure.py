"""Issue 18: the research dataset's daily exposure goes through the cohort path (one
``daily_mitragynine_totals`` call for every patient), and gives exactly the values of the
per-patient path (``daily_mitragynine_mg`` for each patient in their site's zone), on patients in
three zones with every unit, doses that cannot be converted, doses near local midnight and across
a daylight-saving change."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from tests.conftest import give_consent, make_patient

pytestmark = pytest.mark.django_db

KEY = b"test-research-key-0123456789abcdef"
NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
#: (unit, amount, percent, grams per capsule): convertible, defaulted and unconvertible doses
KINDS = [("g", "2.5", "1.5", None), ("g", "3.0", None, None), ("capsule", "4", None, "0.5"),
         ("capsule", "2", "1.2", "0.75"), ("capsule", "3", None, None),  # no g/capsule: none
         ("extract", "1", "40", None), ("extract", "1", None, None),  # no percent: none
         ("glass", "1", None, None), ("mg_7oh", "15", None, None),  # 7-OH: never converted
         ("g", "0", None, None)]


def _clinic():
    from speciosa.clinic.models import CareTeam, DiaryDay, Dose, Site

    rng = random.Random(18)
    patients = []
    for zone in ("UTC", "America/New_York", "Pacific/Auckland"):
        site = Site.objects.create(name=f"Site {zone}", time_zone=zone)
        team = CareTeam.objects.create(site=site, name="Team")
        tz = ZoneInfo(zone)
        for _ in range(4):
            p = make_patient(site, team, None, "", in_care_since=dt.date(2026, 8, 1))
            give_consent(p, "research")
            patients.append(p)
            for k in range(110):  # August to mid-November: New York's and Auckland's DST changes
                day = dt.date(2026, 8, 1) + dt.timedelta(days=k)
                diary = DiaryDay.objects.create(patient=p, day=day) if rng.random() < 0.8 else None
                for _dose in range(rng.randint(0, 4)):
                    unit, amount, pct, gpc = rng.choice(KINDS)
                    local = dt.datetime.combine(day, dt.time(rng.choice((0, 7, 12, 23)), rng.randint(0, 59)))
                    Dose.objects.create(
                        patient=p, source="patient", diary=diary, unit=unit, amount=Decimal(amount),
                        mitragynine_percent=None if pct is None else Decimal(pct),
                        grams_per_capsule=None if gpc is None else Decimal(gpc),
                        taken_at=local.replace(tzinfo=tz), product="tin")
    return patients


def _per_patient_reference(cohort) -> dict[tuple[str, int], float]:
    """The earlier path: each patient's exported doses through ``daily_mitragynine_mg``."""
    from speciosa.clinic.models import Dose
    from speciosa.pharmacology import doses as pdoses
    from speciosa.research import deid

    out = {}
    for pid, person in cohort.people.items():
        mine = []
        for d in Dose.objects.current().filter(patient_id=pid).order_by("taken_at", "id"):
            local = d.taken_at.astimezone(person.tz).date()
            if person.timeline.place(local) is not deid.Placement.EXPORTED:
                continue
            mine.append(pdoses.Dose(taken_at=d.taken_at, amount=float(d.amount), unit=d.unit,
                                    mitragynine_percent=None if d.mitragynine_percent is None
                                    else float(d.mitragynine_percent),
                                    grams_per_capsule=None if d.grams_per_capsule is None
                                    else float(d.grams_per_capsule), product=d.product or None))
        for day, mg in pdoses.daily_mitragynine_mg(mine, person.tz).items():
            out[(person.pseudonym, person.timeline.day_in_care(day))] = float(mg)
    return out


def test_the_cohort_path_gives_the_per_patient_values_exactly():
    from speciosa.research import dataset, deid

    _clinic()
    options = deid.Options(k=1, max_suppressed=1.0, withheld_days=3)
    cohort = dataset._cohort(deid.Deidentifier(KEY), NOW, options)
    doses = dataset._dose_rows(cohort)
    cohort_path = {(cohort.people[pid].pseudonym, day): mg
                   for pid, days in dataset.daily_exposure_mg(doses).items() for day, mg in days.items()}
    reference = _per_patient_reference(cohort)
    assert len(reference) > 500
    assert cohort_path == reference  # the same sums, in the same order: equal floats
    # and the exported table carries them (0 on a diary day without a converted dose)
    ds = dataset.build_dataset(deid.Deidentifier(KEY), options=options, now=NOW)
    table = ds.tables["daily_exposure"]
    got = {(r.patient_id, r.day_in_care): r.mitragynine_mg for r in table.itertuples()}
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in reference.items() if v}
    assert all(got[k] == 0.0 for k in got.keys() - reference.keys())
    assert ds.timings["daily exposure (cohort path)"] > 0


def test_a_stored_nan_is_not_converted_on_either_path():
    """PostgreSQL's numeric holds NaN; the per-patient path refuses such a dose (not "not
    given"), and so does the cohort path's reading of the row."""
    from speciosa.research import dataset

    row = {"amount": Decimal("2"), "unit": "g", "mitragynine_percent": Decimal("NaN"),
           "grams_per_capsule": None}
    amount, unit, _pct, _gpc = dataset._conversion_inputs(row)
    assert unit == "g" and amount != amount  # NaN: counted as not converted
    amount, unit, _pct, _gpc = dataset._conversion_inputs({**row, "unit": "spoon",
                                                          "mitragynine_percent": None})
    assert unit == "" and amount != amount
