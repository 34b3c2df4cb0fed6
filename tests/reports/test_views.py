"""charts.json and report.pdf: who may fetch what (other team's patient 404, the patient sees
only themself), the audit entry of the report, and the PDF's text."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from speciosa.clinic.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_the_clinician_gets_their_patients_charts(charted, clinic, login):
    client = login(clinic.clinician_a)
    response = client.get(f"/patients/{charted.patient.pk}/charts.json")
    assert response.status_code == 200
    body = response.json()
    assert set(body["specs"]) == {"main", "labs"}
    assert body["counts"]["days"] == charted.days
    assert response["Cache-Control"] == "private, no-store"


def test_another_teams_patient_is_a_404_for_charts_and_report(charted, clinic, login):
    client = login(clinic.clinician_b)
    assert client.get(f"/patients/{charted.patient.pk}/charts.json").status_code == 404
    assert client.get(f"/patients/{charted.patient.pk}/report.pdf").status_code == 404
    assert client.get("/patients/999999/charts.json").status_code == 404


def test_patients_and_researchers_cannot_fetch_the_clinician_charts(charted, clinic, login):
    assert login(clinic.patient_a.user).get(f"/patients/{charted.patient.pk}/charts.json").status_code == 403
    assert login(clinic.researcher).get(f"/patients/{charted.patient.pk}/report.pdf").status_code == 403


def test_anonymous_users_are_sent_to_log_in(charted, client):
    response = client.get(f"/patients/{charted.patient.pk}/charts.json")
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert client.get("/me/charts.json").status_code == 302


def test_a_patient_sees_only_their_own_charts(charted, clinic, login):
    own = login(clinic.patient_a.user).get("/me/charts.json")
    assert own.status_code == 200
    assert own.json()["counts"]["days"] == charted.days
    other = login(clinic.patient_b.user).get("/me/charts.json")
    assert other.json()["counts"] == {"days": 0, "scores": 0, "labs": 0, "events": 0}
    assert login(clinic.clinician_a).get("/me/charts.json").status_code == 403


def test_the_visit_report_is_a_pdf_with_the_record_and_is_audited(charted, clinic, login):
    client = login(clinic.clinician_a)
    response = client.get(f"/patients/{charted.patient.pk}/report.pdf?days=all&purpose=treatment")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    flat = " ".join(text.split())
    assert "Maya Quinn" in flat
    assert "41.7 ng/mL" in flat and "HIGH" in flat  # a lab value with its flag
    assert "Prolactin 41.7 ng/mL is above the reference range." in flat  # the open alert
    assert "Resolved long ago" not in flat  # a resolved alert is not current
    assert "Kruegel" in flat and "[kruegel-2019]" in flat  # the alert's citation, formatted
    assert "not a medical device" in flat and "model estimates" in flat  # the footer
    assert "Clinical Opiate" in flat and "Constipation" in flat
    assert "Decisions recorded" in flat
    assert len(reader.pages[0].images) >= 1 or any(p.images for p in reader.pages)  # the charts
    entry = AuditEntry.objects.filter(patient=charted.patient, action="export", model="visit-report").get()
    assert entry.user == clinic.clinician_a and entry.reason == "purpose of use: Treatment (this clinic's care)"


def test_the_visit_report_asks_for_a_purpose_of_use_first(charted, clinic, login):
    client = login(clinic.clinician_a)
    url = f"/patients/{charted.patient.pk}/report.pdf"
    form = client.get(url)
    assert form.status_code == 200 and form["Content-Type"].startswith("text/html")
    assert 'name="purpose"' in form.content.decode()
    assert client.get(url + "?purpose=other&detail=").status_code == 400  # "other" needs words
    pdf = client.get(url + "?purpose=other&detail=insurer+asked")
    assert pdf["Content-Type"] == "application/pdf"
    assert AuditEntry.objects.get(action="export", model="visit-report").reason == \
        "purpose of use: Other: insurer asked"


def test_the_patient_page_links_the_report_and_the_chart_sources(charted, clinic, login):
    page = login(clinic.clinician_a).get(f"/patients/{charted.patient.pk}/").content.decode()
    assert f'href="/patients/{charted.patient.pk}/report.pdf"' in page
    assert f'data-charts-src="/patients/{charted.patient.pk}/charts.json"' in page
    assert "vendor/vega-embed-7.3.0.min.js" in page and "<script>" not in page
    home = login(clinic.patient_a.user).get("/me/").content.decode()
    assert 'data-charts-src="/me/charts.json"' in home
