"""FHIR Consent reflects signatures, revocations and the 42 CFR Part 2 provision (issue 16)."""

from __future__ import annotations

import datetime as dt

import pytest

from speciosa.clinic import consents, integrity
from speciosa.clinic.models import Patient
from speciosa.interop.export import Exporter

from .r4 import parse_r4

pytestmark = pytest.mark.django_db


def _resources(patient):
    return {r["id"]: r for r in Exporter(Patient.objects.filter(pk=patient.pk)).consents()}


def test_a_part2_consent_names_recipient_purpose_and_end_and_turns_inactive_when_revoked(clinic):
    p = clinic.patient_a
    today = integrity.site_today(p.site)
    doc = consents.latest_document(p.site, "part2")
    sig = consents.sign(p.user, p, doc, {
        "typed_name": p.name, "signed_on": today, "recipient": "Riverside Primary Care",
        "purpose": "coordinate my care", "expires_on": today + dt.timedelta(days=90)})
    (res,) = _resources(p).values()
    parse_r4(res)
    assert res["status"] == "active"
    assert res["scope"]["coding"][0]["code"] == "patient-privacy"
    prov = res["provision"]
    assert prov["type"] == "permit"
    assert prov["actor"][0]["role"]["coding"][0]["code"] == "IRCP"
    assert prov["actor"][0]["reference"]["display"] == "Riverside Primary Care"
    assert prov["purpose"] == [{"display": "coordinate my care"}]
    assert prov["period"] == {"start": today.isoformat(),
                              "end": (today + dt.timedelta(days=90)).isoformat()}
    assert res["sourceAttachment"]["contentType"] == "application/pdf"
    assert "version 1" in res["sourceAttachment"]["title"]

    consents.revoke(p.user, sig)
    out = _resources(p)
    assert len(out) == 2
    signed, revoked = (out[k] for k in sorted(out, key=int))
    for r in (signed, revoked):
        parse_r4(r)
    assert signed["status"] == "inactive"  # replaced by the revocation
    assert revoked["status"] == "inactive" and revoked["provision"]["type"] == "deny"
    assert revoked["provision"]["actor"][0]["reference"]["display"] == "Riverside Primary Care"


def test_a_refusal_is_rejected_and_a_care_consent_is_treatment(clinic):
    from speciosa.clinic import services

    p = clinic.patient_a
    services.record_consent(clinic.clinician_a, p, "research", False)
    services.record_consent(clinic.clinician_a, p, "care", True)
    by_scope = {r["scope"]["coding"][0]["code"]: r for r in _resources(p).values()}
    assert by_scope["research"]["status"] == "rejected"
    assert by_scope["treatment"]["status"] == "active"
    assert "sourceAttachment" not in by_scope["research"]
    author = [a for a in by_scope["treatment"]["provision"]["actor"]
              if a["role"]["coding"][0]["code"] == "AUT"]
    assert author and author[0]["reference"]["reference"].startswith("Practitioner/")
