"""Issue 19, taper plans on the web: the clinician enters (the form starts empty of amounts:
Speciosa proposes no dose), corrects, replaces and stops a plan and sees its predicted
exposure and planned against taken; the patient sees "Your plan"; hostile input, another
patient's plan, every role."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from tests.conftest import form_token, verified_login

from speciosa.clinic import taper
from speciosa.clinic.models import AuditEntry, DiaryDay, Dose, TaperPlan


def day(n):
    return timezone.localdate() + dt.timedelta(days=n)


def text(html: str) -> str:
    from html import unescape

    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def plan_post(token="p1", start=None, **over):
    start = start or day(-7)
    data = {"token": form_token(token), "kind": "kratom", "reason": "agreed: four weeks",
            "steps-TOTAL_FORMS": "4", "steps-INITIAL_FORMS": "0"}
    for week, amount in enumerate(("3", "2", "1.5", "1")):
        data.update({f"steps-{week}-start": (start + dt.timedelta(days=7 * week)).isoformat(),
                     f"steps-{week}-end": (start + dt.timedelta(days=7 * week + 6)).isoformat(),
                     f"steps-{week}-amount": amount, f"steps-{week}-unit": "g",
                     f"steps-{week}-doses_per_day": "2"})
    data.update(over)
    return data


def make_plan(clinic, patient=None, start=None, who=None):
    start = start or day(-7)
    steps = [{"start": (start + dt.timedelta(days=7 * w)).isoformat(),
              "end": (start + dt.timedelta(days=7 * w + 6)).isoformat(), "amount": a,
              "unit": "g", "doses_per_day": 2} for w, a in enumerate(("3", "2", "1.5", "1"))]
    return taper.record_plan(who or clinic.clinician_a, patient or clinic.patient_a,
                             {"kind": "kratom", "reason": "agreed: four weeks", "steps": steps})


@pytest.mark.django_db
def test_the_new_plan_form_starts_empty_of_amounts_units_and_doses(clinic, login):
    client = login(clinic.clinician_a)
    html = client.get(reverse("taper_plan_new", args=[clinic.patient_a.pk])).content.decode()
    fields = re.findall(r'<(input|select)[^>]*name="(steps-\d+-[a-z_]+)"[^>]*>', html)
    names = {name for _tag, name in fields}
    assert {f"steps-{i}-{f}" for i in range(4) for f in ("amount", "unit", "doses_per_day",
                                                        "start", "end")} <= names
    for tag in re.findall(r'<input[^>]*name="steps-\d+-[a-z_]+"[^>]*>', html):
        assert 'value="' not in tag, tag  # no amount, dose count, size or date filled in
    for select in re.findall(r'<select[^>]*name="steps-\d+-unit"[^>]*>.*?</select>', html, re.S):
        assert "selected" not in select.split("</option>")[0] or 'value=""' in select.split(
            "</option>")[0]
        assert re.search(r'<option value="[a-z_]+" selected', select) is None
    assert "Speciosa does not propose doses" in text(html)


@pytest.mark.django_db
def test_a_clinician_enters_a_four_week_plan_once_and_sees_it(clinic, login):
    client = login(clinic.clinician_a)
    p = clinic.patient_a
    url = reverse("taper_plan_new", args=[p.pk])
    first = client.post(url, plan_post())
    assert first.status_code == 302
    assert client.post(url, plan_post()).status_code == 302  # the double tap stores one
    plan = TaperPlan.objects.get()
    assert first.url == reverse("taper_plan", args=[p.pk, plan.pk]) + "?saved=1"
    assert [s["amount"] for s in plan.steps] == ["3", "2", "1.5", "1"]
    assert plan.entered_by == clinic.clinician_a
    DiaryDay.objects.create(patient=p, day=day(-7))
    Dose.objects.create(patient=p, entered_by=p.user, source="patient", amount=Decimal(5),
                        unit="g", taken_at=dt.datetime.combine(day(-7), dt.time(9),
                                                               tzinfo=dt.UTC))
    page = text(client.get(first.url).content.decode())
    assert "Prediction from a population model, not a recommendation" in page
    assert "1.5 g of leaf × 2 a day = 3 g of leaf a day" in page
    assert "[tanna-2022]" in page and "[huestis-2024]" in page
    assert "After the plan's last dose" in page and "50 %: about" in page
    pvt = page.split("Planned against taken")[1]
    assert "6 g of leaf 5 g of leaf" in pvt and "less than planned" in pvt and "no diary" in pvt
    section = text(client.get(reverse("patient_detail", args=[p.pk])).content.decode()
                   .split('id="taper"')[1].split("</section>")[0])
    assert "Kratom taper" in section and "Predicted exposure and planned against taken" in section


@pytest.mark.django_db
def test_the_preview_json_draws_the_plan_with_its_band(clinic, login):
    client = login(clinic.clinician_a)
    plan = make_plan(clinic, start=day(1))
    response = client.get(reverse("taper_preview", args=[clinic.patient_a.pk, plan.pk]))
    assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"
    body = json.loads(response.content)
    assert body["exposure"]["available"] is True
    assert "not a recommendation" in body["exposure"]["label"]
    spec = body["specs"]["main"]
    assert set(spec["usermeta"]["ranges"]) == {"plan", "all"}
    rows = spec["vconcat"][0]["layer"][1]["data"]["values"]
    planned = [r["plan"] for r in rows if "plan" in r]
    assert planned and max(planned) > 0 and all(r["lo"] <= r["plan"] <= r["hi"]
                                                 for r in rows if "plan" in r)
    assert body["tables"][0]["rows"]
    assert AuditEntry.objects.filter(action="view", model="taper-preview",
                                     object_id=plan.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("over", "field", "words"), [
    ({"steps-1-end": "END-BEFORE"}, "steps-1-end", "before it starts"),
    ({"steps-2-unit": "spoons"}, "steps-2-unit", "unknown unit 'spoons'"),
    ({"steps-0-amount": "70"}, "steps-0-amount", "plausibility limit"),
    ({"steps-0-amount": "1,5"}, "steps-0-amount", "Use a point for decimals"),
    ({"steps-3-doses_per_day": "40"}, "steps-3-doses_per_day", "from 1 to 12"),
    ({"steps-1-start": "OVERLAP"}, "steps-1-start", "overlaps step 1"),
    ({"kind": "fast"}, "kind", "Unknown kind"),
    ({"reason": ""}, "reason", "Say why"),
])
def test_a_bad_plan_shows_the_message_beside_the_field_and_stores_nothing(clinic, login, over,
                                                                         field, words):
    client = login(clinic.clinician_a)
    data = plan_post(**over)
    if data.get("steps-1-end") == "END-BEFORE":
        data["steps-1-end"] = day(-8).isoformat()
    if data.get("steps-1-start") == "OVERLAP":
        data["steps-1-start"] = day(-2).isoformat()
    response = client.post(reverse("taper_plan_new", args=[clinic.patient_a.pk]), data)
    assert response.status_code == 200
    html = response.content.decode()
    block = html.split(f'name="{field}"')[1].split("</div>")[1] if "steps-" in field else \
        html.split(f'name="{field}"')[1].split("</div>")[0]
    assert words.lower() in text(block).lower() or words.lower() in text(
        html.split(f'name="{field}"')[1][:1500]).lower(), text(html)[:3000]
    assert TaperPlan.objects.count() == 0


@pytest.mark.django_db
def test_another_patients_episode_in_the_post_is_refused(clinic, login):
    from speciosa.clinic import treatment

    other = treatment.record_episode(clinic.clinician_b, clinic.patient_b, {
        "drug": "buprenorphine", "formulation": "sublingual", "dose_mg": "8", "start": day(-2)})
    client = login(clinic.clinician_a)
    response = client.post(reverse("taper_plan_new", args=[clinic.patient_a.pk]),
                           plan_post(kind="buprenorphine", episode=str(other.pk)))
    assert response.status_code == 200
    assert "No such treatment episode in this patient&#x27;s record." in response.content.decode()
    assert TaperPlan.objects.count() == 0


@pytest.mark.django_db
def test_add_a_step_gives_one_more_empty_row_and_saves_nothing(clinic, login):
    client = login(clinic.clinician_a)
    response = client.post(reverse("taper_plan_new", args=[clinic.patient_a.pk]),
                           plan_post(add_step="1"))
    html = response.content.decode()
    assert 'name="steps-4-amount"' in html and TaperPlan.objects.count() == 0
    assert re.search(r'<input[^>]*name="steps-4-amount"[^>]*value=', html) is None


@pytest.mark.django_db
def test_correct_replace_and_stop_keep_the_history(clinic, login):
    client = login(clinic.clinician_a)
    p = clinic.patient_a
    plan = make_plan(clinic)
    url = reverse("taper_plan_correct", args=[p.pk, plan.pk])
    page = client.get(url).content.decode()
    assert 'value="1.5"' in page  # the plan's own steps, as the clinician entered them
    data = plan_post("c1", change_reason="week 1 was 2.5 g")
    data["steps-0-amount"] = "2.5"
    data["steps-INITIAL_FORMS"] = "4"
    assert client.post(url, data).status_code == 302
    fixed = TaperPlan.objects.get(replaces=plan)
    assert fixed.steps[0]["amount"] == "2.5" and fixed.change_reason == "week 1 was 2.5 g"
    assert client.get(url).status_code == 302  # an old version's form opens the current one
    replace = reverse("taper_plan_replace", args=[p.pk, fixed.pk])
    data = plan_post("r1", start=day(-1), change_reason="slower")
    assert client.post(replace, data).status_code == 302
    new = TaperPlan.objects.get(follows__isnull=False)
    assert new.status == "active" and new.follows.status == "replaced"
    stop = reverse("taper_plan_stop", args=[p.pk, new.pk])
    response = client.post(stop, {"token": form_token("s1"), "stopped_on": day(0).isoformat(),
                                  "stop_reason": "started buprenorphine"})
    assert response.status_code == 302
    assert taper.active_plan(p) is None
    page = text(client.get(reverse("taper_plan", args=[p.pk, plan.pk])).content.decode())
    assert "an earlier version" in page and "History of this plan" in page


@pytest.mark.django_db
def test_the_patient_sees_their_own_plan_and_not_anyone_elses(clinic):
    mine = make_plan(clinic, start=day(-2))
    theirs = make_plan(clinic, patient=clinic.patient_b, who=clinic.clinician_b)
    p = clinic.patient_a
    DiaryDay.objects.create(patient=p, day=day(0))
    Dose.objects.create(patient=p, entered_by=p.user, source="patient", amount=Decimal(2),
                        unit="g", taken_at=timezone.now() - dt.timedelta(minutes=5))
    client = verified_login(Client(), p.user)
    page = text(client.get(reverse("my_plan")).content.decode())
    assert "Your plan" in page and "Today 6 g of leaf" in page
    assert "In your diary so far: 2 g of leaf" in page
    assert "6 g of leaf a day" in page and "Omar" not in page
    assert client.get(reverse("my_plan_version", args=[mine.pk])).status_code == 200
    assert client.get(reverse("my_plan_version", args=[theirs.pk])).status_code == 404
    home = client.get(reverse("me")).content.decode()
    assert reverse("my_plan") in home and "Your plan" in text(home)
    for name, args in (("taper_plan", [p.pk, mine.pk]), ("taper_plan_new", [p.pk]),
                       ("taper_preview", [p.pk, mine.pk])):
        assert client.get(reverse(name, args=args)).status_code in (403, 404)


@pytest.mark.django_db
def test_a_patient_without_a_plan_is_told_so(clinic):
    client = verified_login(Client(), clinic.patient_a.user)
    assert "You have no plan yet" in text(client.get(reverse("my_plan")).content.decode())


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["clinician_b", "researcher", "admin"])
def test_other_roles_and_teams_get_no_plan(clinic, role):
    plan = make_plan(clinic)
    user = getattr(clinic, role)
    client = verified_login(Client(), user)
    p = clinic.patient_a
    for name, args in (("taper_plan", [p.pk, plan.pk]), ("taper_plan_new", [p.pk]),
                       ("taper_plan_correct", [p.pk, plan.pk]),
                       ("taper_plan_replace", [p.pk, plan.pk]),
                       ("taper_plan_stop", [p.pk, plan.pk]), ("taper_preview", [p.pk, plan.pk]),
                       ("my_plan", [])):
        for method in ("get", "post"):
            response = getattr(client, method)(reverse(name, args=args))
            assert response.status_code in (302, 403, 404, 405), (role, name, method)
            assert "agreed: four weeks" not in response.content.decode()
    assert TaperPlan.objects.count() == 1


@pytest.mark.django_db
def test_a_plan_id_of_another_patient_under_ones_own_patient_is_a_404(clinic, login):
    theirs = make_plan(clinic, patient=clinic.patient_b, who=clinic.clinician_b)
    client = login(clinic.clinician_a)
    p = clinic.patient_a
    for name in ("taper_plan", "taper_plan_correct", "taper_plan_replace", "taper_plan_stop",
                 "taper_preview"):
        assert client.get(reverse(name, args=[p.pk, theirs.pk])).status_code == 404, name


@pytest.mark.django_db
def test_the_timeline_shows_when_each_plan_was_recorded_replaced_or_stopped(clinic, login):
    from rest_framework.test import APIClient

    p, c = clinic.patient_a, clinic.clinician_a
    first = make_plan(clinic)
    steps = [dict(s) for s in first.steps][:2]
    new = taper.replace_plan(c, p, first, {"kind": "kratom", "reason": "slower", "steps": steps},
                             reason="too fast")
    client = login(c)
    page = text(client.get(reverse("patient_detail", args=[p.pk])).content.decode())
    assert "Taper plan recorded: kratom taper" in page
    assert "Taper plan replaced by a later plan: kratom taper" in page
    assert reverse("taper_plan", args=[p.pk, new.pk]) in client.get(
        reverse("patient_detail", args=[p.pk])).content.decode()
    api = APIClient(HTTP_HOST="localhost")
    api.force_authenticate(c)
    rows = api.get(f"/api/v1/patients/{p.pk}/timeline/").json()["results"]
    assert [r["kind"] for r in rows if r["kind"] == "taper"] == ["taper", "taper"]


@pytest.mark.django_db
def test_round_amounts_read_as_typed_on_every_page(clinic, login):
    """10 capsules stays '10' (a Decimal normalised to 1E+1 would show as '1E+1')."""
    p = clinic.patient_a
    plan = taper.record_plan(clinic.clinician_a, p, {"kind": "kratom", "reason": "r", "steps": [
        {"start": day(0).isoformat(), "end": day(6).isoformat(), "amount": "10",
         "unit": "capsule", "grams_per_capsule": "0.50", "doses_per_day": 2}]})
    client = login(clinic.clinician_a)
    section = text(client.get(reverse("patient_detail", args=[p.pk])).content.decode()
                   .split('id="taper"')[1].split("</section>")[0])
    assert "10 × 2 = 20 capsules a day" in section and "E+" not in section
    page = text(client.get(reverse("taper_plan", args=[p.pk, plan.pk])).content.decode())
    assert "10 capsules (0.5 g each)" in page and "20 capsules" in page and "E+" not in page
    mine = text(verified_login(Client(), p.user).get(reverse("my_plan")).content.decode())
    assert "10 capsules, 2 times a day: 20 capsules a day" in mine and "E+" not in mine
