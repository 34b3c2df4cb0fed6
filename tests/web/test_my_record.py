"""The patient's own record (issue 16): lab results in plain words against the range they
were read against, the decisions made with the clinician, the reading assigned, and the
record to download as PDF and FHIR (audited with its purpose); only the patient's own login
reaches it, and nobody else's results are on it."""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
from decimal import Decimal

import pytest
import textstat
from django.utils import timezone
from pypdf import PdfReader

from speciosa.clinic import services
from speciosa.clinic.models import AuditEntry
from speciosa.education import results
from speciosa.education.models import Decision, EducationAssignment
from speciosa.knowledge import evidence

pytestmark = pytest.mark.django_db

DIAGNOSTIC = ("prolactinoma", "MRI", "hyperprolactin", "macroprolactin", "referral")


def _lab(clinic, patient, who, **data):
    return services.record_lab(who, patient, {
        "collected_at": timezone.now() - dt.timedelta(days=2), **data})


def _text(page: str) -> str:
    words = " ".join(re.sub(r"<[^>]+>", " ", html.unescape(page)).split())
    return re.sub(r" ([.,])", r"\1", words)


def test_a_prolactin_above_the_laboratorys_range_in_plain_words(clinic, login):
    maya = clinic.patient_a
    _lab(clinic, maya, clinic.clinician_a, lab="prolactin", value=Decimal("38"), unit="ng/mL",
         reference_low=Decimal("4.8"), reference_high=Decimal("23.3"))
    _lab(clinic, clinic.patient_b, clinic.clinician_b, lab="alt", value=Decimal("777"),
         unit="U/L")  # another patient's: never on Maya's page
    page = _text(login(maya.user).get("/me/record/").content.decode())
    assert "38 ng/mL" in page
    assert "Range: 4.8 to 23.3 ng/mL (the laboratory's range). Your result is above the range." in page
    assert "Prolactin is a hormone." in page  # the education page's cited statement
    assert "Evidence:" in page
    assert results.TALK in page
    assert "777" not in page and "Alanine" not in page
    for word in DIAGNOSTIC:
        assert word.lower() not in page.lower(), word
    assert "not a medical device" in page


def test_a_prolactin_in_miu_against_the_catalogue_range_says_whose_range(clinic, login):
    maya = clinic.patient_a
    _lab(clinic, maya, clinic.clinician_a, lab="prolactin", value=Decimal("212"), unit="mIU/L")
    page = _text(login(maya.user).get("/me/record/").content.decode())
    assert "212 mIU/L" in page
    # the catalogue's female range, shown in the unit of the value (21.2 mIU/L per ng/mL)
    assert re.search(r"Range: [\d.]+ to [\d.]+ mIU/L \(a usual adult range, as a guide: your "
                     r"laboratory's may differ\)\. Your result is within the range\.", page), page


def test_a_prolactin_taken_in_pregnancy_is_not_read_against_the_range(clinic, login):
    maya = clinic.patient_a
    maya.pregnant, maya.pregnant_since = True, timezone.localdate() - dt.timedelta(days=60)
    maya.save()
    _lab(clinic, maya, clinic.clinician_a, lab="prolactin", value=Decimal("300"), unit="ng/mL")
    page = _text(login(maya.user).get("/me/record/").content.decode())
    assert "300 ng/mL" in page
    assert "This test was taken while you were pregnant." in page
    assert "above the range" not in page and "Range:" not in page


def test_decisions_and_reading_are_listed(clinic, login):
    maya = clinic.patient_a
    Decision.objects.create(patient=maya, choice="buprenorphine", reason="fewer cravings",
                            clinician=clinic.clinician_a, patient_agreed_name="Maya Quinn",
                            decided_at=timezone.now())
    EducationAssignment.objects.create(patient=maya, page_id="prolactin",
                                       assigned_by=clinic.clinician_a)
    page = _text(login(maya.user).get("/me/record/").content.decode())
    assert "Why: fewer cravings" in page and "confirmed by you as Maya Quinn" in page
    assert "Prolactin: what it is and why we test it not read yet" in page


def test_the_pdf_download_is_the_patients_own_and_audited(clinic, login):
    maya = clinic.patient_a
    response = login(maya.user).get("/me/record.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith('attachment; filename="my-record-')
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    assert "Quinn" in text and "Reyes" not in text
    entry = AuditEntry.objects.get(action=AuditEntry.Action.EXPORT, model="visit-report")
    assert (entry.user, entry.patient) == (maya.user, maya)
    assert "right of access" in entry.reason


def test_the_fhir_download_is_r4_holds_only_the_patients_resources_and_is_audited(clinic, login):
    from tests.interop.r4 import parse_r4

    maya = clinic.patient_a
    _lab(clinic, maya, clinic.clinician_a, lab="prolactin", value=Decimal("38"), unit="ng/mL")
    services.record_note(clinic.clinician_a, maya, "care team's note")
    _lab(clinic, clinic.patient_b, clinic.clinician_b, lab="alt", value=Decimal("40"), unit="U/L")
    response = login(maya.user).get("/me/record.fhir.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    bundle = json.loads(response.content)
    parse_r4(bundle)
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "Patient" in types and "Observation" in types and "DocumentReference" not in types
    patients = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert [p["id"] for p in patients] == [str(maya.pk)]
    refs = {e["resource"]["subject"]["reference"] for e in bundle["entry"]
            if "subject" in e["resource"]}
    assert refs == {f"Patient/{maya.pk}"}
    entry = AuditEntry.objects.get(action=AuditEntry.Action.EXPORT, model="fhir-record")
    assert entry.patient == maya and entry.after["resources"] == len(bundle["entry"])


@pytest.mark.parametrize("url", ["/me/record/", "/me/record.pdf", "/me/record.fhir.json"])
def test_only_the_patients_own_login_reaches_the_record(clinic, login, client, url):
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/login/" in anonymous.url
    for user in (clinic.clinician_a, clinic.researcher, clinic.admin):
        response = login(user).get(url)
        assert response.status_code in (403, 404), (user, response.status_code)
    assert not AuditEntry.objects.filter(action=AuditEntry.Action.EXPORT).exists()


def test_the_patient_sentences_are_cited_and_read_at_grade_8_or_easier():
    for st in results._STATE.values():
        assert st.cite and evidence.missing_references(st.cite) == [], st.text
        assert textstat.flesch_kincaid_grade(st.text) <= 8, st.text
    assert textstat.flesch_kincaid_grade(results.TALK) <= 8
