"""Issue #11, item 12: the low findings.

- JSON nested 3,000 levels deep gave a 500 on every API endpoint, the token endpoint
  included; now a 400 that says what is wrong (and the FHIR import reports the line);
- the diary form ignored its limit of 12 doses (160 stored from one post;
  ``TOTAL_FORMS=100000`` cost 3 s of CPU): now a clear error and nothing stored;
- pages, API and FHIR answers with patient data had no ``Cache-Control: no-store``;
- the visit report's title and file name carried the patient's name and MRN;
- the demo (``SPECIOSA_DEBUG=1``) answered a 404 with Django's page listing every URL pattern.
"""

from __future__ import annotations

import io
import json

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from speciosa.clinic.models import DiaryDay, Dose, Note

from ..conftest import issue_token, verified_login

pytestmark = pytest.mark.django_db


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def _deep_object(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


# --------------------------------------------------------------------------- deep JSON


def test_deep_json_is_a_400_that_says_why_on_every_api_endpoint(clinic):
    base = f"/api/v1/patients/{clinic.patient_a.pk}"
    clinician = Client(
        HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {issue_token(clinic.clinician_a)}"
    )
    patient = Client(
        HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {issue_token(clinic.patient_a.user)}"
    )
    anonymous = Client(HTTP_HOST="localhost")
    calls = [
        (anonymous, "/api/v1/auth/token/"),
        (clinician, f"{base}/notes/"),
        (clinician, f"{base}/labs/"),
        (clinician, f"{base}/assessments/"),
        (patient, "/api/v1/me/diary/"),
    ]
    for client, url in calls:
        for body in (_deep(3000), _deep_object(3000), _deep(65)):
            response = client.post(
                url,
                body,
                content_type="application/json",
                headers={"Idempotency-Key": f"k{len(body)}{url}"},
            )
            assert response.status_code == 400, (url, response.status_code)
            assert "nested too deeply: at most 64 levels" in json.dumps(response.json()), url
    assert not Note.objects.exists() and not DiaryDay.objects.exists()


def test_json_within_the_cap_is_judged_on_its_content(clinic):
    client = Client(
        HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {issue_token(clinic.clinician_a)}"
    )
    response = client.post(
        f"/api/v1/patients/{clinic.patient_a.pk}/notes/",
        {"text": [[["x"]]]},
        content_type="application/json",
        headers={"Idempotency-Key": "k"},
    )
    assert response.status_code == 400 and "nested too deeply" not in response.content.decode()


def test_the_fhir_import_reports_a_deep_document_instead_of_crashing(tmp_path):
    from speciosa.interop import importer

    bundle = tmp_path / "deep.json"
    bundle.write_text(_deep_object(5000))
    ndjson = tmp_path / "deep.ndjson"
    ndjson.write_text('{"resourceType": "Patient"}\n' + _deep_object(5000) + "\n")
    for path, line in ((bundle, 1), (ndjson, 2)):
        rows = {line: res for line, res, _url in importer._read_file(path)}
        assert "nested too deeply" in str(rows[line]), path


def test_fhir_views_parse_bodies_with_the_same_cap():
    from speciosa.api.parsers import FHIRJSONParser, SafeJSONParser
    from speciosa.interop.views import FHIRView

    assert FHIRView.parser_classes == [FHIRJSONParser, SafeJSONParser]
    with pytest.raises(Exception, match="nested too deeply"):
        FHIRJSONParser().parse(io.BytesIO(_deep(3000).encode()), "application/fhir+json", {})


# --------------------------------------------------------------------------- diary form


def _diary_post(**over):
    from tests.web.conftest import diary_post

    return diary_post(**over)


def _doses(n: int) -> dict[str, str]:
    data = {"doses-TOTAL_FORMS": str(n)}
    for i in range(n):
        data |= {f"doses-{i}-time": f"00:{i:02d}", f"doses-{i}-amount": "1", f"doses-{i}-unit": "g"}
    return data


def test_thirteen_doses_in_one_diary_post_are_refused_with_a_message_and_nothing_saved(clinic):
    client = verified_login(Client(), clinic.patient_a.user)
    response = client.post(reverse("diary_today"), _diary_post(**_doses(13)))
    assert response.status_code == 200
    assert "One diary day takes at most 12 doses; nothing was saved" in response.content.decode()
    assert not Dose.objects.exists() and not DiaryDay.objects.exists()
    ok = client.post(reverse("diary_today"), _diary_post(token="t-twelve", **_doses(12)))
    assert ok.status_code == 302 and Dose.objects.count() == 12


def test_a_huge_total_forms_builds_no_forms_and_saves_nothing(clinic):
    client = verified_login(Client(), clinic.patient_a.user)
    response = client.post(reverse("diary_today"), _diary_post(**{"doses-TOTAL_FORMS": "100000"}))
    assert response.status_code == 200
    assert "at most 12 doses" in response.content.decode()
    assert response.content.decode().count('name="doses-') < 12 * 8  # not 100,000 rows back
    assert not Dose.objects.exists() and not DiaryDay.objects.exists()


# --------------------------------------------------------------------------- caching


def test_answers_with_patient_data_are_not_stored_by_any_cache(clinic):
    p = clinic.patient_a
    clinician = verified_login(Client(HTTP_HOST="localhost"), clinic.clinician_a)
    token = Client(
        HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {issue_token(clinic.clinician_a)}"
    )
    patient = verified_login(Client(HTTP_HOST="localhost"), p.user)
    for client, url in (
        (clinician, f"/patients/{p.pk}/"),
        (clinician, "/patients/"),
        (clinician, "/worklist/"),
        (patient, "/me/"),
        (patient, "/api/v1/me/"),
        (token, f"/api/v1/patients/{p.pk}/"),
        (token, f"/fhir/Patient/{p.pk}"),
        (token, f"/fhir/Patient/{p.pk}/$everything"),
        (token, "/fhir/Observation"),
        (clinician, f"/api/v1/patients/{p.pk}/timeline/"),
        (Client(HTTP_HOST="localhost"), f"/fhir/Patient/{p.pk}"),
    ):
        response = client.get(url)
        assert response.status_code in (200, 401), (url, response.status_code)
        assert "no-store" in response.get("Cache-Control", ""), url
        assert "private" in response["Cache-Control"], url


# --------------------------------------------------------------------------- PDF


def test_the_visit_report_title_and_file_name_carry_the_record_id_not_name_or_mrn(clinic):
    from pypdf import PdfReader

    p = clinic.patient_a
    Dose.objects.create(
        patient=p, entered_by=p.user, source="patient", amount=2, unit="g", taken_at=timezone.now()
    )
    client = verified_login(Client(), clinic.clinician_a)
    response = client.get(f"/patients/{p.pk}/report.pdf?days=all&purpose=treatment")
    assert response.status_code == 200
    disposition = response["Content-Disposition"]
    assert f'filename="visit-report-{p.pk}-' in disposition
    title = PdfReader(io.BytesIO(response.content)).metadata.title
    assert title == f"Visit report: record {p.pk}"
    for secret in (p.family_name, p.given_name, p.identifier):
        assert secret not in disposition and secret not in title
    assert "no-store" in response["Cache-Control"]


# --------------------------------------------------------------------------- debug 404


@pytest.mark.parametrize("url", ["/no/such/page/", "/patients/999999/", "/me/diary/not-a-date/"])
def test_the_demos_404_lists_no_url_patterns(clinic, settings, url):
    settings.DEBUG = True
    client = verified_login(
        Client(), clinic.clinician_a if url.startswith("/p") else clinic.patient_a.user
    )
    response = client.get(url)
    body = response.content.decode()
    assert response.status_code == 404
    assert "There is nothing here for you" in body
    for leak in ("URLconf", "patient_id", "api/v1/", "fhir/", "admin/"):
        assert leak not in body, leak
