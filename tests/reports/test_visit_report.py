"""The visit report's statements agree with the record (issue 15): what it says about
symptoms is read from the same data as the prolactin-symptoms alert; it has the notes, the
medication list (coded or not) and a table of the period's assessments; no heading is left
alone at the foot of a page."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from pypdf import PdfReader

from speciosa.clinic.models import Alert, Assessment, Medication, Note, Source
from speciosa.reports import pdf

from .conftest import NOW

pytestmark = pytest.mark.django_db

NO_SYMPTOMS = "No symptoms are recorded"


def _pages(patient, **kw) -> list[str]:
    reader = PdfReader(io.BytesIO(pdf.visit_report(patient, now=NOW, **kw)))
    return [page.extract_text() for page in reader.pages]


def _flat(pages) -> str:
    return " ".join(" ".join(pages).split())


def test_with_a_symptom_reported_the_report_does_not_say_none_are_recorded(charted):
    # charted: prolactin 41.7 ng/mL (high) and reduced sex drive ticked 5 days ago
    text = _flat(_pages(charted.patient))
    assert NO_SYMPTOMS not in text
    assert "Symptoms that can come from high prolactin reported: less interest in sex than usual" in text


def test_without_symptoms_it_says_so_and_suggests_the_macroprolactin_screen(charted):
    Assessment.objects.filter(patient=charted.patient, instrument="side-effects").delete()
    text = _flat(_pages(charted.patient))
    assert f"{NO_SYMPTOMS}. In asymptomatic hyperprolactinaemia, screen for macroprolactin" in text


def test_an_open_prolactin_symptoms_alert_counts_even_after_the_window(charted, settings):
    """The alert stays open until resolved: beside it the report never says "no symptoms",
    whatever the window in force now."""
    Assessment.objects.filter(patient=charted.patient, instrument="side-effects").update(
        at=NOW - dt.timedelta(days=400))
    assert NO_SYMPTOMS in _flat(_pages(charted.patient))  # outside the rules' window, no alert
    Alert.objects.create(patient=charted.patient, rule="SAF-PRL-SYMPT", topic="prolactin-symptoms",
                         severity="warning", message="Symptoms that can come from high prolactin.",
                         first_seen_at=NOW - dt.timedelta(days=2),
                         evidence={"symptoms": [{"code": "nipple-discharge",
                                                 "at": (NOW - dt.timedelta(days=2)).isoformat()}]})
    text = _flat(_pages(charted.patient))
    assert NO_SYMPTOMS not in text and "fluid or milk from a nipple" in text


def test_the_report_has_the_notes_the_medications_and_the_assessments(charted, clinic):
    p, doc = charted.patient, clinic.clinician_a
    Note.objects.create(patient=p, entered_by=doc, source=Source.CLINICIAN, at=NOW - dt.timedelta(days=2),
                        text="Discussed tapering; she prefers to wait a month.")
    Note.objects.create(patient=p, entered_by=doc, source=Source.CLINICIAN, at=NOW - dt.timedelta(days=200),
                        text="An old note outside the period.")
    Medication.objects.create(patient=p, entered_by=doc, source=Source.CLINICIAN, name="Buprenorphine",
                              drug="buprenorphine", rxnorm="1819", start=dt.date(2026, 1, 5),
                              dose_amount=8, dose_unit="mg", frequency="once a day")
    Medication.objects.create(patient=p, entered_by=p.user, source=Source.PATIENT, name="Grandma's tea",
                              start=dt.date(2026, 2, 1))
    Medication.objects.create(patient=p, entered_by=doc, source=Source.CLINICIAN, name="Sertraline",
                              drug="sertraline", start=dt.date(2025, 1, 1), end=dt.date(2025, 3, 1),
                              status="stopped")
    text = _flat(_pages(p, period="90"))
    assert "Notes in the period" in text and "Discussed tapering; she prefers to wait a month." in text
    assert "Ada Okafor" in text and "An old note outside the period" not in text
    assert "Buprenorphine" in text and "coded: buprenorphine (RxNorm 1819)" in text
    assert "Grandma's tea" in text and "not coded" in text and "not yet confirmed" in text
    assert "Sertraline" not in text  # stopped before the period
    assert "Assessments in the period" in text
    assert "Clinical Opiate Withdrawal Scale" in text and "moderate" in text
    assert "Craving (0-10) rated 40 times in the period" in text


@pytest.mark.parametrize("alerts", [2, 4, 6])
def test_no_heading_is_left_alone_at_the_foot_of_a_page(charted, clinic, alerts):
    p = charted.patient
    for i in range(alerts):  # the alerts push the charts' heading down page 1
        Alert.objects.create(patient=p, rule=f"r{i}", topic=f"topic {i}", severity="info",
                             message="A finding to read before the visit. " * 5,
                             next_step="Consider what to do. " * 3, first_seen_at=NOW - dt.timedelta(days=1))
    for i in range(30):  # enough rows to push the later sections across pages
        Note.objects.create(patient=p, entered_by=clinic.clinician_a, source=Source.CLINICIAN,
                            at=NOW - dt.timedelta(days=1, minutes=i), text=f"Follow-up note {i}. " * 6)
    headings = [h for h, _ in pdf.SECTIONS]
    reader = PdfReader(io.BytesIO(pdf.visit_report(p, now=NOW, period="all")))
    assert len(reader.pages) >= 3
    for number, page in enumerate(reader.pages, 1):
        lines = [x.strip() for x in page.extract_text().splitlines() if x.strip()]
        body = [x for x in lines if "not a medical device" not in x and not x.startswith("Page ")
                and "model estimates" not in x and "never a dose recommendation" not in x]
        assert body and body[-1] not in headings, (number, body[-3:])
        if "Charts" in lines:  # the heading's page holds the chart drawn under it
            assert page.images, number


def test_the_report_has_the_treatment_episodes_of_the_period(charted, clinic):
    from speciosa.clinic.models import TreatmentEpisode

    p, doc = charted.patient, clinic.clinician_a
    TreatmentEpisode.objects.create(patient=p, entered_by=doc, source=Source.CLINICIAN,
                                    drug="methadone", formulation="oral-liquid", dose_mg=60,
                                    dispensing_clinic="Harbour Street OTP",
                                    start=NOW.date() - dt.timedelta(days=40))
    TreatmentEpisode.objects.create(patient=p, entered_by=doc, source=Source.CLINICIAN,
                                    drug="naltrexone", formulation="xr-injection", dose_mg=380,
                                    injection_dates=["2025-01-10"], start=dt.date(2025, 1, 10),
                                    end=dt.date(2025, 2, 1), status="stopped",
                                    stop_reason="moved away")
    text = _flat(_pages(p, period="90"))
    assert "Treatment for opioid use disorder" in text
    assert "methadone oral liquid" in text and "60 mg per day" in text
    assert "dispensed by Harbour Street OTP" in text
    assert "naltrexone" not in text.split("Treatment for opioid use disorder")[1].split("Charts")[0]


def test_a_note_longer_than_a_page_continues_on_the_next_page_in_order(charted, clinic):
    """Adversarial pass: a note of the 5000 characters a note may hold is taller than a page.
    Its row was drawn past the foot of the page, fpdf then broke the page at every line: the
    last lines of the note stood one per page (four pages holding a single line each). The
    row now continues on the next page under the table's headings, every word in order."""
    p = charted.patient
    words = [f"w{i:04d}" for i in range(830)]
    text = " ".join(words)
    assert len(text) <= 5000
    short = len(_pages(p, period="90"))
    Note.objects.create(patient=p, entered_by=clinic.clinician_a, source=Source.CLINICIAN,
                        at=NOW - dt.timedelta(days=1), text=text)
    pages = _pages(p, period="90")
    assert len(pages) <= short + 2
    flat = _flat(pages)
    at = [flat.index(w) for w in words]
    assert at == sorted(at)
    per_page = [sum(page.count(w) for w in words) for page in pages]
    holding = [n for n in per_page if n]
    assert all(n >= 100 for n in holding[:-1]), per_page  # no page holding a line or two
    # a word of 5000 letters (a pasted key or link) is cut into lines, all of it kept
    Note.objects.create(patient=p, entered_by=clinic.clinician_a, source=Source.CLINICIAN,
                        at=NOW - dt.timedelta(days=2), text="Z" * 4990 + "END")
    flat = "".join("".join(_pages(p, period="90")).split())
    assert flat.count("Z") == 4990 and "ZZEND" in flat


def test_the_report_has_the_taper_plan_its_prediction_and_planned_against_taken(charted, clinic):
    """Issue 19: the plan as entered, the predicted exposure (a prediction, not a
    recommendation, cited), and each day of the period against the diary (3 g twice a day
    recorded, 5 g a day planned: more than planned)."""
    from speciosa.clinic.models import TaperPlan

    p = charted.patient
    start = NOW.date() - dt.timedelta(days=5)
    steps = [{"start": (start + dt.timedelta(days=7 * w)).isoformat(),
              "end": (start + dt.timedelta(days=7 * w + 6)).isoformat(), "amount": a,
              "unit": "g", "doses_per_day": 2, "mitragynine_percent": None,
              "grams_per_capsule": None} for w, a in enumerate(("2.5", "2", "1.5", "1"))]
    TaperPlan.objects.create(patient=p, entered_by=clinic.clinician_a, source=Source.CLINICIAN,
                             kind="kratom", reason="agreed a four-week taper", steps=steps,
                             start=start, end=start + dt.timedelta(days=27))
    text = _flat(_pages(p, period="30"))
    section = text.split("Taper plan")[1].split("Charts")[0]
    assert "Kratom taper" in section and "agreed a four-week taper" in section
    assert "2.5 g of leaf" in section and "5 g of leaf" in section
    assert "not a recommendation" in section and "tanna-2022" in section
    assert "After the plan's last dose" in section
    assert "6 g of leaf" in section and "more than planned" in section
    assert "[tanna-2022]" in text.split("Citations used")[1]
