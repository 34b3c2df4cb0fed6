"""The patient page's timeline with a limit: the same entries, in the same order, as the whole
record cut to that limit, while the kinds read after the first are read only from the time the
limit is reached (issue 18: a clinician's patient page read 41 rows of every kind to show 41)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from speciosa.clinic import selectors
from speciosa.clinic.models import Assessment, Dose, LabResult, Note, SubstanceUse

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)


def _record(clinic, days=30):
    """Doses three times a day, a craving score a day, a note every fourth day, a substance every
    fifth, a lab every tenth; some at the same minute as another kind (ties on time)."""
    p, who = clinic.patient_a, clinic.clinician_a
    for d in range(days):
        day = START + dt.timedelta(days=d)
        for h in (0, 6, 12):
            Dose.objects.create(patient=p, entered_by=who, source="clinician", unit="g", amount=Decimal("2.5"),
                                taken_at=day + dt.timedelta(hours=h))
        Assessment.objects.create(patient=p, entered_by=who, source="clinician", instrument="craving",
                                  at=day + dt.timedelta(hours=6), items={"craving": d % 10}, total=d % 10)
        if d % 4 == 0:
            Note.objects.create(patient=p, entered_by=who, source="clinician", text=f"note {d}",
                                at=day + dt.timedelta(hours=1))
        if d % 5 == 0:
            SubstanceUse.objects.create(patient=p, entered_by=who, source="clinician", name="alcohol",
                                        at=day + dt.timedelta(hours=12))
        if d % 10 == 0:
            LabResult.objects.create(patient=p, entered_by=who, source="clinician", lab="prolactin",
                                     collected_at=day + dt.timedelta(hours=2), value=Decimal("12"),
                                     unit="ng/mL", canonical_value=12.0, canonical_unit="ng/mL")
    return p


def _shown(events):
    return [(e.at, e.kind, type(e.record).__name__, e.record.pk, e.title, e.detail) for e in events]


@pytest.mark.parametrize("limit", [1, 5, 41, 95, 161, 500])
def test_a_limited_timeline_is_the_whole_record_cut_to_the_limit(clinic, limit):
    p = _record(clinic)
    whole = selectors.patient_timeline(p, limit=None)
    assert len(whole) > 130
    assert _shown(selectors.patient_timeline(p, limit=limit)) == _shown(whole[:limit])


def test_the_same_cut_with_a_start_time(clinic):
    p = _record(clinic)
    since = START + dt.timedelta(days=20, hours=3)
    whole = selectors.patient_timeline(p, since=since, limit=None)
    assert _shown(selectors.patient_timeline(p, since=since, limit=10)) == _shown(whole[:10])


def test_once_the_doses_fill_the_page_the_other_kinds_are_read_from_the_last_one_shown(clinic):
    p = _record(clinic)
    with CaptureQueriesContext(connection) as queries:
        events = selectors.patient_timeline(p, limit=41)
    oldest_dose = min(e.at for e in events if e.kind == "dose")
    assessments = [q["sql"] for q in queries.captured_queries if '"clinic_assessment"' in q["sql"].split("FROM")[1]]
    assert len(assessments) == 1
    # 41 doses reach back 14 days: the craving scores are read from there, not 41 of them
    assert ">=" in assessments[0]
    assert sum(1 for e in events if e.kind == "assessment") < 20
    assert all(e.at >= oldest_dose for e in events)


@pytest.mark.parametrize("limit", [11, 41, 161])
def test_entries_at_one_time_past_the_limit_are_cut_as_the_whole_record_is(clinic, limit):
    """A laboratory panel's results share their sample's time, an import's doses can share
    theirs. Each kind was read newest first and cut at the limit with nothing to break a tie
    on time, while the page orders ties by id, newest first: on PostgreSQL the query's cut
    kept 41 of 300 doses taken at one minute in whatever order the sort left them (ids 222 to
    262, say, not 260 to 300), so the page showed another 40 than its whole record's first
    40, and a longer page was not the shorter one followed by more."""
    p, who = clinic.patient_a, clinic.clinician_a
    for _ in range(300):
        Dose.objects.create(patient=p, entered_by=who, source="clinician", unit="g", amount=Decimal("2.5"),
                            taken_at=START)
    for i in range(30):
        Note.objects.create(patient=p, entered_by=who, source="clinician", text=f"note {i}", at=START)
    whole = selectors.patient_timeline(p, limit=None)
    assert _shown(selectors.patient_timeline(p, limit=limit)) == _shown(whole[:limit])
