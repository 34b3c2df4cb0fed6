"""Bulk Data ``$export`` over HTTP, with the task queue eager (no broker): kick-off, polling,
the manifest and the NDJSON files, served only to the requester, expiring and deletable;
``_type`` and ``_since`` honoured; every export audited with its purpose. The same with a real
Celery worker is in ``test_bulk_worker.py``."""

from __future__ import annotations

import datetime as dt
import json
import secrets

import pytest
from django.test import Client
from django.utils import timezone

from speciosa.clinic import models as cmodels
from speciosa.interop import bulk
from speciosa.interop.export import validate
from speciosa.interop.models import BulkExport, SmartClient, SmartTokenContext

from ..conftest import verified_login
from . import test_search

pytestmark = pytest.mark.django_db
chart = test_search.chart  # the fixture: patient_a with labs, a decoy, patient_b
ASYNC = {"HTTP_PREFER": "respond-async"}


@pytest.fixture(autouse=True)
def bulk_dir(settings, tmp_path):
    settings.BULK_EXPORT_DIR = tmp_path / "bulk"
    return settings.BULK_EXPORT_DIR


def clinician(chart):
    return verified_login(Client(), chart.clinician_a)


def kick_off(client, url="/fhir/$export", capture=None, **params):
    params.setdefault("_purpose", "TREAT")
    if capture is None:
        return client.get(url, params, **ASYNC)
    with capture(execute=True):
        return client.get(url, params, **ASYNC)


def run_export(client, capture, url="/fhir/$export", **params) -> dict:
    """Kick off (the eager task runs at commit), poll, and return the manifest."""
    resp = kick_off(client, url, capture, **params)
    assert resp.status_code == 202, resp.content
    status = resp["Content-Location"]
    assert status.startswith("http://testserver/fhir/$export-status/")
    done = client.get(status)
    assert done.status_code == 200, done.content
    return done.json()


def download(client, manifest, rtype) -> list[dict]:
    entry = next(o for o in manifest["output"] if o["type"] == rtype)
    resp = client.get(entry["url"])
    assert resp.status_code == 200
    assert resp["Content-Type"] == "application/fhir+ndjson"
    lines = b"".join(resp.streaming_content).decode().splitlines()
    assert len(lines) == entry["count"]
    return [json.loads(line) for line in lines]


def subjects(resources) -> set[str]:
    return {r["subject"]["reference"] for r in resources}


def bearer_token(user, application, scope, patient=None) -> Client:
    """A bearer token stored as the token endpoint would (the flows are in test_smart*.py)."""
    from oauth2_provider.models import AccessToken

    key = secrets.token_urlsafe(30)
    token = AccessToken.objects.create(user=user, application=application, token=key,
                                       scope=scope,
                                       expires=timezone.now() + dt.timedelta(hours=1))
    if patient is not None:
        SmartTokenContext.objects.create(access_token=token, patient=patient)
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


def smart_app(kind="app", site=None, purpose=""):
    from oauth2_provider.models import Application

    app = Application.objects.create(name=f"{kind} client", client_type="public",
                                     authorization_grant_type="authorization-code",
                                     redirect_uris="https://app.example/cb")
    SmartClient.objects.create(application=app, kind=kind, site=site, purpose=purpose)
    return app


# --------------------------------------------------------------------------- kick-off

def test_a_system_export_kick_off_poll_manifest_and_files(chart,
                                                          django_capture_on_commit_callbacks):
    client = clinician(chart)
    manifest = run_export(client, django_capture_on_commit_callbacks,
                          _type="Patient,Observation", _purpose="transfer of care")
    assert manifest["requiresAccessToken"] is True
    assert manifest["error"] == []
    assert manifest["request"].startswith("http://testserver/fhir/$export?")
    dt.datetime.fromisoformat(manifest["transactionTime"])
    assert [o["type"] for o in manifest["output"]] == ["Patient", "Observation"]
    patients = download(client, manifest, "Patient")
    # clinician_a's care team: patient_a and the decoy; patient_b is another team's
    assert {p["id"] for p in patients} == {str(chart.patient_a.pk), str(chart.decoy.pk)}
    observations = download(client, manifest, "Observation")
    assert subjects(observations) == {f"Patient/{chart.patient_a.pk}",
                                      f"Patient/{chart.decoy.pk}"}
    assert len(observations) == 5  # patient_a: three labs and the COWS total; decoy: one lab
    for res in patients + observations:
        validate(res)
    entry = cmodels.AuditEntry.objects.get(model="fhir:$export")
    assert entry.user == chart.clinician_a and entry.action == "export"
    assert entry.reason == "purpose of use: transfer of care"
    assert entry.after["patients"] == sorted([chart.patient_a.pk, chart.decoy.pk])
    assert entry.after["types"] == ["Patient", "Observation"]
    assert cmodels.AuditEntry.objects.filter(model="fhir:$export-file").count() == 2


def test_kick_off_needs_prefer_respond_async(chart):
    resp = clinician(chart).get("/fhir/$export", {"_purpose": "TREAT"})
    assert resp.status_code == 400
    body = resp.json()
    validate(body)
    assert "respond-async" in body["issue"][0]["diagnostics"]
    assert not BulkExport.objects.exists()


@pytest.mark.parametrize("params, named", [
    ({"_outputFormat": "text/csv"}, "_outputFormat"),
    ({"_type": "Observation,Encounter"}, "_type"),
    ({"_since": "2026-01-01"}, "_since"),
    ({"_since": "yesterday"}, "_since"),
    ({"_typeFilter": "Observation?code=2842-3"}, "_typeFilter"),
    ({"patient": "Patient/1"}, "patient"),
    ({"_purpose": ""}, "_purpose"),
])
def test_a_kick_off_speciosa_cannot_take_is_400_naming_the_parameter(chart, params, named):
    resp = kick_off(clinician(chart), **params)
    assert resp.status_code == 400, resp.content
    issue = resp.json()["issue"][0]
    assert issue["expression"] == [named]
    assert not BulkExport.objects.exists()
    assert not cmodels.AuditEntry.objects.filter(model="fhir:$export").exists()


@pytest.mark.parametrize("fmt", ["application/fhir+ndjson", "application/ndjson", "ndjson"])
def test_the_ndjson_output_formats_are_accepted(chart, fmt, django_capture_on_commit_callbacks):
    manifest = run_export(clinician(chart), django_capture_on_commit_callbacks,
                          _outputFormat=fmt, _type="Patient")
    assert [o["type"] for o in manifest["output"]] == ["Patient"]


def test_a_patient_level_export_leaves_out_what_is_not_in_the_patient_compartment(
        chart, django_capture_on_commit_callbacks):
    client = clinician(chart)
    system = run_export(client, django_capture_on_commit_callbacks)
    patient = run_export(client, django_capture_on_commit_callbacks, "/fhir/Patient/$export")
    assert "Questionnaire" in {o["type"] for o in system["output"]}
    assert "Questionnaire" not in {o["type"] for o in patient["output"]}
    assert {o["type"] for o in patient["output"]} >= {"Patient", "Observation"}


def test_a_group_is_a_care_team_within_reach(chart, django_capture_on_commit_callbacks):
    client = clinician(chart)
    manifest = run_export(client, django_capture_on_commit_callbacks,
                          f"/fhir/Group/{chart.team_a.pk}/$export", _type="Patient")
    assert {p["id"] for p in download(client, manifest, "Patient")} == {
        str(chart.patient_a.pk), str(chart.decoy.pk)}
    for gid in (chart.team_b.pk, 999999, "abc"):  # another team's, none, junk
        resp = kick_off(client, f"/fhir/Group/{gid}/$export")
        assert resp.status_code == 404, gid
        assert resp.json()["resourceType"] == "OperationOutcome"


def test_since_keeps_what_changed_and_says_which_types_have_no_change_time(
        chart, django_capture_on_commit_callbacks):
    client = clinician(chart)
    future = (timezone.now() + dt.timedelta(minutes=5)).isoformat()
    manifest = run_export(client, django_capture_on_commit_callbacks,
                          _type="Observation,CareTeam", _since=future)
    assert [o["type"] for o in manifest["output"]] == ["CareTeam"]  # no Observation changed
    assert manifest["extension"] == {bulk.SINCE_UNKNOWN: ["CareTeam"]}
    past = run_export(client, django_capture_on_commit_callbacks, _type="Observation",
                      _since="2000-01-01T00:00:00Z")
    assert past["output"][0]["count"] == 5
    # one lab entered after the cut: only it
    from speciosa.clinic import services

    cut = timezone.now()
    services.record_lab(chart.clinician_a, chart.patient_a, {
        "lab": "alt", "collected_at": dt.datetime(2026, 1, 25, 8, tzinfo=dt.UTC), "value": "41",
        "unit": "U/L"})
    newer = run_export(client, django_capture_on_commit_callbacks, _type="Observation",
                       _since=cut.isoformat())
    got = download(client, newer, "Observation")
    assert [o["valueQuantity"]["value"] for o in got] == [41]


# --------------------------------------------------------------------------- requester only

def test_status_and_files_are_the_requesters_only(chart, django_capture_on_commit_callbacks):
    client = clinician(chart)
    resp = kick_off(client, capture=django_capture_on_commit_callbacks, _type="Patient")
    status = resp["Content-Location"]
    manifest = client.get(status).json()
    file_url = manifest["output"][0]["url"]
    other = verified_login(Client(), chart.clinician_b)
    patient = verified_login(Client(), chart.patient_a.user)
    # the same clinician through an OAuth client is another requester too
    app_client = bearer_token(chart.clinician_a, smart_app(), "user/*.read")
    for stranger in (other, patient, app_client, Client()):
        for url in (status, file_url):
            assert stranger.get(url).status_code in (401, 404), url
        assert stranger.delete(status).status_code in (401, 404)
    assert client.get(file_url).status_code == 200  # still there for its requester
    assert client.get(file_url.replace("Patient.ndjson", "Observation.ndjson")).status_code == 404
    assert client.get(file_url.replace("Patient.ndjson", "../Patient.ndjson")).status_code == 404


def test_delete_cancels_and_deletes_the_files(chart, bulk_dir, django_capture_on_commit_callbacks):
    client = clinician(chart)
    resp = kick_off(client, capture=django_capture_on_commit_callbacks, _type="Patient")
    status = resp["Content-Location"]
    file_url = client.get(status).json()["output"][0]["url"]
    assert any(bulk_dir.iterdir())
    assert client.delete(status).status_code == 202
    assert client.get(status).status_code == 404
    assert client.get(file_url).status_code == 404
    assert not any(bulk_dir.iterdir())


def test_a_cancelled_export_is_not_written(chart, bulk_dir):
    client = clinician(chart)
    status = kick_off(client, _type="Patient")["Content-Location"]  # queued, not run
    progress = client.get(status)
    assert progress.status_code == 202 and progress["X-Progress"] == "queued"
    export = BulkExport.objects.get()
    assert client.delete(status).status_code == 202
    assert bulk.run(str(export.pk)) == {}
    assert not bulk_dir.exists() or not any(bulk_dir.iterdir())


def test_an_expired_export_is_deleted_on_access_and_by_the_periodic_task(
        chart, bulk_dir, django_capture_on_commit_callbacks):
    from speciosa import tasks

    client = clinician(chart)
    first = kick_off(client, capture=django_capture_on_commit_callbacks, _type="Patient")
    second = kick_off(client, capture=django_capture_on_commit_callbacks, _type="Patient")
    file_url = client.get(first["Content-Location"]).json()["output"][0]["url"]
    assert client.get(second["Content-Location"]).status_code == 200
    assert "Expires" in client.get(second["Content-Location"])
    BulkExport.objects.update(expires=timezone.now() - dt.timedelta(seconds=1))
    assert client.get(file_url).status_code == 404  # on access
    assert BulkExport.objects.count() == 1
    assert tasks.purge_bulk_exports.apply().get() == 1  # the other by the periodic task
    assert not BulkExport.objects.exists() and not any(bulk_dir.iterdir())
    assert client.get(second["Content-Location"]).status_code == 404


# --------------------------------------------------------------------------- tokens

def test_a_patient_scoped_token_exports_only_its_patient_and_its_types(
        chart, django_capture_on_commit_callbacks):
    fhir = bearer_token(chart.clinician_a, smart_app(), "launch/patient patient/Observation.rs",
                        patient=chart.patient_a)
    assert kick_off(fhir, _type="Patient,Observation").status_code == 403
    manifest = run_export(fhir, django_capture_on_commit_callbacks)
    assert [o["type"] for o in manifest["output"]] == ["Observation"]
    assert subjects(download(fhir, manifest, "Observation")) == {f"Patient/{chart.patient_a.pk}"}


def test_a_backend_clients_export_stays_within_its_site_with_its_registered_purpose(
        chart, django_capture_on_commit_callbacks):
    from django.contrib.auth import get_user_model

    app = smart_app("backend", chart.site_b, purpose="quality reporting")
    service = get_user_model().objects.create_user("oauth-svc")
    app.user = service
    app.save()
    from oauth2_provider.models import AccessToken

    key = secrets.token_urlsafe(30)
    AccessToken.objects.create(user=None, application=app, token=key, scope="system/*.read",
                               expires=timezone.now() + dt.timedelta(hours=1))
    fhir = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    # a backend client is another party: nothing without a Part 2 consent naming it
    refused = fhir.get("/fhir/$export", {"_type": "Patient"}, **ASYNC)
    assert refused.status_code == 403
    assert "no 42 CFR Part 2 consent in force for the recipient 'backend client'" in \
        refused.json()["issue"][0]["diagnostics"]
    assert not BulkExport.objects.exists()
    from speciosa.clinic import consents, integrity

    b, today = chart.patient_b, integrity.site_today(chart.patient_b.site)
    consents.sign(b.user, b, consents.latest_document(b.site, "part2"), {
        "typed_name": b.name, "signed_on": today, "recipient": "Backend Client",
        "purpose": "quality reporting", "expires_on": today + dt.timedelta(days=10)})
    with django_capture_on_commit_callbacks(execute=True):
        resp = fhir.get("/fhir/$export", {"_type": "Patient"}, **ASYNC)
    assert resp.status_code == 202, resp.content
    manifest = fhir.get(resp["Content-Location"]).json()
    assert {p["id"] for p in download(fhir, manifest, "Patient")} == {str(chart.patient_b.pk)}
    entry = cmodels.AuditEntry.objects.get(model="fhir:$export", action="export")
    assert entry.reason == "purpose of use: quality reporting; disclosed to backend client"
    assert entry.user == service and entry.after["client"] == app.client_id
    assert entry.after["recipient"] == "backend client" and entry.after["withheld"] == 0


def test_the_capability_statement_declares_the_export_operations(client):
    meta = client.get("/fhir/metadata").json()
    validate(meta)
    assert "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data" in meta["instantiates"]
    ops = {o["name"]: o["definition"] for o in meta["rest"][0]["operation"]}
    base = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"
    assert {k: v for k, v in ops.items() if k.endswith("export")} == {
        "export": f"{base}export", "patient-export": f"{base}patient-export",
        "group-export": f"{base}group-export"}
