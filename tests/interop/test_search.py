"""FHIR search at /fhir/[type]: the parameters a clinic's system sends, each applied (not
silently dropped), unknown ones refused, and every error an OperationOutcome."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl, urlsplit

import pytest

from speciosa.clinic import models as cm
from speciosa.clinic import services
from speciosa.interop import codes as c
from speciosa.interop import search
from speciosa.interop.export import validate

from ..conftest import make_patient

pytestmark = pytest.mark.django_db

UTC = dt.UTC
T1 = dt.datetime(2026, 1, 5, 10, 0, tzinfo=UTC)   # prolactin
T2 = dt.datetime(2026, 2, 10, 8, 30, tzinfo=UTC)  # ALT
T3 = dt.datetime(2026, 3, 20, 23, 59, 59, tzinfo=UTC)  # prolactin again, COWS


def _get(client, url, **kw):
    return client.get(url, HTTP_ACCEPT="application/fhir+json", **kw)


def _ids(bundle):
    return [e["resource"]["id"] for e in bundle.get("entry", ())]


@pytest.fixture
def chart(clinic):
    """patient_a (team A) with three labs and a COWS; a decoy patient in team A created
    first (so it comes first in every unfiltered list); patient_b (team B, Site B) with the
    same MRN value as patient_a, visible to clinician_a through a second team."""
    decoy = make_patient(clinic.site_a, clinic.team_a, None, clinic.password, sex="female",
                         given_name="Zoe", family_name="Decoy", birth_date=dt.date(1990, 2, 1),
                         identifier="D-0001")
    p = clinic.patient_a
    clin = clinic.clinician_a
    services.record_lab(clin, p, {"lab": "prolactin", "collected_at": T1, "value": "14",
                                  "unit": "ng/mL"})
    services.record_lab(clin, p, {"lab": "alt", "collected_at": T2, "value": "30", "unit": "U/L"})
    services.record_lab(clin, p, {"lab": "prolactin", "collected_at": T3, "value": "21",
                                  "unit": "ng/mL"})
    services.record_assessment(clin, p, "cows", {
        "pulse": 1, "sweating": 0, "restlessness": 1, "pupil": 0, "bone-joint-aches": 1,
        "runny-nose-tearing": 0, "gi-upset": 0, "tremor": 0, "yawning": 1,
        "anxiety-irritability": 1, "gooseflesh": 0}, at=T3)
    services.record_lab(clin, decoy, {"lab": "prolactin", "collected_at": T1, "value": "99",
                                      "unit": "ng/mL"})
    cm.Medication.objects.create(patient=p, entered_by=clin, source="clinician",
                                 name="Buprenorphine 8 mg", start=dt.date(2026, 1, 5))
    b = clinic.patient_b
    b.identifier = p.identifier
    b.save(update_fields=["identifier"])
    clinic.decoy = decoy
    return clinic


def _both_teams(chart):
    chart.team_b.members.add(chart.clinician_a)


# --------------------------------------------------------------------------- Patient

def test_identifier_system_and_value_returns_exactly_that_patient(chart, login):
    _both_teams(chart)
    client = login(chart.clinician_a)
    mrn = chart.patient_a.identifier
    everyone = _ids(_get(client, "/fhir/Patient").json())
    assert set(everyone) == {str(chart.decoy.pk), str(chart.patient_a.pk), str(chart.patient_b.pk)}
    system_a = c.mrn_system("Site A")
    bundle = _get(client, f"/fhir/Patient?identifier={system_a}|{mrn}").json()
    validate(bundle)
    assert _ids(bundle) == [str(chart.patient_a.pk)]
    # patient_a comes before patient_b in every unfiltered list: the old code answered this
    # search with patient_a (and everyone else) first
    assert everyone.index(str(chart.patient_a.pk)) < everyone.index(str(chart.patient_b.pk))
    system_b = c.mrn_system("Site B")
    assert _ids(_get(client, f"/fhir/Patient?identifier={system_b}|{mrn}").json()) == [
        str(chart.patient_b.pk)]
    # the value alone matches any system: both people with that MRN value, nobody else
    assert set(_ids(_get(client, f"/fhir/Patient?identifier={mrn}").json())) == {
        str(chart.patient_a.pk), str(chart.patient_b.pk)}
    # system| : every patient of that system
    assert set(_ids(_get(client, f"/fhir/Patient?identifier={system_a}|").json())) == {
        str(chart.patient_a.pk), str(chart.decoy.pk)}
    # a system nobody uses, and a value nobody has: nothing (not everyone)
    assert _ids(_get(client, f"/fhir/Patient?identifier=urn:other|{mrn}").json()) == []
    assert _ids(_get(client, f"/fhir/Patient?identifier={system_a}|NOPE").json()) == []


def test_identifier_search_never_finds_another_teams_patient(chart, login):
    client = login(chart.clinician_a)  # not in team B
    system_b = c.mrn_system("Site B")
    mrn = chart.patient_b.identifier
    bundle = _get(client, f"/fhir/Patient?identifier={system_b}|{mrn}").json()
    assert bundle["resourceType"] == "Bundle" and _ids(bundle) == []


def test_patient_name_birthdate_gender_and_id(chart, login):
    client = login(chart.clinician_a)
    a, decoy = str(chart.patient_a.pk), str(chart.decoy.pk)
    assert _ids(_get(client, "/fhir/Patient?name=deco").json()) == [decoy]
    assert _ids(_get(client, "/fhir/Patient?family:exact=Decoy").json()) == [decoy]
    assert _ids(_get(client, "/fhir/Patient?family:exact=decoy").json()) == []
    assert _ids(_get(client, "/fhir/Patient?name:contains=ECO").json()) == [decoy]
    assert _ids(_get(client, "/fhir/Patient?birthdate=1990").json()) == [decoy]
    assert _ids(_get(client, "/fhir/Patient?birthdate=1990-02").json()) == [decoy]
    assert _ids(_get(client, "/fhir/Patient?birthdate=1990-02-01").json()) == [decoy]
    assert _ids(_get(client, "/fhir/Patient?birthdate=1990-02-02").json()) == []
    assert _ids(_get(client, "/fhir/Patient?birthdate=lt1989").json()) == [a]
    chart.patient_a.sex = "male"
    chart.patient_a.save(update_fields=["sex"])
    assert _ids(_get(client, "/fhir/Patient?gender=female").json()) == [decoy]
    assert _ids(_get(client, "/fhir/Patient?gender=male").json()) == [a]
    assert _ids(_get(client, f"/fhir/Patient?_id={a}").json()) == [a]
    assert _ids(_get(client, f"/fhir/Patient?_id={chart.patient_b.pk}").json()) == []


# --------------------------------------------------------------------------- Observation

def _lab_values(bundle):
    return [e["resource"]["valueQuantity"]["value"] for e in bundle.get("entry", ())
            if e["resource"]["id"].startswith("lab")]


def test_observation_code_returns_only_matching_codes(chart, login):
    client = login(chart.clinician_a)
    pid = chart.patient_a.pk
    bundle = _get(client, f"/fhir/Observation?patient={pid}&code={c.LOINC}|2842-3").json()
    assert _lab_values(bundle) == [14, 21]
    assert all(e["resource"]["code"]["coding"][0]["code"] == "2842-3" for e in bundle["entry"])
    assert _lab_values(_get(client, f"/fhir/Observation?patient={pid}&code=1742-6").json()) == [30]
    either = _get(client, f"/fhir/Observation?subject=Patient/{pid}&code={c.LOINC}|2842-3,"
                          f"{c.LOINC}|1742-6").json()
    assert _lab_values(either) == [14, 30, 21]
    # the right code in the wrong system matches nothing
    assert _ids(_get(client, f"/fhir/Observation?patient={pid}&code=urn:x|2842-3").json()) == []
    # Speciosa's own code system, system-only
    own = _get(client, f"/fhir/Observation?patient={pid}&code={c.CS_SCORE}|").json()
    assert [e["resource"]["id"][:5] for e in own["entry"]] == ["score"]
    # the decoy's prolactin (99) is never in patient_a's results
    assert 99 not in _lab_values(_get(client, f"/fhir/Observation?patient={pid}").json())


def test_observation_category(chart, login):
    client = login(chart.clinician_a)
    pid = chart.patient_a.pk
    surveys = _get(client, f"/fhir/Observation?patient={pid}&category=survey").json()
    assert [e["resource"]["id"][:5] for e in surveys["entry"]] == ["score"]
    labs = _get(client, f"/fhir/Observation?patient={pid}&category={c.OBS_CATEGORY}|laboratory")
    assert _lab_values(labs.json()) == [14, 30, 21]


@pytest.mark.parametrize(("query", "expected"), [
    ("date=2026", [14, 30, 21]),
    ("date=2026-02", [30]),
    ("date=2026-01-05", [14]),
    ("date=2026-01-05T10:00:00Z", [14]),
    ("date=2026-01-05T11:00:00%2B01:00", [14]),  # the same instant in another zone
    ("date=2026-01-05T10:00Z", [14]),  # minute precision
    ("date=eq2026-01-04", []),
    ("date=ne2026-02", [14, 21]),
    ("date=lt2026-02-10", [14]),
    ("date=le2026-02-10", [14, 30]),
    ("date=gt2026-02-10", [21]),
    ("date=ge2026-02-10", [30, 21]),
    ("date=sa2026-02", [21]),
    ("date=eb2026-02", [14]),
    ("date=ge2026-01&date=lt2026-03", [14, 30]),  # repeated: AND
    ("date=2026-03-20T23:59:59Z", [21]),
    ("date=gt2026-03-20T23:59:59Z", []),
    ("date=lt9999-12-31", [14, 30, 21]),
    ("date=ap2026-02-09", [30]),
    ("date=ap2025-06", []),
])
def test_observation_date_precisions_and_prefixes(chart, login, query, expected):
    client = login(chart.clinician_a)
    bundle = _get(client, f"/fhir/Observation?patient={chart.patient_a.pk}&category=laboratory&"
                          f"{query}").json()
    assert bundle["resourceType"] == "Bundle", bundle
    assert _lab_values(bundle) == expected


@pytest.mark.parametrize("value", ["soon", "2026-13", "2026-01-05T10:00", "9999-12-31T23:00-05:00",
                                   "xx2026"])
def test_bad_date_is_400_operation_outcome_naming_it(chart, login, value):
    resp = _get(login(chart.clinician_a), f"/fhir/Observation?date={value.replace('+', '%2B')}")
    assert resp.status_code == 400
    assert resp["Content-Type"].startswith("application/fhir+json")
    issue = resp.json()["issue"][0]
    assert issue["code"] == "invalid" and issue["expression"] == ["date"]
    assert "date=" in issue["diagnostics"]


def test_sort_by_date_both_ways(chart, login):
    client = login(chart.clinician_a)
    base = f"/fhir/Observation?patient={chart.patient_a.pk}&category=laboratory"
    assert _lab_values(_get(client, f"{base}&_sort=-date").json()) == [21, 30, 14]
    assert _lab_values(_get(client, f"{base}&_sort=date").json()) == [14, 30, 21]
    first = _get(client, f"{base}&_sort=-date&_count=1").json()
    assert _lab_values(first) == [21] and first["total"] == 3
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert _lab_values(_get(client, nxt.replace("http://testserver", "")).json()) == [30]
    bad = _get(client, f"{base}&_sort=value")
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["_sort"]


def test_count_zero_and_summary_count_give_the_total_and_no_next_link(chart, login):
    client = login(chart.clinician_a)
    base = f"/fhir/Observation?patient={chart.patient_a.pk}"
    zero = _get(client, f"{base}&_count=0").json()
    validate(zero)
    assert zero["total"] == 4 and "entry" not in zero
    assert [link["relation"] for link in zero["link"]] == ["self"]
    summary = _get(client, f"{base}&code=2842-3&_summary=count").json()
    assert summary["total"] == 2 and "entry" not in summary
    assert [link["relation"] for link in summary["link"]] == ["self"]
    assert _get(client, f"{base}&_summary=data").status_code == 400


def test_another_patients_observations_are_404(chart, login):
    client = login(chart.clinician_a)
    resp = _get(client, f"/fhir/Observation?patient={chart.patient_b.pk}&code=2842-3")
    assert resp.status_code == 404 and resp.json()["resourceType"] == "OperationOutcome"
    resp = _get(client, f"/fhir/Observation?patient={chart.patient_a.pk},{chart.patient_b.pk}")
    assert resp.status_code == 404


# --------------------------------------------------------------------------- other types

def test_medication_statement_effective_period_semantics(chart, login):
    client = login(chart.clinician_a)
    base = f"/fhir/MedicationStatement?patient={chart.patient_a.pk}"
    # an ongoing medication (from 2026-01-05, no end) overlaps February: ge matches, eq does
    # not (its period is not inside February)
    assert len(_ids(_get(client, f"{base}&effective=ge2026-02").json())) == 1
    assert _ids(_get(client, f"{base}&effective=2026-02").json()) == []
    assert _ids(_get(client, f"{base}&effective=eb2026-01-05").json()) == []
    assert len(_ids(_get(client, f"{base}&status=active").json())) == 1
    assert _ids(_get(client, f"{base}&status=completed").json()) == []


def test_questionnaire_response_and_questionnaire_search(chart, login):
    client = login(chart.clinician_a)
    pid = chart.patient_a.pk
    url = f"{c.QUESTIONNAIRE_BASE}/cows"
    found = _get(client, f"/fhir/QuestionnaireResponse?patient={pid}&questionnaire={url}").json()
    assert len(found["entry"]) == 1
    assert _ids(_get(client, f"/fhir/QuestionnaireResponse?patient={pid}&"
                             f"questionnaire={c.QUESTIONNAIRE_BASE}/phq9").json()) == []
    assert len(_ids(_get(client, f"/fhir/QuestionnaireResponse?patient={pid}&"
                                 "authored=2026-03-20").json())) == 1
    assert _ids(_get(client, f"/fhir/Questionnaire?url={url}").json()) == ["cows"]


# --------------------------------------------------------------------------- unsupported

def test_unknown_parameter_is_400_naming_it(chart, login):
    client = login(chart.clinician_a)
    resp = _get(client, f"/fhir/Observation?patient={chart.patient_a.pk}&value-quantity=gt5")
    assert resp.status_code == 400
    assert resp["Content-Type"].startswith("application/fhir+json")
    body = resp.json()
    validate(body)
    assert body["issue"][0]["code"] == "not-supported"
    assert body["issue"][0]["expression"] == ["value-quantity"]
    assert "value-quantity" in body["issue"][0]["diagnostics"]
    # a modifier the server does not implement is as unsupported as an unknown parameter
    resp = _get(client, "/fhir/Observation?code:text=prolactin")
    assert resp.status_code == 400 and resp.json()["issue"][0]["expression"] == ["code:text"]
    # a parameter of another type
    assert _get(client, "/fhir/Patient?code=2842-3").status_code == 400


def test_lenient_handling_ignores_it_and_the_self_link_shows_only_what_was_applied(chart, login):
    client = login(chart.clinician_a)
    pid = chart.patient_a.pk
    resp = _get(client, f"/fhir/Observation?patient={pid}&foo=bar&code=2842-3&_count=5",
                HTTP_PREFER="handling=lenient")
    assert resp.status_code == 200
    bundle = resp.json()
    assert _lab_values(bundle) == [14, 21]
    self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert parse_qsl(urlsplit(self_link).query) == [("patient", str(pid)), ("code", "2842-3"),
                                                     ("_count", "5")]
    # a malformed value of a supported parameter is still refused
    bad = _get(client, f"/fhir/Observation?patient={pid}&date=soon", HTTP_PREFER="handling=lenient")
    assert bad.status_code == 400


# --------------------------------------------------------------------------- errors

def test_every_error_is_an_operation_outcome(chart, client, login):
    def check(resp, status):
        assert resp.status_code == status, resp.content
        assert resp["Content-Type"].startswith("application/fhir+json")
        body = resp.json()
        assert body["resourceType"] == "OperationOutcome"
        validate(body)
        return body

    check(client.get(f"/fhir/Patient/{chart.patient_a.pk}"), 401)
    check(client.get("/fhir/Observation?code=2842-3"), 401)
    client = login(chart.clinician_a)
    check(client.get("/fhir/Patient/999999"), 404)
    check(client.get("/fhir/Basic/1"), 404)
    check(client.get(f"/fhir/Patient/{chart.patient_a.pk}/_history/1/extra/parts"), 404)
    body = check(client.post("/fhir/Patient", data="{}", content_type="application/fhir+json",
                             HTTP_ACCEPT="application/fhir+json"), 405)
    assert body["issue"][0]["code"] == "not-supported"
    check(client.delete(f"/fhir/Patient/{chart.patient_a.pk}"), 405)
    check(client.get(f"/fhir/Patient/{chart.patient_a.pk}", HTTP_ACCEPT="text/html"), 406)
    check(login(chart.researcher).get("/fhir/Patient/1"), 404)


# --------------------------------------------------------------------------- semantics

def _rng(text):
    return search._range(text)


@pytest.mark.parametrize(("param", "target", "matches"), [
    ("eq2026-01", "2026-01-31T23:59:59Z", True),
    ("eq2026-01", "2026-02-01T00:00:00Z", False),
    ("gt2026-01", "2026-01-31", False),
    ("ge2026-01", "2026-01-31", True),
    ("lt2026-01-05T10:00:00Z", "2026-01-05", True),  # the day starts before the instant
    ("sa2026-01-05T10:00:00Z", "2026-01-05", False),
    ("eb2026-01-06", "2026-01-05", True),
    ("ne2026", "2025-12-31T23:59:59Z", True),
])
def test_date_range_semantics(param, target, matches):
    lo, hi = _rng(target)
    assert search.parse_date("date", param).matches(lo, hi) is matches


def test_metadata_declares_exactly_the_implemented_parameters(chart, login):
    body = _get(login(chart.clinician_a), "/fhir/metadata").json()
    declared = {r["type"]: {p["name"] for p in r["searchParam"]}
                for r in body["rest"][0]["resource"]}
    assert declared == {t: set(ps) for t, ps in search.PARAMS.items()}
    assert {"identifier", "_id", "name", "birthdate"} <= declared["Patient"]
    assert {"patient", "subject", "code", "category", "date"} <= declared["Observation"]
    # every declared parameter is accepted by the search (none is refused as unknown)
    client = login(chart.clinician_a)
    samples = {"token": "x", "reference": "Patient/1", "string": "x", "uri": "x", "date": "2026"}
    for rtype, params in search.PARAMS.items():
        for name, p in params.items():
            if name in search.PATIENT_PARAMS:
                continue
            resp = _get(client, f"/fhir/{rtype}?{name}={samples[p.type]}")
            assert resp.status_code == 200, (rtype, name, resp.content)
