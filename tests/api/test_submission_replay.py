"""Issue 11, item 2: a submission token (a web form's token, an API ``Idempotency-Key``) never
reads a record the caller could not read directly.

The attack: a clinician posted a web form whose client-chosen token equalled the API's
derived key for a note endpoint; the web form stored a lab under that token; replaying the
API call then answered with ``Note.objects.get(pk=<the lab's id>)``: another site's note.
Now every submission is bound to its user, namespace, endpoint, kind, record type and
patient; web tokens are signed by the server; a mismatch is a 409 and returns nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import random

import pytest
from django.core import signing
from django.utils import timezone
from tests.conftest import form_token

from speciosa.clinic import access, services, writes
from speciosa.clinic.models import Assessment, DiaryDay, LabResult, Note, Patient, Submission
from speciosa.web.forms import TOKEN_SIGNER, new_token


def _old_api_token(user, path: str, key: str) -> str:
    """The API's derived token as the old code computed (and stored) it."""
    raw = f"{user.pk}\nPOST\n{path}\n{key}".encode()
    return "api:" + hashlib.sha256(raw).hexdigest()[:60]


def _lab_body(**over) -> dict:
    return {"lab": "prolactin", "value": 12, "unit": "ng/mL",
            "collected_at": (timezone.now() - dt.timedelta(hours=1)).isoformat(), **over}


def _web_lab_post(token: str) -> dict:
    local = timezone.localtime(timezone.now() - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    return {"token": token, "lab": "prolactin", "collected_at": local, "value": "12", "unit": "ng/mL"}


@pytest.mark.django_db
def test_the_issue_attack_a_web_token_equal_to_an_api_key_reads_no_other_sites_note(clinic, api, login):
    attacker, own, other = clinic.clinician_a, clinic.patient_a, clinic.patient_b
    note_path = f"/api/v1/patients/{own.pk}/notes/"
    planted = _old_api_token(attacker, note_path, "k-attack")
    # 1. the web form with the API's derived key as its token (the old code stored the lab under it)
    response = login(attacker).post(f"/patients/{own.pk}/labs/new/", _web_lab_post(planted))
    assert response.status_code == 200  # the form is shown again with the reason, nothing stored
    assert "not made by this server" in response.content.decode()
    assert LabResult.objects.count() == 0 and Submission.objects.count() == 0
    # 2. a Hillcrest note whose id is the one the lab would have had
    secret = Note.objects.create(pk=1, patient=other, entered_by=clinic.clinician_b, source="clinician",
                                 text="Hillcrest secret")
    # 3. the API replay: a new note of the attacker's own patient, never the secret
    replay = api(attacker).post(note_path, {"text": "mine"}, format="json",
                                headers={"Idempotency-Key": "k-attack"})
    assert replay.status_code == 201
    assert replay.json()["text"] == "mine" and replay.json()["id"] != secret.pk
    assert "Hillcrest secret" not in replay.content.decode()


@pytest.mark.django_db
def test_a_replay_bound_to_another_kind_of_record_is_refused_with_409_and_shows_nothing(clinic, api):
    """Even if a row under the API's token pointed at another kind's id (the old hole's
    result, planted here directly), the replay is a 409 without the stored object."""
    attacker = clinic.clinician_a
    lab = LabResult.objects.create(patient=clinic.patient_a, entered_by=attacker, source="clinician",
                                   lab="prolactin", collected_at=timezone.now(), value=1, unit="ng/mL")
    secret = Note.objects.create(pk=lab.pk, patient=clinic.patient_b, entered_by=clinic.clinician_b,
                                 source="clinician", text="Hillcrest secret")
    path = f"/api/v1/patients/{clinic.patient_a.pk}/notes/"
    key = writes.SubmissionKey("api", _old_api_token(attacker, path, "k1")[4:], path)
    Submission.objects.create(token=key.stored, user=attacker, kind="lab", namespace="api", endpoint=path,
                              model="clinic.LabResult", patient=clinic.patient_a, object_id=lab.pk)
    replay = api(attacker).post(path, {"text": "mine"}, format="json", headers={"Idempotency-Key": "k1"})
    assert replay.status_code == 409
    assert replay.json()["code"] == "key_reused"
    assert "Hillcrest secret" not in replay.content.decode() and str(secret.pk) not in replay.json()
    assert Note.objects.count() == 1  # nothing stored either


@pytest.mark.django_db
def test_a_key_from_before_the_bindings_cannot_be_replayed(clinic, api):
    """A submission stored by the old code (no namespace, endpoint or patient) is a 409."""
    user, path = clinic.clinician_a, f"/api/v1/patients/{clinic.patient_a.pk}/notes/"
    note = Note.objects.create(patient=clinic.patient_b, entered_by=clinic.clinician_b, source="clinician",
                               text="Hillcrest secret")
    Submission.objects.create(token=_old_api_token(user, path, "old"), user=user, kind="note",
                              object_id=note.pk)
    replay = api(user).post(path, {"text": "x"}, format="json", headers={"Idempotency-Key": "old"})
    assert replay.status_code == 409 and "Hillcrest" not in replay.content.decode()


@pytest.mark.parametrize("header", ["web:abc", "api:" + "0" * 60, "APP:x", "form-token"])
@pytest.mark.django_db
def test_a_key_in_another_namespace_is_refused_by_the_api(clinic, api, header):
    if header == "form-token":
        header = new_token()  # a web form's signed token sent as an Idempotency-Key
    response = api(clinic.clinician_a).post(f"/api/v1/patients/{clinic.patient_a.pk}/notes/", {"text": "x"},
                                            format="json", headers={"Idempotency-Key": header})
    assert response.status_code == 400
    assert "another kind of submission" in response.json()["errors"]["Idempotency-Key"][0]
    assert Note.objects.count() == 0


@pytest.mark.parametrize("token", ["n1", "api:" + "0" * 60,
                                   signing.Signer(salt="another.purpose").sign("n1"),
                                   form_token("n1") + "x"])
@pytest.mark.django_db
def test_a_web_form_refuses_a_token_the_server_did_not_sign(clinic, login, token):
    response = login(clinic.clinician_a).post(f"/patients/{clinic.patient_a.pk}/notes/new/",
                                              {"token": token, "text": "Seen today."})
    assert response.status_code == 200
    assert "Reload the page and submit it again" in response.content.decode()
    assert Note.objects.count() == 0 and Submission.objects.count() == 0


@pytest.mark.django_db
def test_the_web_form_token_is_made_by_the_server_and_stored_in_the_web_namespace(clinic, login):
    client = login(clinic.clinician_a)
    page = client.get(f"/patients/{clinic.patient_a.pk}/notes/new/").content.decode()
    token = page.split('name="token" value="')[1].split('"')[0]
    nonce = TOKEN_SIGNER.unsign(token)
    assert client.post(f"/patients/{clinic.patient_a.pk}/notes/new/",
                       {"token": token, "text": "Seen."}).status_code == 302
    row = Submission.objects.get()
    assert (row.token, row.namespace, row.endpoint, row.kind, row.model, row.patient_id) == (
        f"web:{nonce}", "web", f"/patients/{clinic.patient_a.pk}/notes/new/", "note", "clinic.Note",
        clinic.patient_a.pk)


@pytest.mark.django_db
def test_the_same_web_token_on_another_form_is_refused_not_answered(clinic, login):
    """A user's own token replayed on another form (another endpoint, kind and patient)."""
    clinic.team_a.members.add(clinic.clinician_b)
    client = login(clinic.clinician_a)
    token = form_token("once")
    assert client.post(f"/patients/{clinic.patient_a.pk}/notes/new/",
                       {"token": token, "text": "first"}).status_code == 302
    response = client.post(f"/patients/{clinic.patient_a.pk}/labs/new/", _web_lab_post(token))
    assert response.status_code == 200
    assert "already used for a different request" in response.content.decode()
    assert LabResult.objects.count() == 0 and Note.objects.count() == 1


@pytest.mark.django_db
def test_replayed_keys_across_users_are_separate_submissions(clinic, api):
    headers = {"Idempotency-Key": "same-key"}
    a = api(clinic.clinician_a).post(f"/api/v1/patients/{clinic.patient_a.pk}/notes/", {"text": "A's"},
                                     format="json", headers=headers)
    b = api(clinic.clinician_b).post(f"/api/v1/patients/{clinic.patient_b.pk}/notes/", {"text": "B's"},
                                     format="json", headers=headers)
    assert a.status_code == b.status_code == 201 and b.json()["text"] == "B's"
    # B on A's patient with A's key: a 404 (not B's patient), not A's note
    c = api(clinic.clinician_b).post(f"/api/v1/patients/{clinic.patient_a.pk}/notes/", {"text": "x"},
                                     format="json", headers=headers)
    assert c.status_code == 404 and "A's" not in c.content.decode()
    # the patients' diaries with the same key: two diaries, each the patient's own
    for patient in (clinic.patient_a, clinic.patient_b):
        r = api(patient.user).post("/api/v1/me/diary/", {"craving": 3}, format="json", headers=headers)
        assert r.status_code == 201
    assert set(DiaryDay.objects.values_list("patient_id", flat=True)) == {clinic.patient_a.pk,
                                                                          clinic.patient_b.pk}
    assert Note.objects.count() == 2


@pytest.mark.django_db
def test_the_kernel_checks_every_binding_on_replay(clinic):
    user, patient = clinic.clinician_a, clinic.patient_a
    key = writes.SubmissionKey("api", "v", "/p/")
    note = services.record_note(user, patient, "first", token=key)
    assert services.record_note(user, patient, "first", token=key) == note  # a plain retry
    other_endpoint = writes.SubmissionKey("api", "v", "/q/")
    with pytest.raises(writes.SubmissionConflict, match="different endpoint"):
        writes.once(user, other_endpoint, "note", lambda: None, model=Note, patient=patient)
    with pytest.raises(writes.SubmissionConflict, match="different kind, record type"):
        writes.once(user, key, "lab", lambda: None, model=LabResult, patient=patient)
    with pytest.raises(writes.SubmissionConflict, match="different patient"):
        writes.once(user, key, "note", lambda: None, model=Note, patient=clinic.patient_b)
    with pytest.raises(writes.SubmissionConflict, match="different record type"):
        writes.replayed(user, key, model=Assessment, kind="note")
    # the same value in another namespace is another submission
    web = services.record_note(user, patient, "second", token=writes.SubmissionKey("web", "v", "/p/"))
    assert web != note and Note.objects.count() == 2


# --------------------------------------------------------------------------- the property

def _bodies(clinic):
    from speciosa.knowledge import instruments

    gad7 = {i.id: 0 for i in instruments.get_instrument("gad7").items}
    return {
        "note": (Note, lambda p: f"/api/v1/patients/{p.pk}/notes/", {"text": "new"}),
        "lab": (LabResult, lambda p: f"/api/v1/patients/{p.pk}/labs/", _lab_body()),
        "assessment": (Assessment, lambda p: f"/api/v1/patients/{p.pk}/assessments/",
                       {"instrument": "gad7", "items": gad7}),
        "diary": (DiaryDay, lambda p: "/api/v1/me/diary/", {"craving": 2}),
    }


def _readable(user, obj) -> bool:
    """Whether ``user`` could read ``obj`` directly (its patient is one they may see)."""
    return access.can_view_patient(user, obj.patient)


@pytest.mark.django_db
def test_no_replay_ever_returns_an_object_the_caller_could_not_read(clinic, api):
    """For every record kind and every role: plant, for each caller and endpoint, submission
    rows under the exact token the API derives, pointing at records of every kind and
    patient with stored kind/type/patient combinations (the genuine one, and a fixed random
    sample of 4 of the 32 others); then replay. A 200 must be a record of the endpoint's
    type and patient that the caller may read; nothing else may show another's text."""
    bodies = _bodies(clinic)
    patients = [clinic.patient_a, clinic.patient_b]
    objects = []
    for p, clinician in ((clinic.patient_a, clinic.clinician_a), (clinic.patient_b, clinic.clinician_b)):
        objects.append(services.record_note(clinician, p, f"secret of {p.pk}"))
        objects.append(services.record_lab(clinician, p, {"lab": "prolactin", "value": 9, "unit": "ng/mL",
                                                          "collected_at": timezone.now()}))
        objects.append(services.record_assessment(clinician, p, "gad7", bodies["assessment"][2]["items"]))
        objects.append(services.record_diary(p.user, p, services.DiaryInput(day=timezone.localdate(),
                                                                            doses=[], craving=3)))
    users = [clinic.clinician_a, clinic.clinician_b, clinic.patient_a.user, clinic.patient_b.user,
             clinic.researcher, clinic.admin]
    seen_statuses = set()
    replays_ok = 0
    counter = itertools.count()
    rng = random.Random(11)  # a fixed sample of the hostile combinations, the same every run
    for user, (kind, (model, url, body)), patient in itertools.product(users, bodies.items(), patients):
        path = url(patient)
        own = Patient.objects.filter(user=user).first() if kind == "diary" else patient
        genuine = [(o, kind, o.patient) for o in objects if type(o) is model and o.patient == own]
        combos = list(itertools.product(objects, (kind, "lab" if kind == "note" else "note"), patients))
        for obj, stored_kind, stored_patient in genuine + rng.sample(combos, 4):
            key = f"k{next(counter)}"
            token = _old_api_token(user, path, key)
            Submission.objects.create(
                token=token, user=user, kind=stored_kind, namespace="api", endpoint=path,
                model=type(obj)._meta.label, patient=stored_patient, object_id=obj.pk)
            response = api(user).post(path, body, format="json", headers={"Idempotency-Key": key})
            seen_statuses.add(response.status_code)
            if response.status_code == 200:
                got = model.objects.get(pk=response.json()["id"])
                assert got == obj and _readable(user, got), (user, kind, obj)
                assert type(got) is model and stored_kind == kind and got.patient == stored_patient
                replays_ok += 1
            else:
                assert response.status_code in (201, 403, 404, 409), response.content
                text = response.content.decode()
                assert "secret of" not in text
    # every refusal path was exercised, and a genuine replay of one's own record still works
    assert {200, 403, 404, 409} <= seen_statuses
    assert replays_ok > 0
