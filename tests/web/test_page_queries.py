"""Issue 15: the pages a clinician waits for make a fixed number of queries, however long the
record: the patient page and its chart data (a regression to one query per entry, N+1, fails).
The timings themselves are measured by ``benchmarks/bench_pages.py``, not here."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db

#: Measured on the demo clinic at the time of writing: 31 (patient page) and 20 (chart data,
#: built) with the session, second-factor and audit queries; a little room for a new section.
#: 41: the Consents section (issue 16) reads the patient's signatures with their state in one.
#: The chart data reached 29 with the treatment-episode and urine-panel strip (issue 19: two
#: queries, however many episodes and panels).
PATIENT_PAGE_MAX = 41
CHART_DATA_MAX = 31


def _add_records(patient, clinician, n: int, start: int) -> None:
    """``n`` days of doses, assessments, labs, notes, side effects and medications."""
    from speciosa.clinic.models import Assessment, DiaryDay, Dose, LabResult, Medication, Note

    now = timezone.now()
    for i in range(start, start + n):
        at = now - dt.timedelta(days=i + 1, hours=2)
        diary = DiaryDay.objects.create(patient=patient, day=at.date())
        for h in (0, 6):
            Dose.objects.create(patient=patient, entered_by=patient.user, source="patient",
                                diary=diary, amount=Decimal("2.5"), unit="g",
                                mitragynine_percent=Decimal("1.5"), product=f"tin {i}",
                                taken_at=at + dt.timedelta(hours=h))
        Assessment.objects.create(patient=patient, entered_by=clinician, source="clinician",
                                  instrument="craving-nrs", at=at, total=i % 10, items={"craving": i % 10})
        Assessment.objects.create(patient=patient, entered_by=patient.user, source="patient",
                                  instrument="side-effects", at=at, items={"constipation": True})
        LabResult.objects.create(patient=patient, entered_by=clinician, source="clinician",
                                 lab="prolactin", loinc="2842-3", collected_at=at,
                                 value=Decimal("12.5"), unit="ng/mL", canonical_value=12.5,
                                 canonical_unit="ng/mL")
        Note.objects.create(patient=patient, entered_by=clinician, source="clinician",
                            text=f"note {i}", at=at)
        Medication.objects.create(patient=patient, entered_by=clinician, source="clinician",
                                  name=f"medicine {i}", start=at.date())


class Counter:
    """Counts the statements run (``connection.execute_wrapper``: unlike the queries log, it is
    not reset when a request starts)."""

    def __init__(self):
        self.n = 0

    def __call__(self, execute, sql, params, many, context):
        self.n += 1
        return execute(sql, params, many, context)


def _queries(client, url: str, *, clear: bool = True) -> int:
    if clear:
        cache.clear()  # the chart data are built, not taken from the cache
    counter = Counter()
    with connection.execute_wrapper(counter):
        response = client.get(url)
    assert response.status_code == 200, url
    return counter.n


@pytest.mark.parametrize("page", ["patient_detail", "patient_charts"])
def test_the_number_of_queries_does_not_grow_with_the_record(clinic, login, page):
    patient, clinician = clinic.patient_a, clinic.clinician_a
    client = login(clinician)
    url = reverse(page, args=[patient.pk])
    client.get(url)  # the first request's one-off work (session, second factor)
    _add_records(patient, clinician, 3, 0)
    few = _queries(client, url)
    _add_records(patient, clinician, 12, 3)
    many = _queries(client, url)
    assert few > 5 and many == few, f"{url}: {few} queries with 3 days of records, {many} with 15 (N+1?)"
    assert many <= (PATIENT_PAGE_MAX if page == "patient_detail" else CHART_DATA_MAX), many


def test_the_chart_data_are_reused_until_the_record_changes(clinic, login):
    """The built chart data are cached by a digest of the record: a new dose or a retraction
    shows at once."""
    from speciosa.clinic.models import Dose

    patient, clinician = clinic.patient_a, clinic.clinician_a
    client = login(clinician)
    url = reverse("patient_charts", args=[patient.pk])
    _add_records(patient, clinician, 2, 0)
    cache.clear()
    first = client.get(url).json()
    reused = _queries(client, url, clear=False)
    assert client.get(url).json() == first
    assert reused < _queries(client, url)  # reused, not rebuilt
    dose = Dose.objects.filter(patient=patient).order_by("-taken_at").first()
    Dose.objects.filter(pk=dose.pk).update(retracted=True)
    assert client.get(url).json() != first
    from speciosa.clinic.models import TreatmentEpisode

    TreatmentEpisode.objects.create(patient=patient, entered_by=clinician, source="clinician",
                                    drug="methadone", formulation="oral-liquid", dose_mg=60,
                                    dispensing_clinic="OTP", start=timezone.localdate())
    assert _queries(client, url, clear=False) > reused  # rebuilt: an episode is charted data
