"""Reading assignments, the patient's reading record, and the decision aid, through the web."""

from __future__ import annotations

import datetime as dt
import html

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from tests.conftest import form_token

from speciosa.clinic.models import AuditEntry
from speciosa.education import content, services
from speciosa.education.models import Decision, EducationAssignment

pytestmark = pytest.mark.django_db


def _assign(client, patient, page_id="prolactin", token="tok-assign-1"):
    return client.post(reverse("education_assign", args=[patient.pk]),
                       {"page_id": page_id, "token": form_token(token)})


def _decision_post(patient, **overrides):
    data = {
        "token": form_token("tok-decision-1"),
        "options_considered": ["kratom-monitored", "supervised-taper", "buprenorphine"],
        "choice": "buprenorphine",
        "priorities": ["avoid-withdrawal", "sexual-health"],
        "priorities_note": "I want to keep working.",
        "reason": "Wants the option with the strongest evidence and less withdrawal.",
        "patient_agreed_name": f"  {patient.given_name.upper()}  {patient.family_name} ",
        "decided_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
    }
    data.update(overrides)
    return data


# --------------------------------------------------------------------------- pages

def test_a_patient_sees_every_page_with_assigned_ones_first(clinic, login):
    services.assign_page(clinic.clinician_a, clinic.patient_a, "pregnancy")
    client = login(clinic.patient_a.user)
    body = client.get(reverse("learn_index")).content.decode()
    titles = [p.title for p in content.all_pages()]
    assert all(html.escape(t) in body for t in titles)
    first = body.index(html.escape(content.get_page("pregnancy").title))
    assert all(first < body.index(html.escape(t)) for t in titles if t != content.get_page("pregnancy").title)
    assert "To read" in body


@pytest.mark.parametrize("page", content.all_pages(), ids=lambda p: p.id)
def test_every_statement_shows_the_strength_of_its_evidence_in_words(clinic, login, page):
    client = login(clinic.patient_a.user)
    body = client.get(reverse("learn_page", args=[page.id])).content.decode()
    for st in page.statements():
        assert html.escape(st.text) in body, st.text
        assert f'data-strength="{html.escape(st.strength)}"' in body, st.text
    assert 'data-strength="no cited evidence"' not in body


def test_the_prolactin_page_shows_one_case_report_for_the_kratom_case(clinic, login):
    client = login(clinic.clinician_a)
    body = client.get(reverse("learn_page", args=["prolactin"])).content.decode()
    assert "Evidence: <strong>one case report</strong>" in body
    assert 'href="/evidence/#labryer-2018"' in body


def test_an_unknown_page_is_404(clinic, login):
    client = login(clinic.patient_a.user)
    assert client.get("/learn/no-such-page/").status_code == 404


def test_a_researcher_cannot_open_education_pages(clinic, login):
    client = login(clinic.researcher)
    assert client.get(reverse("learn_index")).status_code == 403


# --------------------------------------------------------------------------- assignment and reading

def test_assign_then_the_patient_reads_records_read_at_and_audits_it(clinic, login):
    client = login(clinic.clinician_a)
    response = _assign(client, clinic.patient_a)
    assert response.status_code == 302
    assignment = EducationAssignment.objects.get(patient=clinic.patient_a, page_id="prolactin")
    assert assignment.assigned_by == clinic.clinician_a and assignment.read_at is None
    assert AuditEntry.objects.filter(model="EducationAssignment", object_id=assignment.pk,
                                     action="create", user=clinic.clinician_a).exists()

    # The clinician opening the page does not count as the patient's reading.
    client.get(reverse("learn_page", args=["prolactin"]))
    assignment.refresh_from_db()
    assert assignment.read_at is None

    patient_client = login(clinic.patient_a.user)
    body = patient_client.get(reverse("learn_page", args=["prolactin"])).content.decode()
    assert "Marked as read" in body
    assignment.refresh_from_db()
    assert assignment.read_at is not None
    entry = AuditEntry.objects.get(model="EducationAssignment", object_id=assignment.pk, action="view")
    assert entry.user == clinic.patient_a.user and entry.patient == clinic.patient_a
    assert entry.before["read_at"] is None and entry.after["read_at"]

    # Opening it again changes nothing and writes no second audit entry.
    first_read = assignment.read_at
    patient_client.get(reverse("learn_page", args=["prolactin"]))
    assignment.refresh_from_db()
    assert assignment.read_at == first_read
    assert AuditEntry.objects.filter(model="EducationAssignment", action="view").count() == 1


def test_assigning_twice_keeps_one_open_assignment_and_a_retry_stores_one(clinic, login):
    client = login(clinic.clinician_a)
    _assign(client, clinic.patient_a, token="t1")
    _assign(client, clinic.patient_a, token="t1")
    _assign(client, clinic.patient_a, token="t2")
    assert EducationAssignment.objects.filter(patient=clinic.patient_a).count() == 1


def test_a_page_read_earlier_can_be_assigned_again(clinic, login):
    services.assign_page(clinic.clinician_a, clinic.patient_a, "mixing")
    services.mark_read(clinic.patient_a.user, clinic.patient_a, "mixing")
    again = services.assign_page(clinic.clinician_a, clinic.patient_a, "mixing")
    assert again.read_at is None
    assert EducationAssignment.objects.filter(patient=clinic.patient_a, page_id="mixing").count() == 2


def test_assigning_an_unknown_page_is_refused(clinic, login):
    client = login(clinic.clinician_a)
    response = _assign(client, clinic.patient_a, page_id="not-a-page")
    assert response.status_code == 400
    assert "Choose one of the education pages." in response.content.decode()
    assert not EducationAssignment.objects.exists()
    with pytest.raises(ValidationError):
        services.assign_page(clinic.clinician_a, clinic.patient_a, "not-a-page")


@pytest.mark.parametrize("who", ["clinician_a", "patient_user_a"])
def test_another_care_team_s_patient_is_404(clinic, login, who):
    user = clinic.patient_a.user if who == "patient_user_a" else clinic.clinician_a
    client = login(user)
    other = clinic.patient_b
    for url in (reverse("decision_new", args=[other.pk]), reverse("decision_list", args=[other.pk])):
        assert client.get(url).status_code in (403, 404) if who == "patient_user_a" else 404
    response = _assign(client, other)
    assert response.status_code in ((403, 404) if who == "patient_user_a" else (404,))
    assert client.post(reverse("decision_new", args=[other.pk]), _decision_post(other)).status_code in (403, 404)
    assert not EducationAssignment.objects.exists() and not Decision.objects.exists()


def test_a_clinician_of_another_team_gets_404_for_our_patient(clinic, login):
    client = login(clinic.clinician_b)
    assert client.get(reverse("decision_new", args=[clinic.patient_a.pk])).status_code == 404
    assert _assign(client, clinic.patient_a).status_code == 404


def test_a_patient_cannot_assign_or_decide_for_themselves(clinic, login):
    client = login(clinic.patient_a.user)
    assert _assign(client, clinic.patient_a).status_code == 403
    assert client.get(reverse("decision_new", args=[clinic.patient_a.pk])).status_code == 403


def test_reading_by_another_patient_marks_nothing(clinic):
    services.assign_page(clinic.clinician_a, clinic.patient_a, "prolactin")
    assert services.mark_read(clinic.patient_b.user, clinic.patient_a, "prolactin") == []
    assert EducationAssignment.objects.get().read_at is None


def test_my_page_lists_the_reading_assigned_to_me(clinic, login):
    services.assign_page(clinic.clinician_a, clinic.patient_a, "urgent-help")
    client = login(clinic.patient_a.user)
    body = client.get(reverse("me")).content.decode()
    assert "Reading from your care team" in body
    assert reverse("learn_page", args=["urgent-help"]) in body


# --------------------------------------------------------------------------- decision aid

def test_the_option_grid_shows_every_option_with_its_evidence_strength_and_prolactin(clinic, login):
    client = login(clinic.clinician_a)
    body = client.get(reverse("decision_new", args=[clinic.patient_a.pk])).content.decode()
    for option in content.all_options():
        assert html.escape(option.label) in body
        if not option.free_text:
            assert f'data-option="{option.id}">{html.escape(option.strength)}</strong>' in body
    assert body.count("prolactin") >= 4
    for heading in ("What it involves", "How strong the evidence is", "Monitoring", "Side effects"):
        assert heading in body


def test_a_decision_is_recorded_with_both_names_date_reason_and_audit(clinic, login):
    client = login(clinic.clinician_a)
    response = client.post(reverse("decision_new", args=[clinic.patient_a.pk]), _decision_post(clinic.patient_a))
    assert response.status_code == 302
    d = Decision.objects.get()
    assert d.choice == "buprenorphine" and d.clinician == clinic.clinician_a
    assert d.patient_agreed_name == f"{clinic.patient_a.given_name.upper()} {clinic.patient_a.family_name}"
    assert [o["id"] for o in d.options_considered] == ["kratom-monitored", "supervised-taper", "buprenorphine"]
    assert d.options_considered[2]["evidence"] == content.get_option("buprenorphine").strength
    assert d.priorities["selected"] == ["avoid-withdrawal", "sexual-health"]
    assert d.priorities["note"] == "I want to keep working."
    assert d.reason.startswith("Wants the option")
    assert abs(d.decided_at - timezone.now()) < dt.timedelta(minutes=2)
    assert AuditEntry.objects.filter(model="Decision", object_id=d.pk, action="create",
                                     patient=clinic.patient_a).exists()
    listing = client.get(reverse("decision_list", args=[clinic.patient_a.pk])).content.decode()
    assert "Buprenorphine" in listing and "Ada Okafor" in listing and clinic.patient_a.family_name in listing


@pytest.mark.parametrize("field,value,message", [
    ("choice", "", "Choose the option that was decided."),
    ("reason", "   ", "Write the reason for this choice"),
    ("choice", "kratom-high-dose", "Choose one of the options in the grid."),
    ("options_considered", ["magic-cure"], "Tick only options from the grid."),
    ("patient_agreed_name", "", "Ask the patient to confirm their name"),
    ("patient_agreed_name", "Someone Else", "does not match the name on the record"),
])
def test_the_decision_form_refuses_what_is_missing_or_unknown(clinic, login, field, value, message):
    client = login(clinic.clinician_a)
    response = client.post(reverse("decision_new", args=[clinic.patient_a.pk]),
                           _decision_post(clinic.patient_a, **{field: value}))
    assert response.status_code == 400
    assert message in html.unescape(response.content.decode())
    assert not Decision.objects.exists()


def test_something_else_needs_a_description(clinic, login):
    client = login(clinic.clinician_a)
    response = client.post(reverse("decision_new", args=[clinic.patient_a.pk]),
                           _decision_post(clinic.patient_a, choice="other", choice_detail=""))
    assert response.status_code == 400 and "Say what the other option is." in response.content.decode()
    response = client.post(reverse("decision_new", args=[clinic.patient_a.pk]),
                           _decision_post(clinic.patient_a, choice="other", choice_detail="Counselling only"))
    assert response.status_code == 302
    assert Decision.objects.get().choice_label == "Something else: Counselling only"


def test_a_decision_in_the_future_is_refused(clinic):
    with pytest.raises(ValidationError) as exc:
        services.validate_decision(clinic.patient_a, {
            "choice": "methadone", "reason": "r", "patient_agreed_name": clinic.patient_a.name,
            "decided_at": timezone.now() + dt.timedelta(days=2)})
    assert "decided_at" in exc.value.message_dict


def test_a_retried_decision_submission_stores_one(clinic, login):
    client = login(clinic.clinician_a)
    url = reverse("decision_new", args=[clinic.patient_a.pk])
    first = client.post(url, _decision_post(clinic.patient_a))
    second = client.post(url, _decision_post(clinic.patient_a))
    assert first.status_code == second.status_code == 302
    assert Decision.objects.count() == 1
    assert AuditEntry.objects.filter(model="Decision").count() == 1


def test_the_decision_and_reading_appear_on_the_patient_page(clinic, login):
    services.assign_page(clinic.clinician_a, clinic.patient_a, "prolactin")
    services.record_decision(clinic.clinician_a, clinic.patient_a, {
        "choice": "supervised-taper", "reason": "Wants to stop all opioid-like substances.",
        "patient_agreed_name": clinic.patient_a.name, "priorities": ["stop-all"]})
    client = login(clinic.clinician_a)
    body = client.get(reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    assert "Education and decisions" in body
    assert html.escape(content.get_option("supervised-taper").label) in body
    assert "Wants to stop all opioid-like substances." in body
    assert "not read yet" in body
    assert reverse("decision_new", args=[clinic.patient_a.pk]) in body


def test_the_decision_aid_ticks_nothing_by_default(clinic, login):
    """Issue 15: what was discussed is what the clinician ticks, not a pre-filled grid."""
    import re

    body = login(clinic.clinician_a).get(reverse("decision_new", args=[clinic.patient_a.pk])).content.decode()
    boxes = re.findall(r'<input type="(?:checkbox|radio)"[^>]*>', body)
    assert len(boxes) > 5
    assert [b for b in boxes if "checked" in b] == []
