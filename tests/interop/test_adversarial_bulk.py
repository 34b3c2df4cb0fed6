"""Adversarial pass on Bulk Data $export (issue 14): a requester whose access changed after
the kick-off, and kick-off parameters a client repeats."""

from __future__ import annotations

import pytest

from speciosa.clinic import models as cmodels

from . import test_bulk
from .test_bulk import clinician, download, kick_off, run_export

pytestmark = pytest.mark.django_db
chart = test_bulk.chart
bulk_dir = test_bulk.bulk_dir


def test_a_clinician_taken_off_the_care_team_cannot_download_its_export(
        chart, django_capture_on_commit_callbacks):
    """The files hold the patients the requester could see at kick-off; a clinician taken
    off the care team afterwards (moved, or left the clinic) no longer downloads them, though
    the export is theirs and not expired."""
    client = clinician(chart)
    manifest = run_export(client, django_capture_on_commit_callbacks, _type="Patient,Observation")
    assert {p["id"] for p in download(client, manifest, "Patient")} == {
        str(chart.patient_a.pk), str(chart.decoy.pk)}
    downloads = cmodels.AuditEntry.objects.filter(model="fhir:$export-file").count()
    chart.team_a.members.remove(chart.clinician_a)
    for entry in manifest["output"]:
        resp = client.get(entry["url"])
        assert resp.status_code in (403, 404), entry["type"]
        assert resp.json()["resourceType"] == "OperationOutcome"
    assert cmodels.AuditEntry.objects.filter(model="fhir:$export-file").count() == downloads


def test_a_repeated_type_exports_every_type_named(chart, django_capture_on_commit_callbacks):
    """``_type=Patient&_type=Observation`` (as some clients send a list): both types, never
    only the last one without a word."""
    client = clinician(chart)
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.get("/fhir/$export?_type=Patient&_type=Observation&_purpose=TREAT",
                          **test_bulk.ASYNC)
    assert resp.status_code == 202, resp.content
    manifest = client.get(resp["Content-Location"]).json()
    assert [o["type"] for o in manifest["output"]] == ["Patient", "Observation"]


@pytest.mark.parametrize("query", ["_since=2026-01-01T00:00:00Z&_since=2020-01-01T00:00:00Z",
                                   "_outputFormat=ndjson&_outputFormat=text/csv",
                                   "_purpose=TREAT&_purpose=HMARKT"])
def test_another_repeated_kick_off_parameter_is_400_naming_it(chart, query):
    purpose = "" if query.startswith("_purpose") else "&_purpose=TREAT"
    resp = clinician(chart).get(f"/fhir/$export?{query}{purpose}", **test_bulk.ASYNC)
    assert resp.status_code == 400, resp.content
    issue = resp.json()["issue"][0]
    assert issue["expression"] == [query.split("=")[0]]


def test_a_since_in_the_future_is_400(chart):
    """A _since after now can match nothing: a client's clock or time zone is wrong, and an
    empty export would say 'nothing changed'."""
    resp = kick_off(clinician(chart), _since="2099-01-01T00:00:00Z")
    assert resp.status_code == 400, resp.content
    assert resp.json()["issue"][0]["expression"] == ["_since"]


def test_a_cross_site_delete_with_the_session_cookie_is_refused(
        chart, django_capture_on_commit_callbacks):
    """DELETE of an export's status URL with only the web session (another site's page
    making the browser send it) needs the CSRF token; without it the export stays."""
    from django.test import Client

    from ..conftest import verified_login

    client = clinician(chart)
    resp = kick_off(client, capture=django_capture_on_commit_callbacks, _type="Patient")
    status = resp["Content-Location"]
    forged = verified_login(Client(enforce_csrf_checks=True), chart.clinician_a)
    answer = forged.delete(status)
    assert answer.status_code == 403
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert client.get(status).status_code == 200
