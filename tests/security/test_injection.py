"""Cross-site scripting is rendered inert; SQL-like input is stored as text; CSRF is required.

The hostile strings go in through every free-text field a person types into (note, dose
product, side-effect "other", substance detail, correction reason, alert resolution note, and
a patient's own name), then every page that shows them is rendered.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone
from tests.conftest import form_token

from .conftest import fill, url_patterns

XSS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>']
SQL = "'); DROP TABLE clinic_note;--"


def _hostile_record(clinic, payload: str) -> dict:
    from speciosa.clinic import alerts, services
    from speciosa.clinic.models import Alert

    p = clinic.patient_a
    p.family_name = f"Quinn{payload}"
    p.save()
    entry = services.DiaryInput(
        day=timezone.localdate(), craving=3, side_effects=[],
        side_effect_other=f"itch {payload}", substances=["alcohol"], substance_detail=f"beer {payload}",
        doses=[{"taken_at": timezone.now() - dt.timedelta(hours=2), "amount": "3", "unit": "g",
                "product": f"Maeng {payload}"}])
    services.record_diary(p.user, p, entry, token="x1")
    note = services.record_note(clinic.clinician_a, p, f"note {payload}", token="x2")
    note = services.correct_record(clinic.clinician_a, note, {"text": f"fixed {payload}"}, f"why {payload}",
                                   token="x3")
    alert = Alert.objects.create(patient=p, rule="r", topic="prolactin", severity="urgent",
                                 message="m", first_seen_at=timezone.now())
    resolved = Alert.objects.create(patient=p, rule="r2", topic="liver", severity="warning",
                                    message="m2", first_seen_at=timezone.now())
    alerts.resolve(clinic.clinician_a, resolved, f"done {payload}")
    return {"note": note, "alert": alert}


@pytest.mark.django_db
@pytest.mark.parametrize("payload", XSS)
def test_hostile_text_in_every_free_text_field_is_escaped_on_every_page(payload, clinic, login):
    rec = _hostile_record(clinic, payload)
    p = clinic.patient_a
    clinician_pages = [f"/patients/?q={p.identifier}", f"/patients/{p.pk}/", f"/patients/{p.pk}/?limit=2000",
                       f"/patients/{p.pk}/note/{rec['note'].pk}/history/", "/worklist/",
                       f"/alerts/{rec['alert'].pk}/resolve/", f"/patients/{p.pk}/decisions/",
                       f"/patients/{p.pk}/report.pdf", f"/patients/{p.pk}/notes/new/"]
    client = login(clinic.clinician_a)
    seen_escaped = 0
    for url in clinician_pages:
        body = client.get(url).content.decode()
        assert payload not in body, url
        seen_escaped += body.count("&lt;script&gt;") + body.count("&quot;&gt;&lt;img")
    client = login(p.user)
    for url in ["/me/", f"/me/diary/{timezone.localdate().isoformat()}/", "/me/diary/"]:
        body = client.get(url).content.decode()
        assert payload not in body, url
        seen_escaped += body.count("&lt;script&gt;") + body.count("&quot;&gt;&lt;img")
    assert seen_escaped >= 5  # the text is shown, as text


@pytest.mark.django_db
def test_sql_like_input_is_stored_verbatim_and_the_tables_stay(clinic, login):
    from speciosa.clinic.models import Note, Patient

    client = login(clinic.clinician_a)
    response = client.post(f"/patients/{clinic.patient_a.pk}/notes/new/", {"token": form_token("s1"), "text": SQL})
    assert response.status_code == 302
    assert Note.objects.get().text == SQL
    assert client.get("/patients/", {"q": SQL}).status_code == 200
    assert client.get("/patients/", {"q": "' OR 1=1 --"}).content.decode().count("Reyes") == 0
    assert Patient.objects.count() == 2 and Note.objects.count() == 1


# --------------------------------------------------------------------------- CSRF

# no session: a program exchanges a password for a token; the OAuth endpoints a program calls
# with its own client authentication or bearer token (the session is never read there)
CSRF_EXEMPT = {"/api/v1/auth/token/", "/oauth/token/", "/oauth/revoke_token/",
               "/oauth/introspect/", "/oauth/userinfo/"}


def _own_values(clinic, rec):
    return {"patient_id": clinic.patient_a.pk, "rid": clinic.patient_a.pk, "rtype": "Patient",
            "record_id": rec["note"].pk, "kind": "note", "alert_id": rec["alert"].pk,
            "instrument_id": "cows", "page_id": "prolactin", "day": timezone.localdate().isoformat(),
            "medication_id": rec["medication"].pk, "episode_id": rec["episode"].pk,
            "thread_id": rec["thread"].pk, "panel_id": rec["episode"].pk,
            "plan_id": rec["plan"].pk, "device_id": rec["device"].pk,
            "signature_id": rec["signature"].pk, "document_id": rec["document"].pk}


def _counts() -> dict:
    from django.apps import apps

    return {m._meta.label: m.objects.count() for app in ("clinic", "education", "interop",
                                                           "messaging", "reminders")
            for m in apps.get_app_config(app).get_models()}


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["clinician_a", "patient_a"])
def test_every_state_changing_request_without_the_csrf_token_is_refused(who, clinic, verified_login_of):
    from speciosa.clinic.models import Alert, Medication, Note, TreatmentEpisode

    note = Note.objects.create(patient=clinic.patient_a, entered_by=clinic.clinician_a, source="clinician",
                               text="n")
    alert = Alert.objects.create(patient=clinic.patient_a, rule="r", topic="t", severity="urgent",
                                 message="m", first_seen_at=timezone.now())
    medication = Medication.objects.create(patient=clinic.patient_a, entered_by=clinic.clinician_a,
                                           source="patient", name="melatonin",
                                           start=timezone.localdate())
    episode = TreatmentEpisode.objects.create(patient=clinic.patient_a, entered_by=clinic.clinician_a,
                                              source="clinician", drug="naltrexone",
                                              formulation="oral-tablet", start=timezone.localdate())
    from speciosa.messaging.models import Thread

    thread = Thread.objects.create(patient=clinic.patient_a, subject="s",
                                   started_by=clinic.clinician_a)
    from speciosa.clinic.models import TaperPlan

    plan = TaperPlan.objects.create(patient=clinic.patient_a, entered_by=clinic.clinician_a,
                                    source="clinician", kind="kratom", reason="r",
                                    start=timezone.localdate(), end=timezone.localdate(),
                                    steps=[{"start": timezone.localdate().isoformat(),
                                            "end": timezone.localdate().isoformat(),
                                            "amount": "2", "unit": "g", "doses_per_day": 1}])
    from .conftest import push_device

    device = push_device(clinic.patient_a)

    from speciosa.clinic import consents, integrity

    p = clinic.patient_a
    document = consents.latest_document(p.site, "research")
    signature = consents.sign(p.user, p, document, {"typed_name": p.name,
                                                    "signed_on": integrity.site_today(p.site)})
    user = getattr(clinic, who)
    client = verified_login_of(Client(enforce_csrf_checks=True), getattr(user, "user", user))
    before = _counts()
    checked = 0
    for route in url_patterns():
        url = fill(route, _own_values(clinic, {"note": note, "alert": alert,
                                               "medication": medication, "episode": episode,
                                               "thread": thread, "plan": plan,
                                               "device": device, "signature": signature,
                                               "document": document}))
        if url is None or url in CSRF_EXEMPT:
            continue
        api = url.startswith(("/api/", "/fhir/"))
        for method in ("post", "put", "patch", "delete"):
            data = {"text": "x", "token": form_token("t"), "note": "x"}
            if api:
                response = getattr(client, method)(url, json.dumps(data), content_type="application/json",
                                                   HTTP_HOST="localhost", HTTP_IDEMPOTENCY_KEY="k")
            else:
                response = getattr(client, method)(url, data if method == "post" else None,
                                                   HTTP_HOST="localhost")
            assert response.status_code in (403, 404, 405), (method, url, response.status_code)
            checked += 1
    assert checked > 100
    assert _counts() == before
    assert Alert.objects.get(pk=alert.pk).status == "open"
