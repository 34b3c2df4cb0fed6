"""Patient plans (issue 16): a clinician assigns one from a template and adjusts its lines on
the patient's plan page; each change is a new version (history kept, audited); a double tap
stores one; bad lines are refused beside their field and store nothing; another team's
patient is a 404 and no other role sets a plan. The completion rate shows on the patient page
and the patient list, the list in a fixed number of queries however many patients."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from tests.conftest import form_token, make_patient, verified_login

from speciosa.clinic import writes
from speciosa.clinic.models import Assessment, AuditEntry, DiaryDay
from speciosa.knowledge import instruments as kinstruments
from speciosa.schedules import services
from speciosa.schedules.models import PatientPlan, PlanTemplate

pytestmark = pytest.mark.django_db


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def standard() -> PlanTemplate:
    return PlanTemplate.objects.get(site__isnull=True, name="Supervised recovery")


def template_post(token="p1", **over):
    data = {"token": form_token(token), "action": "template", "template": str(standard().pk),
            "start": timezone.localdate().isoformat()}
    data.update(over)
    return data


def lines_post(lines, token="p2", **over):
    data = {"token": form_token(token), "action": "lines", "rows": str(len(lines)),
            "name": "Adjusted", "reason": "GAD-7 less often"}
    for i, (inst, every, start, end) in enumerate(lines):
        data.update({f"instrument-{i}": inst, f"every_days-{i}": str(every), f"start-{i}": start,
                     f"end-{i}": end or ""})
    data.update(over)
    return data


def test_the_migration_ships_the_same_defaults_as_the_code():
    import importlib

    from speciosa.schedules import defaults

    migration = importlib.import_module("speciosa.schedules.migrations.0002_default_templates")
    assert migration.DEFAULTS == defaults.DEFAULTS


def test_the_default_templates_match_the_issue():
    lines = {r["instrument"]: r["every_days"] for r in standard().items}
    assert lines == {"diary": 1, "phq9": 14, "gad7": 14, "asex": 30, "audit-c": 90}
    taper = PlanTemplate.objects.get(site__isnull=True, name="Supervised recovery during a taper")
    assert {r["instrument"]: r["every_days"] for r in taper.items}["sows"] == 1
    assert services.template_problems(standard().items) == []


def test_a_clinician_assigns_a_plan_from_a_template_and_a_double_tap_stores_one(clinic, login):
    client = login(clinic.clinician_a)
    url = reverse("patient_plan", args=[clinic.patient_a.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, template_post()).status_code == 302
    assert client.post(url, template_post()).status_code == 302  # the same form again
    plan = PatientPlan.objects.get()
    today = timezone.localdate().isoformat()
    assert plan.items[1] == {"instrument": "phq9", "every_days": 14, "start": today, "end": None}
    assert plan.name == "Supervised recovery" and plan.template == standard()
    assert plan.source == "clinician" and plan.entered_by == clinic.clinician_a
    entry = AuditEntry.objects.get(model="PatientPlan", action="create")
    assert entry.patient == clinic.patient_a and entry.after["items"] == plan.items
    page = text(client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode())
    assert "Plan: Supervised recovery" in page
    assert "PHQ-9 every 14 days" in page and "AUDIT-C every 90 days" in page


def test_adjusting_the_plan_stores_a_new_version_and_keeps_the_history(clinic, login):
    client = login(clinic.clinician_a)
    url = reverse("patient_plan", args=[clinic.patient_a.pk])
    client.post(url, template_post())
    first = PatientPlan.objects.get()
    today = timezone.localdate()
    end = (today + dt.timedelta(days=20)).isoformat()
    response = client.post(url, lines_post([("diary", 1, today.isoformat(), None),
                                            ("gad7", 28, today.isoformat(), end)]))
    assert response.status_code == 302
    first.refresh_from_db()
    current = PatientPlan.objects.current().get()
    assert first.superseded and current.replaces == first
    assert current.items == [
        {"instrument": "diary", "every_days": 1, "start": today.isoformat(), "end": None},
        {"instrument": "gad7", "every_days": 28, "start": today.isoformat(), "end": end}]
    assert current.name == "Adjusted" and current.change_reason == "GAD-7 less often"
    change = AuditEntry.objects.get(model="PatientPlan", action="correct")
    assert change.before["id"] == first.pk and change.after["id"] == current.pk
    page = text(client.get(url).content.decode())
    assert "Adjusted" in page and "replaced" in page and "current" in page
    assert "GAD-7 every 28 d from" in page


@pytest.mark.parametrize("line, field, words", [
    (("cows", 1, None, None), "instrument", "Select a valid choice"),
    (("phq9", "0", None, None), "every_days", "1 to 366"),
    (("phq9", "two", None, None), "every_days", "whole number"),
    (("phq9", "14", "2026-13-01", None), "start", "YYYY-MM-DD"),
    (("phq9", "14", None, "2000-01-01"), "end", "before the start"),
])
def test_a_bad_line_is_refused_beside_its_field_and_stores_nothing(clinic, login, line, field, words):
    client = login(clinic.clinician_a)
    inst, every, start, end = line
    start = start or timezone.localdate().isoformat()
    response = client.post(reverse("patient_plan", args=[clinic.patient_a.pk]),
                           lines_post([(inst, every, start, end)]))
    assert response.status_code == 200
    form = response.context["lform"]
    assert words in " ".join(form.errors[f"{field}-0"]), form.errors
    assert not PatientPlan.objects.exists()


def test_a_plan_without_lines_is_refused(clinic, login):
    client = login(clinic.clinician_a)
    response = client.post(reverse("patient_plan", args=[clinic.patient_a.pk]), lines_post([]))
    assert "Add at least one thing to complete." in response.content.decode()
    assert not PatientPlan.objects.exists()


def test_stopping_the_plan_retracts_it_with_the_reason(clinic, login):
    client = login(clinic.clinician_a)
    client.post(reverse("patient_plan", args=[clinic.patient_a.pk]), template_post())
    stop = reverse("patient_plan_stop", args=[clinic.patient_a.pk])
    assert client.post(stop, {"token": form_token("s1"), "reason": ""}).status_code == 400
    assert client.post(stop, {"token": form_token("s1"), "reason": "discharged"}).status_code == 302
    plan = PatientPlan.objects.get()
    assert plan.retracted and plan.change_reason == "discharged"
    assert services.due_items(clinic.patient_a) == []
    assert AuditEntry.objects.filter(model="PatientPlan", action="retract").count() == 1


def test_another_teams_patient_is_a_404_and_stores_nothing(clinic, login):
    client = login(clinic.clinician_a)
    for name in ("patient_plan", "patient_plan_stop"):
        url = reverse(name, args=[clinic.patient_b.pk])
        assert client.get(url).status_code in (404, 405)
        assert client.post(url, template_post()).status_code == 404
    assert not PatientPlan.objects.exists()


@pytest.mark.parametrize("role", ["patient", "researcher", "admin"])
def test_no_other_role_sets_a_plan(clinic, role):
    user = {"patient": clinic.patient_a.user, "researcher": clinic.researcher, "admin": clinic.admin}[role]
    client = verified_login(Client(), user)
    url = reverse("patient_plan", args=[clinic.patient_a.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, template_post()).status_code == 403
    with pytest.raises(writes.AccessDenied):
        services.save_plan(user, clinic.patient_a, [{"instrument": "phq9", "every_days": 14,
                                                     "start": timezone.localdate().isoformat()}])
    assert not PatientPlan.objects.exists()


def test_a_template_of_another_site_is_not_offered(clinic, login):
    other = PlanTemplate.objects.create(site=clinic.site_b, name="Site B only",
                                        items=[{"instrument": "phq9", "every_days": 7}])
    client = login(clinic.clinician_a)
    url = reverse("patient_plan", args=[clinic.patient_a.pk])
    assert "Site B only" not in client.get(url).content.decode()
    response = client.post(url, template_post(template=str(other.pk)))
    assert response.status_code == 200 and not PatientPlan.objects.exists()


def test_a_template_with_a_bad_line_is_refused_by_its_check(clinic):
    from django.core.exceptions import ValidationError

    bad = PlanTemplate(name="Bad", items=[{"instrument": "cows", "every_days": 1},
                                          {"instrument": "phq9", "every_days": 0, "for_days": -1}])
    with pytest.raises(ValidationError) as exc:
        bad.full_clean()
    problems = " ".join(exc.value.message_dict["items"])
    assert "line 1: Choose what to complete" in problems
    assert "line 2: for_days must be a whole number" in problems
    assert "line 2: Give every how many days" in problems


def _plan(patient, clinician, lines):
    return services.save_plan(clinician, patient, lines)


def test_the_completion_rate_on_the_patient_page_and_the_list(clinic, login):
    patient, clinician = clinic.patient_a, clinic.clinician_a
    today = timezone.localdate()
    start = today - dt.timedelta(days=9)
    _plan(patient, clinician, [{"instrument": "diary", "every_days": 1, "start": start.isoformat()},
                               {"instrument": "phq9", "every_days": 14, "start": start.isoformat()}])
    for d in range(0, 10, 2):  # diary on 5 of the 9 days before today
        DiaryDay.objects.create(patient=patient, day=start + dt.timedelta(days=d))
    rate = services.completion_rate(patient)
    assert rate.by_item == {"diary": (5, 9), "phq9": (0, 1)}
    assert (rate.done, rate.expected, rate.percent) == (5, 10, 50)
    client = login(clinician)
    page = text(client.get(reverse("patient_detail", args=[patient.pk])).content.decode())
    assert "Completed 50 % (5 of 10 due in the last 28 days)" in page
    listing = client.get(reverse("patient_list"))
    row = [r for r in listing.context["rows"] if r["p"].pk == patient.pk][0]
    assert row["rate"].percent == 50
    assert "50 % (5/10, 4 weeks)" in text(listing.content.decode())


class Counter:
    def __init__(self):
        self.n = 0

    def __call__(self, execute, sql, params, many, context):
        self.n += 1
        return execute(sql, params, many, context)


def _list_queries(client) -> int:
    counter = Counter()
    with connection.execute_wrapper(counter):
        assert client.get(reverse("patient_list")).status_code == 200
    return counter.n


def test_the_patient_list_reads_the_rates_in_a_fixed_number_of_queries(clinic, login):
    clinician = clinic.clinician_a
    client = login(clinician)
    start = (timezone.localdate() - dt.timedelta(days=5)).isoformat()
    lines = [{"instrument": "diary", "every_days": 1, "start": start},
             {"instrument": "phq9", "every_days": 14, "start": start}]
    _plan(clinic.patient_a, clinician, lines)
    client.get(reverse("patient_list"))
    few = _list_queries(client)
    for i in range(6):
        p = make_patient(clinic.site_a, clinic.team_a, None, "", identifier=f"Q-{i}")
        _plan(p, clinician, lines)
        Assessment.objects.create(patient=p, entered_by=clinician, source="clinician", instrument="phq9",
                                  at=timezone.now(), items={}, total=3)
        DiaryDay.objects.create(patient=p, day=timezone.localdate())
    many = _list_queries(client)
    assert many == few, f"{few} queries with one patient on a plan, {many} with seven (N+1?)"


def test_a_sows_in_the_diary_completes_the_sows_line(clinic):
    from speciosa.clinic import services as cservices

    patient = clinic.patient_a
    _plan(patient, clinic.clinician_a, [{"instrument": "sows", "every_days": 1,
                                         "start": timezone.localdate().isoformat()}])
    [row] = services.due_items(patient)
    assert row.status == "due"
    sows = {it.id: 1 for it in kinstruments.get_instrument("sows").items}
    cservices.record_diary(patient.user, patient, cservices.DiaryInput(
        day=timezone.localdate(), doses=[], sows=sows))
    [row] = services.due_items(patient)
    assert row.status == "done"


def test_a_start_more_than_a_year_ahead_is_refused(clinic):
    from django.core.exceptions import ValidationError

    far = (timezone.localdate() + dt.timedelta(days=366)).isoformat()
    with pytest.raises(ValidationError) as exc:
        _plan(clinic.patient_a, clinic.clinician_a, [{"instrument": "phq9", "every_days": 14, "start": far}])
    assert "too far ahead" in exc.value.message_dict["items-0-start"][0]
    assert not PatientPlan.objects.exists()


def test_due_days_follow_the_patients_site_zone(clinic):
    clinic.site_a.time_zone = "Pacific/Auckland"
    clinic.site_a.save()
    patient = type(clinic.patient_a).objects.select_related("site").get(pk=clinic.patient_a.pk)
    moment = dt.datetime(2026, 6, 1, 23, 30, tzinfo=dt.UTC)  # 2 June, 11:30 in Auckland
    PatientPlan.objects.create(patient=patient, source="clinician", name="p", items=[
        {"instrument": "phq9", "every_days": 14, "start": "2026-06-02", "end": None}])
    [row] = services.due_items(patient, moment)
    assert (row.due_on, row.status) == (dt.date(2026, 6, 2), "due")
    assert row.due_at.utcoffset() == dt.timedelta(hours=12)
    clinic.site_a.time_zone = "Not/AZone"  # a mistyped zone reads as UTC, never a 500
    clinic.site_a.save()
    patient.refresh_from_db()
    assert services.due_items(patient, moment) == []


def test_the_clinician_sees_the_patients_own_phq9_in_the_timeline(clinic, login):
    _plan(clinic.patient_a, clinic.clinician_a, [{"instrument": "phq9", "every_days": 14,
                                                  "start": timezone.localdate().isoformat()}])
    user = clinic.patient_a.user
    services.save_answers(user, clinic.patient_a, "phq9",
                          {it.id: 1 for it in kinstruments.get_instrument("phq9").items if it.scored})
    services.submit(user, clinic.patient_a, "phq9", token="t")
    page = text(login(clinic.clinician_a).get(reverse("patient_detail", args=[clinic.patient_a.pk]))
                .content.decode())
    assert "PHQ-9" in page and "Patient: " in page
    assert "done" in page.split("Plan:")[1].split("Medications")[0]


def test_due_items_of_many_patients_match_each_patients_in_three_queries(clinic):
    from django.test.utils import CaptureQueriesContext

    start = (timezone.localdate() - dt.timedelta(days=3)).isoformat()
    lines = [{"instrument": "diary", "every_days": 1, "start": start},
             {"instrument": "phq9", "every_days": 14, "start": start}]
    patients = [clinic.patient_a] + [make_patient(clinic.site_a, clinic.team_a, None, "", identifier=f"M-{i}")
                                     for i in range(4)]
    for p in patients:
        _plan(p, clinic.clinician_a, lines)
    DiaryDay.objects.create(patient=patients[1], day=timezone.localdate())
    Assessment.objects.create(patient=patients[2], entered_by=clinic.clinician_a, source="clinician",
                              instrument="phq9", at=timezone.now(), items={}, total=2)
    moment = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        many = services.due_items_many([p.pk for p in patients] + [clinic.patient_b.pk], moment)
    assert len(queries) == 3
    assert set(many) == {p.pk for p in patients}  # patient B has no plan
    for p in patients:
        assert many[p.pk] == services.due_items(p, moment)
    assert [(r.item.instrument, r.status) for r in many[patients[1].pk]] == [("phq9", "overdue"),
                                                                              ("diary", "done")]
