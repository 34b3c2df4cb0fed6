"""Adversarial pass on the FHIR REST API (issue 14): hostile ids, odd values and the
answers a standard client gets for them (every error an OperationOutcome)."""

from __future__ import annotations

import pytest

from . import test_search

pytestmark = pytest.mark.django_db
chart = test_search.chart

HOSTILE_IDS = ["99999999999999999999", "-1", "1%00", "%00", "lab-99999999999999999999",
               "lab-%00", "1.5", "%E2%80%8F1", "0x1", "1e3", " 1", "Patient", "..%2F..%2Fetc"]


@pytest.mark.parametrize("rid", HOSTILE_IDS)
@pytest.mark.parametrize("rtype", ["Patient", "Observation", "MedicationStatement",
                                   "QuestionnaireResponse", "Provenance", "DocumentReference",
                                   "Practitioner", "CareTeam", "Questionnaire", "Flag"])
def test_a_hostile_id_is_a_404_operation_outcome(chart, login, rtype, rid):
    client = login(chart.clinician_a)
    for url in (f"/fhir/{rtype}/{rid}", f"/fhir/{rtype}/{rid}/_history",
                f"/fhir/{rtype}/{rid}/_history/1"):
        resp = client.get(url)
        assert resp.status_code == 404, (url, resp.status_code, resp.content[:300])
        assert resp["Content-Type"].startswith("application/fhir+json")
        assert resp.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("query", [
    "patient=99999999999999999999", "patient=%00", "subject=Patient/99999999999999999999",
    "_id=99999999999999999999", "_id=%00", "identifier=%00", "name=%00", "date=ge2026%00",
    "code=%00|%00", "_count=%00", "_count=1e3", "_sort=%00", "patient=-1",
])
def test_hostile_search_values_are_a_4xx_operation_outcome(chart, login, query):
    client = login(chart.clinician_a)
    for rtype in ("Patient", "Observation"):
        resp = client.get(f"/fhir/{rtype}?{query}")
        assert resp.status_code in (200, 400, 404), (rtype, query, resp.status_code)
        body = resp.json()
        if resp.status_code != 200:
            assert body["resourceType"] == "OperationOutcome"
        else:
            assert body["resourceType"] == "Bundle"
            assert all(e["resource"]["id"] in {str(chart.patient_a.pk), str(chart.decoy.pk)}
                       or e["resource"]["resourceType"] != "Patient" for e in body.get("entry", ()))


def test_a_patients_login_gets_no_trace_of_the_care_teams_notes(chart, login):
    """Notes are the care team's: a patient's own login reads neither the DocumentReference
    nor its Provenance, its history or its version, by search, read or $everything."""
    import json

    from speciosa.clinic import services

    note = services.record_note(chart.clinician_a, chart.patient_a,
                                "Discussed tapering; partner worried about relapse.")
    staff = login(chart.clinician_a)
    docs = staff.get("/fhir/DocumentReference", {"patient": chart.patient_a.pk}).json()
    assert len(docs["entry"]) == 1
    doc_id = docs["entry"][0]["resource"]["id"]
    me = login(chart.patient_a.user)
    for url in (f"/fhir/DocumentReference/{doc_id}", f"/fhir/DocumentReference/{doc_id}/_history",
                f"/fhir/DocumentReference/{doc_id}/_history/1"):
        assert me.get(url).status_code == 404, url
    for url in ("/fhir/DocumentReference", "/fhir/Provenance",
                f"/fhir/Patient/{chart.patient_a.pk}/$everything"):
        body = me.get(url).content.decode()
        assert "partner worried" not in body, url
        assert f"DocumentReference/{doc_id}" not in body, url
    assert note.pk and "partner worried" not in json.dumps(
        me.get("/fhir/Provenance", {"target": f"DocumentReference/{doc_id}"}).json())


def test_what_a_standard_r4_client_parses(chart, login, client):
    """Every answer a FHIR R4 client parses with its models: the CapabilityStatement, the
    error OperationOutcomes (401, 403, 404, 405, 406, 400), search, history and $everything
    Bundles (fhirclient R4, strict)."""
    from .r4 import parse_r4

    parse_r4(client.get("/fhir/metadata").json())
    parse_r4(client.get("/fhir/Observation").json())  # 401
    staff = login(chart.clinician_a)
    p = chart.patient_a.pk
    obs = staff.get("/fhir/Observation", {"patient": p}).json()
    parse_r4(obs)
    oid = obs["entry"][0]["resource"]["id"]
    answers = [
        staff.get("/fhir/Observation", {"patient": p, "_count": 0}),
        staff.get("/fhir/Observation", {"patient": p, "foo": "bar"}, HTTP_PREFER="handling=lenient"),
        staff.get("/fhir/Observation", {"foo": "bar"}),
        staff.get(f"/fhir/Observation/{oid}/_history"),
        staff.get(f"/fhir/Patient/{p}/$everything"),
        staff.get("/fhir/Nope/1"),
        staff.post("/fhir/Observation", {}, content_type="application/fhir+json"),
        staff.get("/fhir/Observation", HTTP_ACCEPT="application/fhir+xml"),
        staff.get(f"/fhir/Patient/{chart.patient_b.pk}"),
    ]
    for resp in answers:
        assert resp["Content-Type"].startswith("application/fhir+json"), resp
        parse_r4(resp.json())
    lenient = answers[1].json()
    self_link = next(link["url"] for link in lenient["link"] if link["relation"] == "self")
    assert "foo" not in self_link and f"patient={p}" in self_link
    assert "next" not in {link["relation"] for link in answers[0].json()["link"]}
    assert [r.status_code for r in answers[2:]] == [400, 200, 200, 404, 405, 406, 404]


@pytest.mark.parametrize("query", ["_type=Observation", "_since=2026-11-01T00:00:00Z",
                                   "start=2026-01-01", "_count=1", "patient=1"])
def test_everything_with_a_parameter_it_does_not_apply_is_400(chart, login, query):
    """R4 defines _type, _since, start, end and _count for $everything; they are not applied
    here, so a client asking for only the Observations since November got the whole record
    and took it for its answer. Now 400 naming the parameter (lenient: ignored)."""
    staff = login(chart.clinician_a)
    url = f"/fhir/Patient/{chart.patient_a.pk}/$everything?{query}"
    resp = staff.get(url)
    assert resp.status_code == 400, resp.content[:300]
    issue = resp.json()["issue"][0]
    assert issue["code"] == "not-supported"
    assert issue["expression"] == [query.split("=")[0]]
    assert staff.get(url, HTTP_PREFER="handling=lenient").status_code == 200
    ok = staff.get(f"/fhir/Patient/{chart.patient_a.pk}/$everything?_purpose=TREAT&_format=json")
    assert ok.status_code == 200


def test_logins_outside_the_care_teams_are_not_listed(chart, login):
    """Practitioner and CareTeam are the care teams of the patients in reach: another site's
    clinician and team, the administrator and the researcher are not read or listed."""
    staff = login(chart.clinician_a)
    for user in (chart.clinician_b, chart.admin, chart.researcher):
        assert staff.get(f"/fhir/Practitioner/{user.pk}").status_code == 404, user
    listed = {e["resource"]["id"] for e in staff.get("/fhir/Practitioner").json().get("entry", ())}
    assert str(chart.clinician_a.pk) in listed
    assert not listed & {str(chart.clinician_b.pk), str(chart.admin.pk), str(chart.researcher.pk)}
    assert staff.get(f"/fhir/CareTeam/{chart.team_b.pk}").status_code == 404
    me = login(chart.patient_a.user)
    assert me.get(f"/fhir/Practitioner/{chart.clinician_b.pk}").status_code == 404
    assert me.get(f"/fhir/CareTeam/{chart.team_b.pk}").status_code == 404


@pytest.mark.parametrize("asked", ["1001", "5000", "99999999999999999999"])
def test_a_count_above_the_page_limit_is_capped_not_refused(chart, login, asked):
    """FHIR R4 search: 'the server is not bound to return the number of results requested,
    but cannot return more'; a client asking for 5000 a page (many do, to get everything)
    gets pages of at most 1000 with a next link, and the self link says what was applied."""
    from urllib.parse import parse_qs, urlsplit

    staff = login(chart.clinician_a)
    resp = staff.get("/fhir/Observation", {"_count": asked})
    assert resp.status_code == 200, resp.content[:300]
    bundle = resp.json()
    assert len(bundle["entry"]) == 5
    self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert parse_qs(urlsplit(self_link).query)["_count"] == ["1000"]
    assert staff.get("/fhir/Observation", {"_count": "-1"}).status_code == 400
