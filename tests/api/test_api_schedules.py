"""Schedule endpoints (issue 16): plans for clinicians (current, history, new version, stop,
templates), due items and questionnaires for patients (draft, submission); Idempotency-Key
replays and conflicts; another team's patient a 404; every role; bad input names the field
and stores nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from tests.conftest import client_as

from speciosa.clinic.models import Alert, Assessment
from speciosa.knowledge import instruments as kinstruments
from speciosa.schedules.models import Draft, PatientPlan, PlanTemplate

pytestmark = pytest.mark.django_db
V1 = "/api/v1"


@pytest.fixture(autouse=True)
def _default_templates(db):
    from speciosa.schedules import defaults

    defaults.ensure()  # a transactional test run before may have emptied the table


def post(client, url, body, key="k1"):
    return client.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)


def lines(start=None):
    start = (start or timezone.localdate()).isoformat()
    return [{"instrument": "phq9", "every_days": 14, "start": start, "end": None},
            {"instrument": "diary", "every_days": 1, "start": start, "end": None}]


def test_a_clinician_sets_reads_changes_and_stops_a_plan(clinic):
    api = client_as(clinic.clinician_a, "token")
    url = f"{V1}/patients/{clinic.patient_a.pk}/plan/"
    assert api.get(url).json()["plan"] is None
    template = PlanTemplate.objects.get(site__isnull=True, name="Supervised recovery")
    first = post(api, url, {"template": template.pk})
    assert first.status_code == 201, first.content
    assert [r["instrument"] for r in first.json()["items"]] == ["diary", "phq9", "gad7", "asex", "audit-c"]
    again = post(api, url, {"template": template.pk})
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert PatientPlan.objects.count() == 1
    assert post(api, url, {"items": lines()}).status_code == 422  # the same key, another body
    changed = post(api, url, {"items": lines(), "reason": "fewer questionnaires"}, key="k2")
    assert changed.status_code == 201
    body = changed.json()
    assert body["status"] == "current" and body["replaces"] == first.json()["id"]
    assert body["change_reason"] == "fewer questionnaires"
    state = api.get(url).json()
    assert [(d["instrument"], d["status"]) for d in state["due"]] == [("diary", "due"), ("phq9", "due")]
    assert state["completion"]["expected"] == 0 and state["completion"]["percent"] is None
    assert state["time_zone"] == "UTC"
    history = api.get(f"{url}history/").json()["results"]
    assert [h["status"] for h in history] == ["current", "replaced"]
    stopped = post(api, f"{url}stop/", {"reason": "discharged"}, key="k3")
    assert stopped.status_code == 201 and stopped.json()["status"] == "stopped"
    assert api.get(url).json()["plan"] is None


@pytest.mark.parametrize("body, field", [
    ({"items": [{"instrument": "cows", "every_days": 1, "start": "2026-01-01"}]}, "items-0-instrument"),
    ({"items": [{"instrument": "phq9", "every_days": 0, "start": "2026-01-01"}]}, "items-0-every_days"),
    ({"items": [{"instrument": "phq9", "every_days": 14}]}, "items-0-start"),
    ({"items": []}, "items"),
    ({"template": 999999}, "template"),
    ({}, "items"),
])
def test_a_bad_plan_is_refused_naming_the_field_and_stores_nothing(clinic, body, field):
    api = client_as(clinic.clinician_a, "token")
    response = post(api, f"{V1}/patients/{clinic.patient_a.pk}/plan/", body)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert not PatientPlan.objects.exists()


def test_another_teams_patient_is_a_404_on_every_plan_endpoint(clinic):
    api = client_as(clinic.clinician_a, "token")
    base = f"{V1}/patients/{clinic.patient_b.pk}/plan/"
    for url in (base, f"{base}history/"):
        assert api.get(url).status_code == 404
    assert post(api, base, {"items": lines()}).status_code == 404
    assert post(api, f"{base}stop/", {"reason": "x"}).status_code == 404
    assert not PatientPlan.objects.exists()


@pytest.mark.parametrize("role", ["patient", "researcher", "admin"])
def test_no_other_role_reads_or_sets_plans(clinic, role):
    user = {"patient": clinic.patient_a.user, "researcher": clinic.researcher, "admin": clinic.admin}[role]
    api = client_as(user, "token")
    url = f"{V1}/patients/{clinic.patient_a.pk}/plan/"
    assert api.get(url).status_code == 403
    assert post(api, url, {"items": lines()}).status_code == 403
    assert api.get(f"{V1}/plan-templates/").status_code == 403
    assert not PatientPlan.objects.exists()


def test_the_templates_offered_are_the_sites_and_the_defaults(clinic):
    from speciosa.clinic.models import Profile

    Profile.objects.filter(user=clinic.clinician_a).update(site=clinic.site_a)
    PlanTemplate.objects.create(site=clinic.site_a, name="A only", items=[{"instrument": "gad7", "every_days": 7}])
    PlanTemplate.objects.create(site=clinic.site_b, name="B only", items=[{"instrument": "gad7", "every_days": 7}])
    names = [t["name"] for t in client_as(clinic.clinician_a, "token").get(f"{V1}/plan-templates/").json()["results"]]
    assert names == ["A only", "Supervised recovery", "Supervised recovery during a taper"]


@pytest.fixture
def on_plan(clinic):
    api = client_as(clinic.clinician_a, "token")
    start = timezone.localdate() - dt.timedelta(days=2)
    assert post(api, f"{V1}/patients/{clinic.patient_a.pk}/plan/", {"items": lines(start)}).status_code == 201
    return clinic


def test_a_patient_reads_their_due_items_and_completes_a_phq9(on_plan):
    me = client_as(on_plan.patient_a.user, "token")
    due = me.get(f"{V1}/me/due/").json()
    assert [(d["instrument"], d["status"]) for d in due["due"]] == [("phq9", "overdue"), ("diary", "due")]
    assert due["completion"] == {"done": 0, "expected": 3, "percent": 0,
                                 "since": (timezone.localdate() - dt.timedelta(days=27)).isoformat(),
                                 "until": timezone.localdate().isoformat()}
    url = f"{V1}/me/questionnaires/phq9/draft/"
    assert me.get(url).json()["answered"] == 0
    values = {it.id: 1 for it in kinstruments.get_instrument("phq9").items if it.scored}
    values["self-harm"] = 0
    half = dict(list(values.items())[:4])
    draft = me.put(url, {"answers": half}, content_type="application/json")
    assert draft.status_code == 200 and draft.json()["answered"] == 4
    assert "self-harm" in draft.json()["missing"]
    early = post(me, f"{V1}/me/questionnaires/phq9/submission/", None, key="s0")
    assert early.status_code == 400 and "self-harm" in early.json()["errors"]
    assert not Assessment.objects.exists()
    me.put(url, {"answers": values}, content_type="application/json")
    sent = post(me, f"{V1}/me/questionnaires/phq9/submission/", None, key="s1")
    assert sent.status_code == 201, sent.content
    body = sent.json()
    assert body["total"] == kinstruments.score("phq9", values).total == 8
    assert body["band"] == "mild" and body["urgent_help"] is None and body["source"] == "patient"
    replay = post(me, f"{V1}/me/questionnaires/phq9/submission/", None, key="s1")
    assert replay.status_code == 200 and replay.json()["id"] == body["id"]
    assert Assessment.objects.count() == 1
    due = me.get(f"{V1}/me/due/").json()
    assert ("phq9", "done") in [(d["instrument"], d["status"]) for d in due["due"]]
    assert due["completion"]["done"] == 1


def test_phq9_item_9_from_the_app_carries_urgent_help_and_raises_the_alert(on_plan):
    me = client_as(on_plan.patient_a.user, "token")
    values = {it.id: 0 for it in kinstruments.get_instrument("phq9").items if it.scored}
    values["self-harm"] = 2
    me.put(f"{V1}/me/questionnaires/phq9/draft/", {"answers": values}, content_type="application/json")
    sent = post(me, f"{V1}/me/questionnaires/phq9/submission/", None)
    help_now = sent.json()["urgent_help"]
    assert help_now["crisis"] == "988" and help_now["emergency"] == "911"
    assert [r["code"] for r in help_now["reasons"]] == ["self-harm"]
    assert Alert.objects.get(patient=on_plan.patient_a, rule="SAF-SUICIDE").severity == "urgent"


@pytest.mark.parametrize("answers, field", [({"mood": 4}, "mood"), ({"nope": 1}, "item"),
                                            ({"mood": "x"}, "answers"), ({}, "answers")])
def test_a_bad_answer_names_the_question_and_stores_nothing(on_plan, answers, field):
    me = client_as(on_plan.patient_a.user, "token")
    response = me.put(f"{V1}/me/questionnaires/phq9/draft/", {"answers": answers},
                      content_type="application/json")
    assert response.status_code == 400
    assert any(k.startswith(field) for k in response.json()["errors"]), response.json()
    assert not Draft.objects.exists()


def test_a_questionnaire_outside_the_plan_is_a_404_and_a_clinician_cannot_submit(on_plan):
    me = client_as(on_plan.patient_a.user, "token")
    for instrument in ("gad7", "cows", "diary"):
        assert me.get(f"{V1}/me/questionnaires/{instrument}/draft/").status_code == 404
    clinician = client_as(on_plan.clinician_a, "token")
    assert clinician.get(f"{V1}/me/due/").status_code == 403
    assert post(clinician, f"{V1}/me/questionnaires/phq9/submission/", None).status_code == 403
    assert clinician.put(f"{V1}/me/questionnaires/phq9/draft/", {"answers": {"mood": 1}},
                         content_type="application/json").status_code == 403
    assert not Draft.objects.exists() and not Assessment.objects.exists()


def test_another_patient_never_sees_a_draft_that_is_not_theirs(on_plan):
    me = client_as(on_plan.patient_a.user, "token")
    me.put(f"{V1}/me/questionnaires/phq9/draft/", {"answers": {"mood": 3}}, content_type="application/json")
    other = client_as(on_plan.patient_b.user, "token")
    assert other.get(f"{V1}/me/questionnaires/phq9/draft/").status_code == 404  # not in their plan
    assert other.get(f"{V1}/me/due/").json() == {"plan": None, "due": [], "completion": None,
                                                 "time_zone": "UTC"}
