"""Another care team's object ids, requested by every role, give 404 or 403 and never data.

Every route with an id in it is taken from the URL resolver, filled with ``patient_b``'s ids
(care team B), and fetched (GET and POST) as team A's patient, team A's clinician, the
researcher and the administrator, by every authentication path: a verified session, an API
token, and the session with a ``Bearer`` or a junk ``Authorization`` header beside it; and
every API/FHIR route with one's *own* patient's ids by the same user's dead token (expired,
revoked, issued before a password change).
(The same routes without the second factor: ``test_second_factor_bypass.py``.)
"""

from __future__ import annotations

import pytest
from django.test import Client

from ..conftest import AUTH_PATHS, STALE_TOKENS, client_as, stale_token
from .conftest import ID_PARAMS, fill, params_of, url_patterns

ROLES = ["patient_a", "clinician_a", "researcher", "admin"]
ROUTES = [r for r in url_patterns() if params_of(r) & ID_PARAMS]


def test_the_resolver_finds_the_routes_with_ids():
    assert "patients/<int:patient_id>/" in ROUTES
    assert any(r.startswith("fhir/") for r in ROUTES) and any(r.startswith("api/") for r in ROUTES)


def _values(clinic, rec, kind):
    return {"patient_id": clinic.patient_b.pk, "rid": clinic.patient_b.pk, "rtype": "Patient",
            "record_id": rec[kind].pk, "kind": kind, "alert_id": rec["alert"].pk,
            "medication_id": rec["medication"].pk, "episode_id": rec["episode"].pk,
            "thread_id": rec["thread"].pk, "panel_id": rec["panel"].pk, "plan_id": rec["plan"].pk,
            "device_id": rec["device"].pk, "signature_id": rec["signature"].pk,
            "document_id": rec["document"].pk, "instrument_id": "cows", "page_id": "prolactin",
            "day": "2026-01-01", "vid": "1"}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", ROUTES)
def test_other_teams_ids_give_no_data(route, role, clinic, team_b_records):
    from speciosa.clinic.models import AuditEntry, Note

    user = getattr(clinic, role)
    user = getattr(user, "user", user)  # a Patient's login is its user
    secrets = [clinic.patient_b.family_name, clinic.patient_b.identifier, "team B only"]
    api = route.startswith(("api/", "fhir/"))
    for path in AUTH_PATHS if api else ["session", "token"]:  # pages ignore the header
        client = client_as(user, path)
        for kind in ("note", "dose"):
            url = fill(route, _values(clinic, team_b_records, kind))
            assert url is not None, f"no value for a parameter of {route}"
            notes, views = Note.objects.count(), AuditEntry.objects.filter(patient=clinic.patient_b).count()
            for method in ("get", "post"):
                response = getattr(client, method)(url)
                where = (path, method, url, role, response.status_code)
                if path == "token" and response.status_code == 302:
                    assert response.url.startswith("/login/"), where  # a token is no web login
                else:
                    assert response.status_code in (403, 404, 405), where
                body = response.content.decode(errors="replace")
                for secret in secrets:
                    assert secret not in body, where
            assert Note.objects.count() == notes
            assert AuditEntry.objects.filter(patient=clinic.patient_b).count() == views  # nothing opened


API_ROUTES = [r for r in ROUTES if r.startswith(("api/", "fhir/"))]


@pytest.mark.django_db
@pytest.mark.parametrize("route", API_ROUTES)
def test_a_dead_token_opens_none_of_ones_own_records(route, clinic):
    """Team A's clinician's own patient, by every API and FHIR route with an id: their token
    works, and the same user's expired, revoked or pre-password-change token is a 401 with
    no data and nothing audited as opened."""
    import datetime as dt

    from django.utils import timezone

    from speciosa.clinic.models import (
        AuditEntry,
        DiaryDay,
        Dose,
        Medication,
        Note,
        TreatmentEpisode,
    )

    p = clinic.patient_a
    episode = TreatmentEpisode.objects.create(patient=p, entered_by=clinic.clinician_a,
                                              source="clinician", drug="methadone",
                                              formulation="oral-liquid", dose_mg=60,
                                              dispensing_clinic="OTP", start=timezone.localdate())
    medication = Medication.objects.create(patient=p, entered_by=p.user, source="patient",
                                           name="team A only", start=timezone.localdate())
    from speciosa.clinic.models import TaperPlan

    plan = TaperPlan.objects.create(patient=p, entered_by=clinic.clinician_a, source="clinician",
                                    kind="kratom", reason="team A only",
                                    start=timezone.localdate(), end=timezone.localdate(),
                                    steps=[{"start": timezone.localdate().isoformat(),
                                            "end": timezone.localdate().isoformat(),
                                            "amount": "2", "unit": "g", "doses_per_day": 1}])
    note = Note.objects.create(patient=p, entered_by=clinic.clinician_a, source="clinician",
                               text="team A only")
    dose = Dose.objects.create(patient=p, entered_by=p.user, source="patient", amount=2, unit="g",
                               taken_at=timezone.now() - dt.timedelta(hours=1),
                               diary=DiaryDay.objects.create(patient=p, day=timezone.localdate()))
    values = {"patient_id": p.pk, "rid": p.pk, "rtype": "Patient", "kind": "note",
              "record_id": note.pk, "alert_id": 0, "instrument_id": "cows", "page_id": "prolactin",
              "day": "2026-01-01", "medication_id": medication.pk, "episode_id": episode.pk,
              "panel_id": episode.pk, "plan_id": plan.pk}
    from speciosa.interop.export import Exporter

    values["vid"] = next(Exporter().patients(p.pk))["meta"]["versionId"]  # the Patient's version
    # the patient's own routes (/api/v1/me/...) by the patient's token, the others by the clinician's
    owner = p.user if route.startswith("api/v1/me/") else clinic.clinician_a
    if owner is p.user:
        values.update(kind="dose", record_id=dose.pk)
    url = fill(route, values)
    assert url is not None, route
    alive = client_as(owner, "token").get(url).status_code
    assert alive in (200, 404, 405), (url, alive)  # a live token is let in (404: not this kind)
    secrets = [p.family_name, p.identifier, "team A only"]
    for how in STALE_TOKENS:
        client = Client(HTTP_HOST="localhost",
                        HTTP_AUTHORIZATION=f"Token {stale_token(owner, how)}")
        opened = AuditEntry.objects.filter(patient=p).count()
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code == 401, (how, method, url, response.status_code)
            assert not any(s in response.content.decode(errors="replace") for s in secrets)
        assert AuditEntry.objects.filter(patient=p).count() == opened
        assert Note.objects.count() == 1 and Dose.objects.get(pk=dose.pk).amount == 2
        assert Medication.objects.count() == 1 and Medication.objects.get().confirmed_at is None
        assert TreatmentEpisode.objects.get().pk == episode.pk  # nothing changed or added
        assert TaperPlan.objects.get().pk == plan.pk
