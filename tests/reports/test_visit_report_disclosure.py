"""A visit report sent out is a disclosure (issue 16): it needs the patient's 42 CFR Part 2
consent in force for the recipient, is audited with recipient and purpose, and carries the
notice; without a recipient it is the care team's own use."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from pypdf import PdfReader

from speciosa.clinic import consents, integrity
from speciosa.clinic.models import AuditEntry

pytestmark = pytest.mark.django_db


def _url(patient, **q):
    from urllib.parse import urlencode

    return f"/patients/{patient.pk}/report.pdf?" + urlencode({"days": "30", **q})


def _text(response) -> str:
    reader = PdfReader(io.BytesIO(response.content))
    return " ".join(" ".join(p.extract_text() for p in reader.pages).split())


def _part2(patient, recipient="Riverside Primary Care", days=30):
    today = integrity.site_today(patient.site)
    return consents.sign(patient.user, patient, consents.latest_document(patient.site, "part2"), {
        "typed_name": patient.name, "signed_on": today, "recipient": recipient,
        "purpose": "coordinate my care", "expires_on": today + dt.timedelta(days=days)})


def test_a_report_sent_out_without_a_consent_is_refused_and_nothing_is_audited(clinic, login):
    client = login(clinic.clinician_a)
    p = clinic.patient_a
    resp = client.get(_url(p, purpose="coordination", recipient="Riverside Primary Care"))
    assert resp.status_code == 403 and resp["Content-Type"].startswith("text/html")
    page = resp.content.decode()
    assert "no 42 CFR Part 2 consent in force for the recipient &#x27;Riverside Primary Care&#x27;" in page
    assert not AuditEntry.objects.filter(action__in=["export", "disclose"], patient=p).exists()


def test_care_coordination_needs_a_named_recipient(clinic, login):
    resp = login(clinic.clinician_a).get(_url(clinic.patient_a, purpose="coordination"))
    assert resp.status_code == 400 and "Name who the report is sent to" in resp.content.decode()


def test_a_report_sent_with_a_consent_is_audited_as_a_disclosure_and_carries_the_notice(clinic, login):
    p = clinic.patient_a
    sig = _part2(p)
    client = login(clinic.clinician_a)
    form = client.get(f"/patients/{p.pk}/report.pdf").content.decode()
    assert '<option value="Riverside Primary Care">' in form  # the consented recipients offered
    resp = client.get(_url(p, purpose="coordination", recipient="Riverside primary care"))
    assert resp.status_code == 200 and resp["Content-Type"] == "application/pdf"
    text = _text(resp)
    assert "Disclosed to Riverside primary care for: Care coordination or referral" in text
    assert "42 CFR PART 2 NOTICE." in text
    disclosed = AuditEntry.objects.get(action="disclose", patient=p)
    assert (disclosed.user, disclosed.model) == (clinic.clinician_a, "visit-report")
    assert disclosed.after["recipient"] == "Riverside primary care"
    assert disclosed.after["purpose"] == "Care coordination or referral"
    assert disclosed.after["consent"] == sig.pk
    export = AuditEntry.objects.get(action="export", patient=p, model="visit-report")
    assert export.after["recipient"] == "Riverside primary care"


def test_a_revoked_or_expired_consent_refuses_the_report(clinic, login):
    p = clinic.patient_a
    client = login(clinic.clinician_a)
    sig = _part2(p)
    consents.revoke(p.user, sig)
    assert client.get(_url(p, purpose="coordination",
                           recipient="Riverside Primary Care")).status_code == 403
    lee = _part2(p, "Dr Lee", days=1)
    from speciosa.clinic.models import ConsentSignature

    yesterday = integrity.site_today(p.site) - dt.timedelta(days=1)  # as if it ran out
    ConsentSignature._base_manager.filter(pk=lee.pk).update(expires_on=yesterday)
    assert client.get(_url(p, purpose="other", detail="insurer",
                           recipient="Dr Lee")).status_code == 403
    assert not AuditEntry.objects.filter(action="disclose").exists()


def test_the_care_teams_own_report_needs_no_part2_consent(clinic, login):
    p = clinic.patient_a
    resp = login(clinic.clinician_a).get(_url(p, purpose="treatment"))
    assert resp.status_code == 200 and "42 CFR PART 2 NOTICE" not in _text(resp)
    assert not AuditEntry.objects.filter(action="disclose").exists()
