"""Versions and discovery: meta.versionId/lastUpdated, ETag and Last-Modified, _history and
vread for corrected records, 410 for a withdrawn one; the CapabilityStatement readable
without login, R4 (4.0.1), with rest.security; a real FHIR client against the live server."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from django.utils.http import parse_http_date

from speciosa.clinic import models as cm
from speciosa.clinic import services
from speciosa.interop import codes as c
from speciosa.interop import search
from speciosa.interop.export import validate

from .r4 import parse_r4

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC)


def _get(client, url, **kw):
    return client.get(url, HTTP_ACCEPT="application/fhir+json", **kw)


@pytest.fixture
def corrected(clinic):
    """A prolactin of patient_a entered as 31.5 and corrected to 30.5; one of patient_b."""
    lab = services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": "prolactin", "collected_at": AT, "value": "31.5", "unit": "ng/mL"})
    new = services.correct_record(clinic.clinician_a, lab, {"value": "30.5"}, "transcription error")
    other = services.record_lab(clinic.clinician_b, clinic.patient_b, {
        "lab": "prolactin", "collected_at": AT, "value": "12", "unit": "ng/mL"})
    clinic.first, clinic.second, clinic.other = lab, new, other
    return clinic


def test_a_read_carries_meta_etag_and_last_modified(corrected, login):
    client = login(corrected.clinician_a)
    resp = _get(client, f"/fhir/Observation/lab{corrected.other.pk}")
    assert resp.status_code == 404  # another team's record
    resp = _get(client, f"/fhir/Patient/{corrected.patient_a.pk}")
    body = resp.json()
    assert resp["ETag"] == f'W/"{body["meta"]["versionId"]}"'
    assert len(body["meta"]["versionId"]) == 16
    created = corrected.patient_a.created_at
    assert body["meta"]["lastUpdated"] == created.isoformat()
    assert parse_http_date(resp["Last-Modified"]) == int(created.timestamp())
    again = _get(client, f"/fhir/Patient/{corrected.patient_a.pk}",
                 HTTP_IF_NONE_MATCH=resp["ETag"])
    assert again.status_code == 304 and again.content == b""
    # a change to the patient changes its version (the old ETag no longer matches)
    corrected.patient_a.pregnant = True
    corrected.patient_a.save(update_fields=["pregnant"])
    changed = _get(client, f"/fhir/Patient/{corrected.patient_a.pk}",
                   HTTP_IF_NONE_MATCH=resp["ETag"])
    assert changed.status_code == 200 and changed["ETag"] != resp["ETag"]


def test_a_corrected_record_keeps_its_id_and_its_versions(corrected, login):
    client = login(corrected.clinician_a)
    rid = f"lab{corrected.first.pk}"
    resp = _get(client, f"/fhir/Observation/{rid}")
    assert resp.status_code == 200
    body = resp.json()
    assert body["id"] == rid and body["valueQuantity"]["value"] == 30.5
    assert body["status"] == "amended"
    assert body["meta"]["versionId"] == "2" and resp["ETag"] == 'W/"2"'
    assert body["meta"]["lastUpdated"] == corrected.second.entered_at.isoformat()
    # the second row is a version, not a resource of its own
    assert _get(client, f"/fhir/Observation/lab{corrected.second.pk}").status_code == 404

    history = _get(client, f"/fhir/Observation/{rid}/_history").json()
    validate(history)
    parse_r4(history)
    assert history["type"] == "history" and history["total"] == 2
    versions = [(e["resource"]["meta"]["versionId"], e["resource"]["valueQuantity"]["value"],
                 e["resource"]["status"]) for e in history["entry"]]
    assert versions == [("2", 30.5, "amended"), ("1", 31.5, "final")]
    assert [e["request"]["method"] for e in history["entry"]] == ["PUT", "POST"]

    v1 = _get(client, f"/fhir/Observation/{rid}/_history/1")
    assert v1.status_code == 200 and v1["ETag"] == 'W/"1"'
    assert v1.json()["valueQuantity"]["value"] == 31.5 and v1.json()["id"] == rid
    assert _get(client, f"/fhir/Observation/{rid}/_history/3").status_code == 404
    # the Provenance of the correction names the version it replaces
    prov = _get(client, f"/fhir/Provenance/{rid}").json()
    assert prov["target"] == [{"reference": f"Observation/{rid}/_history/2"}]
    assert prov["entity"][0] == {"role": "revision",
                                 "what": {"reference": f"Observation/{rid}/_history/1"}}
    assert cm.AuditEntry.objects.filter(patient=corrected.patient_a,
                                        model="fhir:history:Observation").exists()


def test_another_teams_history_and_versions_are_404(corrected, login):
    client = login(corrected.clinician_b)
    rid = f"lab{corrected.first.pk}"
    for url in (f"/fhir/Observation/{rid}/_history", f"/fhir/Observation/{rid}/_history/1",
                f"/fhir/Observation/{rid}"):
        resp = _get(client, url)
        assert resp.status_code == 404 and resp.json()["resourceType"] == "OperationOutcome"


def test_a_withdrawn_record_is_410_and_its_history_ends_in_a_deletion(corrected, login):
    services.retract_record(corrected.clinician_a, corrected.second, "wrong patient")
    client = login(corrected.clinician_a)
    rid = f"lab{corrected.first.pk}"
    resp = _get(client, f"/fhir/Observation/{rid}")
    assert resp.status_code == 410
    assert resp.json()["issue"][0]["code"] == "deleted"
    history = _get(client, f"/fhir/Observation/{rid}/_history").json()
    assert history["entry"][0]["request"]["method"] == "DELETE"
    assert "resource" not in history["entry"][0]
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"][1:]] == ["2", "1"]
    assert _get(client, f"/fhir/Observation/{rid}/_history/3").status_code == 410
    assert _get(client, f"/fhir/Observation/{rid}/_history/2").status_code == 200
    # and it is not found by a search
    found = _get(client, f"/fhir/Observation?patient={corrected.patient_a.pk}").json()
    assert [e["resource"]["id"] for e in found.get("entry", ())] == []


def test_last_updated_search(corrected, login):
    client = login(corrected.clinician_a)
    pid = corrected.patient_a.pk
    today = timezone.now().date().isoformat()
    assert len(_get(client, f"/fhir/Observation?patient={pid}&_lastUpdated={today}")
               .json()["entry"]) == 1
    assert "entry" not in _get(client, f"/fhir/Observation?patient={pid}&_lastUpdated=lt2026"
                                       "&_summary=count").json()


def test_metadata_is_public_r4_and_describes_security(corrected, client):
    resp = client.get("/fhir/metadata", HTTP_AUTHORIZATION="Token not-a-real-token")
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("application/fhir+json")
    body = resp.json()
    validate(body)
    parse_r4(body)
    assert body["fhirVersion"] == "4.0.1"
    rest = body["rest"][0]
    assert "Authorization: Token" in rest["security"]["description"]
    by_type = {r["type"]: r for r in rest["resource"]}
    assert by_type["Observation"]["readHistory"] is True
    assert by_type["Patient"]["readHistory"] is False
    assert {i["code"] for i in by_type["Observation"]["interaction"]} == {
        "read", "vread", "history-instance", "search-type"}
    assert {p["name"] for p in by_type["Patient"]["searchParam"]} == set(search.PARAMS["Patient"])
    # nothing else is public
    assert client.get(f"/fhir/Patient/{corrected.patient_a.pk}").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_fhirclient_searches_and_reads_against_the_live_server(live_server):
    from fhirclient import client as fc
    from fhirclient.models.observation import Observation
    from fhirclient.models.patient import Patient

    from ..conftest import make_patient, make_user

    site = cm.Site.objects.create(name="Live Site")
    team = cm.CareTeam.objects.create(site=site, name="Live Team")
    clin = make_user("live_clin", "clinician", "pw-live-123456")
    team.members.add(clin)
    decoy = make_patient(site, team, None, "x", identifier="L-1")
    target = make_patient(site, team, None, "x", identifier="L-2")
    services.record_lab(clin, target, {"lab": "prolactin", "collected_at": AT, "value": "14",
                                       "unit": "ng/mL"})
    services.record_lab(clin, decoy, {"lab": "prolactin", "collected_at": AT, "value": "99",
                                      "unit": "ng/mL"})
    from speciosa.api import tokens

    key = tokens.issue(clin)[1]

    smart = fc.FHIRClient(settings={"app_id": "speciosa-test",
                                    "api_base": f"{live_server.url}/fhir/"})
    smart.server.session.headers["Authorization"] = f"Token {key}"
    capability = smart.server.capabilityStatement
    assert capability.fhirVersion == "4.0.1"
    mrn = f"{c.mrn_system('Live Site')}|L-2"
    found = list(Patient.where({"identifier": mrn}).perform_resources_iter(smart.server))
    assert [p.id for p in found] == [str(target.pk)]
    query = Observation.where({"patient": str(target.pk), "code": f"{c.LOINC}|2842-3"})
    obs = list(query.perform_resources_iter(smart.server))
    assert [o.valueQuantity.value for o in obs] == [14]
    read = Observation.read(obs[0].id, smart.server)
    assert read.subject.reference == f"Patient/{target.pk}" and read.meta.versionId == "1"
