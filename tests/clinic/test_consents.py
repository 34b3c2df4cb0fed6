"""Consent documents, signing, revocation and the answers they drive (issue 16, Consent)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from speciosa.clinic import consents, integrity
from speciosa.clinic.models import (
    AuditEntry,
    Consent,
    ConsentDocument,
    ConsentRevocation,
    ConsentSignature,
)
from speciosa.clinic.writes import AccessDenied
from speciosa.research.dataset import consented_patient_ids

pytestmark = pytest.mark.django_db


def _today(patient):
    return integrity.site_today(patient.site)


def _sign(patient, kind="research", token=None, **extra):
    doc = consents.latest_document(patient.site, kind)
    data = {"typed_name": patient.name, "signed_on": _today(patient).isoformat(), **extra}
    return consents.sign(patient.user, patient, doc, data, token=token)


def _part2(patient, recipient="Riverside Primary Care", days=30, **extra):
    return _sign(patient, "part2", recipient=recipient, purpose="coordinate my care",
                 expires_on=(_today(patient) + dt.timedelta(days=days)).isoformat(), **extra)


def test_every_site_starts_with_the_three_example_documents(clinic):
    docs = consents.documents_for(clinic.patient_a)
    assert [(d.kind, d.version, d.is_example) for d in docs] == [
        ("care", 1, True), ("research", 1, True), ("part2", 1, True)]
    assert "Site A" in docs[0].body and "42 CFR Part 2" in docs[2].title
    assert all(d.site == clinic.site_a for d in docs)


def test_a_patient_signs_the_research_consent_and_the_export_takes_them(clinic):
    p = clinic.patient_a
    assert consented_patient_ids() == []
    sig = _sign(p)
    assert sig.source == "patient" and sig.recorded_by == p.user
    assert sig.document.version == 1 and sig.typed_name == "Maya Quinn"
    answer = Consent.objects.current().get(patient=p, kind="research")
    assert answer.given and answer.signature == sig
    assert consented_patient_ids() == [p.pk]
    entry = AuditEntry.objects.filter(model="ConsentSignature").latest("seq")
    assert (entry.user, entry.patient, entry.object_id) == (p.user, p, sig.pk)
    assert entry.after["pdf_sha256"] == sig.pdf_sha256


def test_the_signed_copy_is_a_pdf_whose_stored_hash_verifies(clinic):
    sig = _part2(clinic.patient_a)
    stored = ConsentSignature.objects.get(pk=sig.pk)
    data = bytes(stored.pdf)
    assert data.startswith(b"%PDF-")
    assert hashlib.sha256(data).hexdigest() == stored.pdf_sha256 and len(stored.pdf_sha256) == 64
    assert consents.verify(stored)
    stored.pdf = data + b" "  # a changed copy no longer verifies
    assert not consents.verify(stored)


def test_revoking_keeps_the_signature_and_takes_the_patient_out_of_the_export(clinic):
    p = clinic.patient_a
    sig = _sign(p)
    assert consented_patient_ids() == [p.pk]
    rev = consents.revoke(p.user, sig, reason="changed my mind")
    assert rev.source == "patient" and rev.signature == sig
    assert consented_patient_ids() == []
    current = Consent.objects.current().get(patient=p, kind="research")
    assert not current.given and current.revocation == rev and current.signature == sig
    assert ConsentSignature.objects.get(pk=sig.pk).pdf_sha256 == sig.pdf_sha256  # kept
    assert consents.status(ConsentSignature.objects.get(pk=sig.pk)).code == "revoked"
    assert AuditEntry.objects.filter(action="revoke", patient=p, object_id=rev.pk).count() == 1
    with pytest.raises(ValidationError) as exc:
        consents.revoke(p.user, sig)
    assert "already revoked" in str(exc.value)
    # signing again brings them back
    _sign(p)
    assert consented_patient_ids() == [p.pk]


def test_a_double_submission_stores_one_signature_and_one_revocation(clinic):
    p = clinic.patient_a
    first = _sign(p, token="tap-1")
    again = _sign(p, token="tap-1")
    assert first.pk == again.pk and ConsentSignature.objects.count() == 1
    assert Consent.objects.filter(patient=p, kind="research").count() == 1
    r1 = consents.revoke(p.user, first, token="rev-1")
    r2 = consents.revoke(p.user, first, token="rev-1")
    assert r1.pk == r2.pk and ConsentRevocation.objects.count() == 1


@pytest.mark.parametrize("field,value,message", [
    ("typed_name", "", "Type your full name"),
    ("typed_name", "Someone Else", "does not match the name your clinic has"),
    ("signed_on", "", "Write today's date"),
    ("signed_on", "yesterday", "YYYY-MM-DD"),
    ("signed_on", "-1", "Write today's date: "),
    ("signed_on", "+1", "Write today's date: "),
])
def test_signing_refuses_a_wrong_name_or_a_date_not_today_and_stores_nothing(clinic, field, value,
                                                                              message):
    p = clinic.patient_a
    if value in ("-1", "+1"):
        value = (_today(p) + dt.timedelta(days=int(value))).isoformat()
    with pytest.raises(ValidationError) as exc:
        _sign(p, **{field: value})
    assert message in " ".join(exc.value.message_dict[field])
    assert ConsentSignature.objects.count() == 0 and Consent.objects.count() == 0


def test_the_name_is_compared_without_case_spacing_or_order(clinic):
    assert _sign(clinic.patient_a, typed_name="  quinn,   MAYA ").typed_name == "quinn, MAYA"


@pytest.mark.parametrize("field,value,message", [
    ("recipient", "", "Name who may receive"),
    ("purpose", "", "Say what the recipient may use"),
    ("expires_on", "", "Choose the date this consent ends"),
    ("expires_on", "0", "must be after today"),
    ("expires_on", "-3", "must be after today"),
])
def test_a_part2_consent_needs_a_recipient_a_purpose_and_a_future_expiry(clinic, field, value, message):
    p = clinic.patient_a
    data = {"recipient": "Riverside Primary Care", "purpose": "coordinate my care",
            "expires_on": (_today(p) + dt.timedelta(days=30)).isoformat()}
    if value.lstrip("-").isdigit():
        value = (_today(p) + dt.timedelta(days=int(value))).isoformat()
    data[field] = value
    with pytest.raises(ValidationError) as exc:
        _sign(p, "part2", **data)
    assert message in " ".join(exc.value.message_dict[field])
    assert ConsentSignature.objects.count() == 0


def test_a_document_of_another_site_or_an_old_version_is_refused(clinic):
    p = clinic.patient_a
    other = consents.latest_document(clinic.site_b, "research")
    with pytest.raises(ValidationError) as exc:
        consents.sign(p.user, p, other, {"typed_name": p.name, "signed_on": _today(p)})
    assert "not one of this clinic's" in exc.value.message_dict["document"][0]
    v1 = consents.latest_document(p.site, "research")
    consents.new_version(clinic.admin, v1)
    with pytest.raises(ValidationError) as exc:
        consents.sign(p.user, p, v1, {"typed_name": p.name, "signed_on": _today(p)})
    assert "newer version" in exc.value.message_dict["document"][0]
    assert ConsentSignature.objects.count() == 0


def test_signing_the_same_version_twice_while_in_force_is_refused(clinic):
    _sign(clinic.patient_a)
    with pytest.raises(ValidationError) as exc:
        _sign(clinic.patient_a)
    assert "already signed" in exc.value.message_dict["document"][0]


def test_a_signed_version_is_immutable_and_a_new_version_is_a_new_row(clinic):
    p = clinic.patient_a
    sig = _sign(p)
    doc = ConsentDocument.objects.get(pk=sig.document_id)
    doc.body = "changed"
    with pytest.raises(PermissionError):
        doc.save()
    with pytest.raises(PermissionError):
        doc.delete()
    v2 = consents.new_version(clinic.admin, doc)
    assert (v2.version, v2.pk != doc.pk) == (2, True)
    v2.body = "A reviewed text."
    v2.save()  # unsigned: still editable
    assert consents.latest_document(p.site, "research") == v2
    with pytest.raises(PermissionError):
        ConsentSignature.objects.filter(pk=sig.pk).update(typed_name="x")
    with pytest.raises(PermissionError):
        sig.delete()


def test_only_the_patient_signs_in_the_app_and_only_the_care_team_records_paper(clinic):
    p = clinic.patient_a
    doc = consents.latest_document(p.site, "research")
    data = {"typed_name": p.name, "signed_on": _today(p)}
    for user in (clinic.clinician_a, clinic.clinician_b, clinic.patient_b.user, clinic.researcher,
                 clinic.admin):
        with pytest.raises(AccessDenied):
            consents.sign(user, p, doc, data)
    for user in (clinic.clinician_b, clinic.patient_a.user, clinic.patient_b.user, clinic.researcher):
        with pytest.raises(AccessDenied):
            consents.record_paper(user, p, doc, data)
    assert ConsentSignature.objects.count() == 0
    sig = consents.record_paper(clinic.clinician_a, p, doc,
                                {"typed_name": p.name, "signed_on": _today(p) - dt.timedelta(days=2)})
    assert (sig.source, sig.recorded_by) == ("paper", clinic.clinician_a)
    with pytest.raises(AccessDenied):
        consents.revoke(clinic.clinician_b, sig)
    with pytest.raises(AccessDenied):
        consents.revoke(clinic.patient_b.user, sig)
    rev = consents.revoke(clinic.clinician_a, sig, reason="letter of 3 March")
    assert rev.source == "paper"


def test_a_paper_consent_may_not_be_dated_in_the_future(clinic):
    p = clinic.patient_a
    doc = consents.latest_document(p.site, "care")
    with pytest.raises(ValidationError) as exc:
        consents.record_paper(clinic.clinician_a, p, doc, {
            "typed_name": p.name, "signed_on": _today(p) + dt.timedelta(days=1)})
    assert "future" in exc.value.message_dict["signed_on"][0]


def test_part2_consents_are_in_force_per_recipient_until_revoked_or_expired(clinic):
    p = clinic.patient_a
    a = _part2(p, "Riverside Primary Care")
    b = _part2(p, "Dr. Lee's practice", days=1)
    found = consents.part2_in_force([p.pk], "riverside  primary care")
    assert found == {p.pk: a}
    assert consents.part2_in_force([p.pk], "dr lee s practice") == {p.pk: b}
    assert consents.part2_in_force([p.pk], "Someone else") == {}
    later = _today(p) + dt.timedelta(days=2)
    assert consents.part2_in_force([p.pk], "Dr. Lee's practice", today=later) == {}
    assert consents.status(b, today=later).code == "expired"
    consents.revoke(p.user, a)
    assert consents.part2_in_force([p.pk], "Riverside Primary Care") == {}
    assert consents.part2_in_force([p.pk], "Dr. Lee's practice") == {p.pk: b}  # the other stays


def test_a_disclosure_without_a_consent_in_force_is_refused_and_audited_with_one(clinic):
    p = clinic.patient_a
    with pytest.raises(consents.NoConsentInForce) as exc:
        consents.disclose(clinic.clinician_a, [p], recipient="Riverside Primary Care",
                          purpose="referral", what="visit-report")
    assert "no 42 CFR Part 2 consent in force for the recipient 'Riverside Primary Care'" in str(exc.value)
    assert not AuditEntry.objects.filter(action="disclose").exists()
    sig = _part2(p)
    found = consents.disclose(clinic.clinician_a, [p], recipient="Riverside Primary Care",
                              purpose="referral", what="visit-report")
    assert found == {p.pk: sig}
    entry = AuditEntry.objects.get(action="disclose")
    assert (entry.user, entry.patient, entry.model) == (clinic.clinician_a, p, "visit-report")
    assert entry.after["recipient"] == "Riverside Primary Care" and entry.after["purpose"] == "referral"
    assert entry.after["consent"] == sig.pk and "Riverside Primary Care" in entry.reason


def test_registration_and_the_admin_record_paper_signatures_of_the_current_document(clinic):
    from speciosa.clinic import services

    p = clinic.patient_b
    answer = services.record_consent(clinic.clinician_b, p, "research", True)
    assert answer.given and answer.signature.source == "paper"
    assert answer.signature.document == consents.latest_document(p.site, "research")
    assert consented_patient_ids() == [p.pk]
    refusal = services.record_consent(clinic.clinician_b, p, "research", False)
    assert refusal.revocation is not None and refusal.revocation.signature == answer.signature
    assert consented_patient_ids() == []


def test_a_given_answer_without_a_signature_is_refused_by_the_database(clinic):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Consent.objects.create(patient=clinic.patient_a, kind="research", given=True,
                               at=timezone.now())


def test_the_part2_document_cites_the_registry():
    from speciosa.clinic import consent_texts
    from speciosa.knowledge import evidence

    assert evidence.missing_references(consent_texts.PART2_CITATIONS) == []
    assert all(evidence.citation(c).type == "reference" for c in consent_texts.PART2_CITATIONS)
