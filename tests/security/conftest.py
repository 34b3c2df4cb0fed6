"""Security-suite fixtures: every URL pattern of the site, with ids filled in from a record."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

ID_PARAMS = {"patient_id", "record_id", "alert_id", "rid", "medication_id", "episode_id",
             "thread_id", "panel_id", "plan_id", "device_id", "signature_id", "document_id"}


def url_patterns() -> list[str]:
    """Every route of the site as a template like ``patients/<int:patient_id>/`` (from the
    resolver, so a new URL is covered without editing the tests)."""

    def walk(patterns, prefix: str):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, route)
            elif isinstance(p, URLPattern):
                yield route

    routes = []
    for route in walk(get_resolver().url_patterns, ""):
        route = route.lstrip("^").rstrip("$").replace("\\Z", "")
        if route.startswith("admin/") or "(?P" in route or route.startswith("v1/"):
            continue  # the admin is Django's; regex catch-alls have no ids
        routes.append(route)
    return sorted(set(routes))


def fill(route: str, values: dict[str, object]) -> str | None:
    """``route`` with each ``<conv:name>`` replaced by ``values[name]``; None when a name is missing."""
    missing = []

    def sub(m):
        name = m.group(2)
        if name not in values:
            missing.append(name)
            return ""
        return str(values[name])

    url = "/" + re.sub(r"<(?:(\w+):)?(\w+)>", sub, route)
    return None if missing else url


def params_of(route: str) -> set[str]:
    return {m.group(2) for m in re.finditer(r"<(?:(\w+):)?(\w+)>", route)}


def push_device(patient):
    """A Web Push subscription of ``patient`` (speciosa.reminders)."""
    from speciosa.reminders.models import PushDevice

    return PushDevice.objects.create(patient=patient, endpoint=f"https://push.example/{patient.pk}",
                                     p256dh="BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQ",
                                     auth="tBHItJI5svbpez7KI4CCXg", label="team B only")


@pytest.fixture
def team_b_records(clinic):
    """A note, a dose, an alert, a medication, a treatment episode and a diary day of ``patient_b`` (care team B)."""
    from speciosa.clinic.models import Alert, DiaryDay, Dose, Medication, Note, TreatmentEpisode

    p = clinic.patient_b
    now = timezone.now() - dt.timedelta(hours=1)
    note = Note.objects.create(patient=p, entered_by=clinic.clinician_b, source="clinician", text="team B only")
    diary = DiaryDay.objects.create(patient=p, day=timezone.localdate())
    dose = Dose.objects.create(patient=p, entered_by=p.user, source="patient", taken_at=now, amount=2,
                               unit="g", diary=diary)
    alert = Alert.objects.create(patient=p, rule="x", topic="prolactin", severity="urgent", message="m",
                                 first_seen_at=now)
    medication = Medication.objects.create(patient=p, entered_by=p.user, source="patient",
                                           name="team B only", start=timezone.localdate())
    episode = TreatmentEpisode.objects.create(patient=p, entered_by=clinic.clinician_b,
                                              source="clinician", drug="buprenorphine",
                                              formulation="sublingual", dose_mg=16,
                                              start=timezone.localdate(),
                                              notes="team B only")
    from speciosa.clinic.models import UrinePanel

    panel = UrinePanel.objects.create(patient=p, entered_by=clinic.clinician_b, source="clinician",
                                      collected_at=now, panels=["opioids"], method="screen",
                                      note="team B only")
    from speciosa.clinic.models import TaperPlan

    plan = TaperPlan.objects.create(patient=p, entered_by=clinic.clinician_b, source="clinician",
                                    kind="kratom", reason="team B only", start=timezone.localdate(),
                                    end=timezone.localdate(), steps=[{
                                        "start": timezone.localdate().isoformat(),
                                        "end": timezone.localdate().isoformat(), "amount": "2",
                                        "unit": "g", "doses_per_day": 1}])
    from speciosa.messaging.models import Message, Thread

    thread = Thread.objects.create(patient=p, subject="team B only", started_by=p.user)
    Message.objects.create(thread=thread, author=p.user, from_patient=True, body="team B only")
    from speciosa.clinic import consents, integrity

    document = consents.latest_document(p.site, "part2")
    signature = consents.sign(p.user, p, document, {
        "typed_name": p.name, "signed_on": integrity.site_today(p.site),
        "recipient": "team B only", "purpose": "team B only",
        "expires_on": integrity.site_today(p.site) + dt.timedelta(days=30)})
    return {"note": note, "dose": dose, "alert": alert, "medication": medication,
            "episode": episode, "thread": thread, "panel": panel, "plan": plan,
            "device": push_device(p), "signature": signature, "document": document}
