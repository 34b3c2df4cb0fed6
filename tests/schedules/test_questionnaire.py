"""The patient's questionnaires (issue 16): one question a screen, each answer kept on the
server as a draft (not an assessment) so the patient can stop and go on; sending scores it
with the one scorer and stores it as patient-entered, feeding the rules as a clinician-entered
one does (PHQ-9 item 9 raises the urgent alert and shows the site's crisis numbers at once).
Hostile cases: an answer out of range, a questionnaire not in the plan, a clinician
submitting as the patient, another patient's draft, a double submit."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from tests.conftest import form_token, verified_login

from speciosa.clinic import writes
from speciosa.clinic.models import Alert, Assessment, AuditEntry
from speciosa.knowledge import instruments as kinstruments
from speciosa.schedules import services
from speciosa.schedules.models import Draft

pytestmark = pytest.mark.django_db

PHQ9 = ["interest", "mood", "sleep", "energy", "appetite", "self-worth", "concentration",
        "psychomotor", "self-harm"]


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def planned(clinic):
    """Patient A on a plan with the diary, PHQ-9, GAD-7, ASEX, AUDIT-C and SOWS from today."""
    today = timezone.localdate().isoformat()
    services.save_plan(clinic.clinician_a, clinic.patient_a, [
        {"instrument": i, "every_days": n, "start": today}
        for i, n in (("diary", 1), ("phq9", 14), ("gad7", 14), ("asex", 30), ("audit-c", 90), ("sows", 1))])
    return clinic


def answer(client, instrument, item, value):
    return client.post(reverse("questionnaire", args=[instrument]), {"item": item, "answer": str(value)})


def submit(client, instrument, token="q1"):
    return client.post(reverse("questionnaire", args=[instrument]), {"token": form_token(token)})


def test_a_patient_answers_a_phq9_one_question_a_screen_and_it_is_scored_by_the_scorer(planned):
    client = verified_login(Client(), planned.patient_a.user)
    url = reverse("questionnaire", args=["phq9"])
    page = text(client.get(url).content.decode())
    assert "Question 1 of 10" in page and "Little interest or pleasure in doing things" in page
    assert "not at all" in page and "nearly every day" in page
    values = dict(zip(PHQ9, [1, 2, 0, 3, 1, 2, 0, 1, 0], strict=True))
    for n, (item, value) in enumerate(values.items(), 1):
        response = answer(client, "phq9", item, value)
        assert response.status_code == 302 and response["Location"].endswith(f"?q={n + 1}")
    assert not Assessment.objects.filter(instrument="phq9").exists()  # a draft, not an assessment
    draft = Draft.objects.get()
    assert draft.answers == values and draft.assessment is None
    review = text(client.get(url).content.decode())  # item 10 is optional: the review comes next
    assert "Check your answers" in review and "Send to my care team" in review
    assert "Get help now" not in review  # item 9 answered 0
    assert "How difficult these problems have made daily life (not scored) : not answered" in review
    optional = text(client.get(url + "?q=10").content.decode())
    assert "Question 10 of 10" in optional and "(optional)" in optional and "Skip" in optional
    response = submit(client, "phq9")
    assert response.status_code == 302 and response["Location"] == reverse("me") + "?completed=phq9"
    stored = Assessment.objects.get(instrument="phq9")
    expected = kinstruments.score("phq9", values, sex="female")
    assert (stored.total, stored.band, stored.complete, stored.flags) == (
        expected.total, expected.band or "", expected.complete, list(expected.flags))
    assert stored.total == 10 and stored.band == "moderate"
    assert stored.source == "patient" and stored.entered_by == planned.patient_a.user
    assert stored.items == values and stored.instrument_version == "kroenke-2001"
    draft.refresh_from_db()
    assert draft.assessment == stored
    me = text(client.get(reverse("me") + "?completed=phq9").content.decode())
    assert "Sent to your care team" in me and "Done: PHQ-9" in me


def test_a_double_submit_stores_one_assessment(planned):
    client = verified_login(Client(), planned.patient_a.user)
    for item in ("frequency", "typical-quantity", "heavy-episodes"):
        answer(client, "audit-c", item, 1)
    assert submit(client, "audit-c").status_code == 302
    assert submit(client, "audit-c").status_code == 302  # the same form's token again
    assert Assessment.objects.filter(instrument="audit-c").count() == 1
    # a second tab's token finds no open draft: refused, still one
    response = submit(client, "audit-c", token="other-tab")
    assert response.status_code == 400 and "Nothing to send yet" in response.content.decode()
    assert Assessment.objects.filter(instrument="audit-c").count() == 1


def test_the_patient_can_stop_and_resume_where_they_left_off(planned):
    client = verified_login(Client(), planned.patient_a.user)
    for item in ("nervous", "uncontrolled-worry", "excessive-worry"):
        answer(client, "gad7", item, 2)
    # later, on another device
    other = verified_login(Client(), planned.patient_a.user)
    page = text(other.get(reverse("questionnaire", args=["gad7"])).content.decode())
    assert "Question 4 of 7" in page and "3 answered" in page
    assert "Trouble relaxing" in page


def test_changing_an_answer_from_the_review_goes_back_to_the_review(planned):
    client = verified_login(Client(), planned.patient_a.user)
    for item in ("frequency", "typical-quantity", "heavy-episodes"):
        answer(client, "audit-c", item, 0)
    url = reverse("questionnaire", args=["audit-c"])
    response = client.post(url, {"item": "frequency", "answer": "3", "back": "review"})
    assert response["Location"].endswith("?q=4")
    assert Draft.objects.get().answers["frequency"] == 3


@pytest.mark.parametrize("item, value", [("mood", 4), ("mood", -1), ("mood", "2.5"), ("mood", "x"),
                                         ("no-such-item", 1)])
def test_an_answer_out_of_range_is_refused_and_stores_nothing(planned, item, value):
    client = verified_login(Client(), planned.patient_a.user)
    response = answer(client, "phq9", item, value)
    assert response.status_code == 400
    body = text(response.content.decode())
    assert "Choose one of the answers offered" in body or "has no item" in body
    assert not Draft.objects.exists()


def test_an_incomplete_questionnaire_is_not_sent_and_names_what_is_missing(planned):
    client = verified_login(Client(), planned.patient_a.user)
    answer(client, "phq9", "mood", 1)
    response = submit(client, "phq9")
    assert response.status_code == 400
    assert "Some answers are missing: interest, sleep" in response.content.decode()
    assert not Assessment.objects.filter(instrument="phq9").exists()
    assert Draft.objects.get().assessment is None  # the draft is kept


def test_a_questionnaire_outside_the_plan_or_rated_by_the_clinician_is_a_404(planned):
    client = verified_login(Client(), planned.patient_a.user)
    for instrument in ("cows", "diary", "craving-nrs", "nothing"):
        assert client.get(reverse("questionnaire", args=[instrument])).status_code == 404
        assert answer(client, instrument, "x", 1).status_code == 404
    assert not Draft.objects.exists()


def test_another_patients_draft_is_not_shown_or_sent(planned):
    client_a = verified_login(Client(), planned.patient_a.user)
    answer(client_a, "phq9", "interest", 3)
    today = timezone.localdate().isoformat()
    services.save_plan(planned.clinician_b, planned.patient_b,
                       [{"instrument": "phq9", "every_days": 14, "start": today}])
    client_b = verified_login(Client(), planned.patient_b.user)
    page = text(client_b.get(reverse("questionnaire", args=["phq9"])).content.decode())
    assert "0 answered" in page and "Question 1 of 10" in page
    assert submit(client_b, "phq9").status_code == 400
    assert not Assessment.objects.filter(instrument="phq9").exists()
    assert Draft.objects.get().patient == planned.patient_a


def test_a_clinician_cannot_answer_or_submit_as_the_patient(planned):
    clinician = planned.clinician_a
    client = verified_login(Client(), clinician)
    assert client.get(reverse("questionnaire", args=["phq9"])).status_code == 403
    assert answer(client, "phq9", "mood", 1).status_code == 403
    verified_login(Client(), planned.patient_a.user)
    services.save_answers(planned.patient_a.user, planned.patient_a, "gad7",
                          {i.id: 0 for i in kinstruments.get_instrument("gad7").items})
    with pytest.raises(writes.AccessDenied):
        services.submit(clinician, planned.patient_a, "gad7")
    with pytest.raises(writes.AccessDenied):
        services.save_answers(clinician, planned.patient_a, "gad7", {"nervous": 1})
    assert not Assessment.objects.filter(instrument="gad7").exists()


@pytest.mark.parametrize("role", ["researcher", "admin"])
def test_no_other_role_opens_a_questionnaire(planned, role):
    client = verified_login(Client(), getattr(planned, role))
    assert client.get(reverse("questionnaire", args=["phq9"])).status_code == 403


def test_phq9_item_9_from_the_patient_raises_the_urgent_alert_and_shows_help_at_once(planned):
    planned.site_a.crisis_line = "0800 123 456"
    planned.site_a.crisis_line_name = "Site A crisis team"
    planned.site_a.save()
    client = verified_login(Client(), planned.patient_a.user)
    for item in PHQ9:
        response = answer(client, "phq9", item, 1 if item == "self-harm" else 0)
    # at once, on the next screen, before the questionnaire is sent
    unsent = text(client.get(response["Location"]).content.decode())
    assert "Get help now" in unsent and "0800 123 456" in unsent
    assert "once it is saved" in unsent
    assert not Alert.objects.filter(rule="SAF-SUICIDE").exists()  # a draft feeds no rule
    response = submit(client, "phq9")
    page = client.get(response["Location"])
    body = text(page.content.decode())
    assert "Get help now" in body and "thoughts of harming yourself" in body
    assert "0800 123 456" in body and "Site A crisis team" in body
    alert = Alert.objects.get(patient=planned.patient_a, rule="SAF-SUICIDE")
    assert alert.severity == "urgent" and alert.status == "open"
    stored = Assessment.objects.get(instrument="phq9")
    assert stored.flags == ["phq9-item9-positive"] and stored.source == "patient"
    # the same alert a clinician-entered PHQ-9 raises
    assert alert.evidence["item"] == "self-harm"


def test_the_home_page_shows_what_is_due_and_overdue(clinic):
    start = (timezone.localdate() - dt.timedelta(days=3)).isoformat()
    services.save_plan(clinic.clinician_a, clinic.patient_a, [
        {"instrument": "phq9", "every_days": 14, "start": start},
        {"instrument": "diary", "every_days": 1, "start": timezone.localdate().isoformat()}])
    client = verified_login(Client(), clinic.patient_a.user)
    body = client.get(reverse("me")).content.decode()
    section = text(body.split('id="due-title"')[1].split("</section>")[0])
    assert "PHQ-9 overdue since" in section and "Daily diary due today" in section
    assert section.index("PHQ-9") < section.index("Daily diary")  # overdue first
    assert reverse("questionnaire", args=["phq9"]) in body


def test_answers_and_submission_are_audited(planned):
    user = planned.patient_a.user
    services.save_answers(user, planned.patient_a, "asex", {"drive": 2})
    services.save_answers(user, planned.patient_a, "asex", {"arousal": 3, "lubrication-erection": 2,
                                                             "orgasm-ability": 2, "orgasm-satisfaction": 5})
    stored = services.submit(user, planned.patient_a, "asex", token="asex-1")
    actions = list(AuditEntry.objects.filter(model="Draft").order_by("id").values_list("action", "reason"))
    assert actions == [("create", ""), ("correct", "draft answer"), ("correct", "submitted")]
    assert AuditEntry.objects.filter(model="Assessment", object_id=stored.pk, action="create").exists()
    assert stored.total == 14 and stored.flags == ["asex-sexual-dysfunction"]  # an item >= 5
    assert services.submit(user, planned.patient_a, "asex", token="asex-1") == stored


def test_the_time_frame_and_short_labels_are_shown_and_a_sites_licensed_wording_replaces_them(
        planned, tmp_path, monkeypatch):
    client = verified_login(Client(), planned.patient_a.user)
    page = text(client.get(reverse("questionnaire", args=["asex"])).content.decode())
    assert "Think of the past week, including today:" in page and "Sex drive" in page
    assert "least dysfunction" in page and "short labels; your clinic can load the full wording" in page
    (tmp_path / "asex-licensed.toml").write_text(
        'overlay = "asex"\nlicence = "used under licence (test)"\n'
        'prompt = "LICENSED INSTRUCTION"\n'
        '[[items]]\nid = "drive"\ntext = "LICENSED ITEM ONE"\n'
        'anchors = { 1 = "LICENSED ANCHOR ONE" }\n', encoding="utf-8")
    monkeypatch.setenv(kinstruments.SITE_DIR_ENV, str(tmp_path))
    page = text(client.get(reverse("questionnaire", args=["asex"])).content.decode())
    assert "LICENSED INSTRUCTION" in page and "LICENSED ITEM ONE" in page
    assert "LICENSED ANCHOR ONE" in page and "Sex drive" not in page


def test_a_double_tap_that_waited_for_the_first_ones_lock_gets_its_assessment(planned, monkeypatch):
    """The second request of a double tap asks for earlier submissions before the first one
    committed, then waits on the draft's lock; once it has it, the draft is closed and it
    answers with the first one's assessment instead of 'nothing to send'."""
    user, patient = planned.patient_a.user, planned.patient_a
    services.save_answers(user, patient, "audit-c", {"frequency": 1, "typical-quantity": 0,
                                                     "heavy-episodes": 0})
    first = services.submit(user, patient, "audit-c", token="tap")
    real = writes.replayed
    calls = []

    def late(*args, **kwargs):  # the first look happened before the first tap committed
        calls.append(1)
        return None if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(writes, "replayed", late)
    assert services.submit(user, patient, "audit-c", token="tap") == first
    assert Assessment.objects.filter(instrument="audit-c").count() == 1


def test_two_first_answers_racing_to_create_the_draft_both_keep_their_answer(planned, monkeypatch):
    from django.db import IntegrityError

    user, patient = planned.patient_a.user, planned.patient_a
    services.save_answers(user, patient, "gad7", {"nervous": 1})  # the other request won
    real = services._store_answers
    raised = []

    def racing(*args, **kwargs):
        if not raised:
            raised.append(1)
            raise IntegrityError("one_open_draft_per_instrument")
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "_store_answers", racing)
    services.save_answers(user, patient, "gad7", {"afraid": 2})
    assert Draft.objects.get().answers == {"nervous": 1, "afraid": 2}
