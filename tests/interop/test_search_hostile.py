"""What an EHR integrator, an attacker and a hurried clinician sent to /fhir/ after the search
and versions work landed, and what broke: unaudited reads across patients, ``_format``
ignored or refused, a self link that forgot its page, an internal error text on a huge
``_offset``, ``If-None-Match`` by exact string, and a token URL that does not exist."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from speciosa.clinic import models as cmodels
from speciosa.interop.export import validate

from .test_search import _get, _ids, chart  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db


def _views(patient):
    return cmodels.AuditEntry.objects.filter(action="view", patient=patient).count()


def _link(bundle, relation):
    return next((link["url"] for link in bundle["link"] if link["relation"] == relation), None)


def test_a_search_across_patients_audits_every_patient_it_shows(chart, login):  # noqa: F811
    client = login(chart.clinician_a)
    before_a, before_decoy = _views(chart.patient_a), _views(chart.decoy)
    # no patient named: prolactin results of two patients come back
    resp = _get(client, "/fhir/Observation?code=2842-3")
    assert resp.status_code == 200
    subjects = {e["resource"]["subject"]["reference"] for e in resp.json()["entry"]}
    assert subjects == {f"Patient/{chart.patient_a.pk}", f"Patient/{chart.decoy.pk}"}
    assert _views(chart.patient_a) == before_a + 1
    assert _views(chart.decoy) == before_decoy + 1
    # a Patient search by name shows demographics: audited too, and only for who was shown
    before_b = _views(chart.patient_b)
    names = _get(client, "/fhir/Patient?family=Decoy").json()
    assert _ids(names) == [str(chart.decoy.pk)]
    assert _views(chart.decoy) == before_decoy + 2
    assert _views(chart.patient_a) == before_a + 1
    assert _views(chart.patient_b) == before_b  # another team's patient: neither shown nor logged
    # a count shows no record
    _get(client, "/fhir/Observation?code=2842-3&_summary=count")
    assert _views(chart.decoy) == before_decoy + 2


@pytest.mark.parametrize("fmt", ["json", "application/fhir+json", "application/json"])
def test_format_json_is_accepted_on_search_and_read(chart, login, fmt):  # noqa: F811
    client = login(chart.clinician_a)
    pid = chart.patient_a.pk
    resp = client.get("/fhir/Observation", {"patient": pid, "code": "2842-3", "_format": fmt})
    assert resp.status_code == 200, resp.content
    assert len(resp.json()["entry"]) == 2
    assert client.get(f"/fhir/Patient/{pid}", {"_format": fmt}).json()["id"] == str(pid)


@pytest.mark.parametrize("fmt", ["xml", "application/fhir+xml", "html", "turtle"])
def test_format_other_than_json_is_406_naming_it(chart, login, client, fmt):  # noqa: F811
    for c in (login(chart.clinician_a), client):  # metadata without a login too
        for url in (f"/fhir/Patient/{chart.patient_a.pk}", "/fhir/Patient", "/fhir/metadata"):
            resp = c.get(url, {"_format": fmt})
            if c is client and url != "/fhir/metadata":
                assert resp.status_code in (401, 406)
                continue
            assert resp.status_code == 406, (url, resp.content)
            body = resp.json()
            validate(body)
            assert body["issue"][0]["code"] == "not-supported"
            assert f"_format={fmt}" in body["issue"][0]["diagnostics"]


def test_the_self_link_names_its_page_and_previous_goes_back(chart, login):  # noqa: F811
    client = login(chart.clinician_a)
    pid = chart.patient_a.pk
    first = _get(client, f"/fhir/Observation?patient={pid}&_count=2").json()
    second_url = _link(first, "next")
    second = _get(client, second_url).json()
    assert _ids(second) and set(_ids(second)).isdisjoint(_ids(first))
    self_query = dict(parse_qsl(urlsplit(_link(second, "self")).query))
    assert self_query == {"patient": str(pid), "_count": "2", "_offset": "2"}
    # following self gives the same page, following previous gives the first page
    assert _ids(_get(client, _link(second, "self")).json()) == _ids(second)
    assert _ids(_get(client, _link(second, "previous")).json()) == _ids(first)
    assert _link(first, "previous") is None


@pytest.mark.parametrize("offset", ["99999999999999999999", "1000000001"])
def test_a_huge_offset_is_a_clear_400_not_an_internal_message(chart, login, offset):  # noqa: F811
    resp = _get(login(chart.clinician_a), f"/fhir/Patient?_offset={offset}")
    assert resp.status_code == 400
    text = resp.json()["issue"][0]["diagnostics"]
    assert text == "_offset must be between 0 and 1000000000"
    assert "islice" not in text


def test_if_none_match_compares_weakly_and_star_matches(chart, login):  # noqa: F811
    client = login(chart.clinician_a)
    url = f"/fhir/Patient/{chart.patient_a.pk}"
    etag = _get(client, url)["ETag"]
    assert etag.startswith('W/"')
    strong = etag.removeprefix("W/")
    for header in (etag, strong, "*", f'"nope", {strong}'):
        assert _get(client, url, HTTP_IF_NONE_MATCH=header).status_code == 304, header
    assert _get(client, url, HTTP_IF_NONE_MATCH='W/"nope"').status_code == 200
    # another team's patient: the ETag of a record one cannot see still answers 404
    other = login(chart.clinician_b)
    assert _get(other, url, HTTP_IF_NONE_MATCH="*").status_code == 404


def test_metadata_names_the_token_endpoint_that_exists(client):
    security = client.get("/fhir/metadata").json()["rest"][0]["security"]["description"]
    assert "POST /api/v1/auth/token/" in security
    assert "/api/auth/token/" not in security.replace("/api/v1/auth/token/", "")
    # and that endpoint answers (400 without credentials, not 404)
    assert client.post("/api/v1/auth/token/", {}, content_type="application/json").status_code \
        == 400
