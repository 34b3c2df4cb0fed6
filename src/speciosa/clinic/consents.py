"""Consent documents, signatures, revocations and disclosures (issue 16).

One source of truth
-------------------
What a patient agreed to is a :class:`~speciosa.clinic.models.ConsentSignature` of one
version of a site's :class:`~speciosa.clinic.models.ConsentDocument`, until a
:class:`~speciosa.clinic.models.ConsentRevocation` of it (or, for a 42 CFR Part 2 consent, its
expiry date). The current-answer table :class:`~speciosa.clinic.models.Consent`
(``Consent.objects.current()``, read by the research export and the FHIR export) is written
here only, in the same transaction as the signature or revocation it rests on; every given
answer links its signature and every withdrawal its revocation (database constraints refuse
a given answer without a signature).

Signing
-------
The patient signs on their own login (``source=patient``): they read the newest version of
the document, type their name as the clinic has it and today's date (at the site), and for a
Part 2 consent the recipient, the purpose and an expiry date after today. A clinician of the
patient's care team may record a consent the patient signed on paper (``source=paper``,
recorded by that clinician; the date is the one on the paper, not in the future). The signed
copy is rendered as a PDF (:mod:`speciosa.reports.consent_pdf`) and stored as bytes with
their SHA-256, so the copy a patient downloads is the one kept.

Disclosure
----------
A disclosure of a patient's record to another party (a FHIR bulk export for a backend client
or one naming ``_recipient``, a visit report sent to a named recipient) needs a Part 2 consent
in force for that recipient: signed, not revoked, not expired (:func:`part2_in_force`); the
recipient is compared case- and spacing-blind. :func:`disclose` checks and writes one audit
entry per patient (``action="disclose"``: the recipient, the purpose of use, the consent,
what was disclosed), supporting the accounting of disclosures (42 CFR 2.25,
``cfr42-part2-2024-rule``); without a consent it refuses with :class:`NoConsentInForce`.

A treating clinician of the patient's own care team reading the record in Speciosa (pages,
the API, the FHIR API, their own visit report or export with no recipient) is the program's
own use for treatment, not a disclosure to another party: it is audited as a view or an
export with its purpose, and needs no Part 2 consent. That line is a design decision of
Speciosa, not a legal finding: the references it rests on (instruments.md section 9.2) do not
spell out the rules for communications inside a program; a site's counsel confirms it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import dateformat, timezone, translation
from django.utils.translation import gettext

from . import access, consent_texts, integrity, writes
from .models import (
    AuditEntry,
    Consent,
    ConsentDocument,
    ConsentKind,
    ConsentRevocation,
    ConsentSignature,
    Patient,
    Role,
    SignatureSource,
    Site,
)

Kind = ConsentKind

RECIPIENT_MAX = 200
PURPOSE_MAX = 500


class NoConsentInForce(PermissionDenied):
    """A disclosure to another party without a Part 2 consent in force for that recipient."""


# --------------------------------------------------------------------------- documents

def ensure_documents(site: Site, user=None) -> list[ConsentDocument]:
    """Give ``site`` the example documents (version 1 of each kind) it does not have yet."""
    made = []
    for kind, (title, body) in consent_texts.DEFAULTS.items():
        if ConsentDocument.objects.filter(site=site, kind=kind, version__gt=0).exists():
            continue
        made.append(ConsentDocument.objects.create(
            site=site, kind=kind, version=1, title=title, body=body.format(site=site.name),
            is_example=True, created_by=user if getattr(user, "is_authenticated", False) else None))
    return made


def latest_document(site: Site, kind: str) -> ConsentDocument | None:
    """The newest version of ``kind`` at ``site`` (what is offered for signing)."""
    return (ConsentDocument.objects.filter(site=site, kind=kind, version__gt=0)
            .order_by("-version").first())


def documents_for(patient: Patient) -> list[ConsentDocument]:
    """The documents the patient's site offers, care first, then research, then Part 2."""
    order = {k: i for i, k in enumerate(Kind.values)}
    docs = list(ConsentDocument.objects.filter(site_id=patient.site_id).latest_versions())
    return sorted(docs, key=lambda d: order.get(d.kind, 9))


def document_for(patient: Patient, document_id) -> ConsentDocument:
    """A document of the patient's site (any version: a signed copy names its version);
    another site's, or none, is a 404."""
    doc = ConsentDocument.objects.filter(pk=document_id, site_id=patient.site_id).first() \
        if str(document_id).isdigit() else None
    if doc is None:
        raise Http404("No such consent document.")
    return doc


def next_version(site: Site, kind: str) -> int:
    last = ConsentDocument.objects.filter(site=site, kind=kind).order_by("-version").first()
    return (last.version if last else 0) + 1


def new_version(user, document: ConsentDocument) -> ConsentDocument:
    """A copy of ``document`` as the next version (to be edited before anyone signs it)."""
    with transaction.atomic():
        doc = ConsentDocument.objects.create(
            site=document.site, kind=document.kind, version=next_version(document.site, document.kind),
            title=document.title, body=document.body, is_example=document.is_example,
            created_by=user if getattr(user, "is_authenticated", False) else None)
        writes.audit(user, writes.Action.CREATE, doc, after=writes.snapshot(doc),
                     reason=f"new version of consent document {document.pk}")
    return doc


# --------------------------------------------------------------------------- reading

@dataclass(frozen=True)
class Status:
    code: str  # in-force, revoked, expired, superseded
    label: str


def current_signature_ids(patient: Patient) -> set[int]:
    """The signatures the patient's current answers rest on as given (one query)."""
    return set(Consent.objects.current().filter(patient=patient, given=True,
                                                signature__isnull=False)
               .values_list("signature_id", flat=True))


def status(signature: ConsentSignature, today: dt.date | None = None,
           current: set[int] | None = None) -> Status:
    """Whether ``signature`` is in force today (at the patient's site); ``current`` is
    :func:`current_signature_ids` when the caller has it (a list of many)."""
    rev = getattr(signature, "revocation", None) if _has_revocation(signature) else None
    if rev is not None:
        return Status("revoked", gettext("Revoked on %(day)s") % {"day": _day(timezone.localtime(rev.at))})
    today = today or integrity.site_today(signature.patient.site)
    if signature.expires_on is not None and signature.expires_on < today:
        return Status("expired", gettext("Expired on %(day)s") % {"day": _day(signature.expires_on)})
    if current is None:
        current = current_signature_ids(signature.patient)
    if signature.pk not in current:
        return Status("superseded", gettext("Replaced by a later signature"))
    if signature.expires_on is not None:
        return Status("in-force", gettext("In force until %(day)s") % {"day": _day(signature.expires_on)})
    return Status("in-force", gettext("In force"))


def _day(day) -> str:
    """A day as the status shows it ("02 Dec 2026"), its month in the page's language."""
    return dateformat.format(day, "d M Y")


def _has_revocation(signature: ConsentSignature) -> bool:
    try:
        return signature.revocation is not None
    except ConsentRevocation.DoesNotExist:
        return False


def signatures_of(patient: Patient):
    """The patient's signatures, newest first, with their document and revocation, and
    ``is_current``: whether a current given answer rests on it (one query for the list)."""
    from django.db.models import Exists, OuterRef

    answer = Consent.objects.filter(signature=OuterRef("pk"), given=True, superseded_by__isnull=True)
    return (ConsentSignature.objects.filter(patient=patient)
            .select_related("document", "revocation", "recorded_by", "patient__site")
            .annotate(is_current=Exists(answer)).defer("pdf"))


def signature_for(user, signature_id, patient: Patient | None = None) -> ConsentSignature:
    """One signature ``user`` may see (their own as a patient; their care teams' patients' as
    a clinician), of ``patient`` when given; anything else is a 404."""
    if not (access.has_role(user, Role.PATIENT) or access.has_role(user, Role.CLINICIAN)):
        raise Http404("No such consent.")
    qs = ConsentSignature.objects.filter(patient__in=access.visible_patients(user))
    if patient is not None:
        qs = qs.filter(patient=patient)
    sig = qs.select_related("document", "patient__site").filter(pk=signature_id).first() \
        if str(signature_id).isdigit() else None
    if sig is None:
        raise Http404("No such consent.")
    return sig


def _english(display) -> str:
    """A choice's label in English, for the audit trail (the labels are translated for the
    pages; the audit stays English)."""
    with translation.override("en"):
        return str(display())


def in_force(patient: Patient, kind: str) -> bool:
    """Whether the patient's current answer for care or research is a signed, unrevoked one."""
    return Consent.objects.current().filter(patient=patient, kind=kind, given=True,
                                            signature__isnull=False).exists()


def site_date(site: Site, at: dt.datetime) -> dt.date:
    """The date of ``at`` at ``site`` (its time zone; UTC when unknown)."""
    return at.astimezone(integrity.site_zone(site)).date()


def normalise(name: str) -> str:
    """A name compared case-, accent-spacing- and punctuation-blind ("Dr. A  Smith" = "dr a smith")."""
    text = unicodedata.normalize("NFKC", name or "").casefold()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def part2_in_force(patient_ids: Iterable[int], recipient: str,
                   today: dt.date | None = None) -> dict[int, ConsentSignature]:
    """For each patient id, the Part 2 signature in force for ``recipient`` (the newest one),
    if any: signed, not revoked (its current answer is given) and not expired (the expiry
    date is compared with today at the patient's site, or ``today``)."""
    want = normalise(recipient)
    if not want:
        return {}
    rows = (Consent.objects.current()
            .filter(kind=Kind.PART2, given=True, patient_id__in=list(patient_ids))
            .select_related("signature__patient__site", "signature__document").order_by("-id"))
    out: dict[int, ConsentSignature] = {}
    for row in rows:
        sig = row.signature
        if row.patient_id in out or normalise(sig.recipient) != want:
            continue
        day = today or integrity.site_today(sig.patient.site)
        if sig.expires_on is None or sig.expires_on < day:
            continue
        out[row.patient_id] = sig
    return out


# --------------------------------------------------------------------------- validation

def _name_matches(typed: str, patient: Patient) -> bool:
    got = normalise(typed)
    given, family = normalise(patient.given_name), normalise(patient.family_name)
    return got in (f"{given} {family}", f"{family} {given}")


def _as_date(raw, field: str, errors: dict[str, str]) -> dt.date | None:
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    if raw in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(raw).strip())
    except ValueError:
        errors[field] = gettext("Write the date as YYYY-MM-DD, for example 2026-03-01.")
        return None


def _validate(patient: Patient, document: ConsentDocument, data: dict, source: str) -> dict:
    errors: dict[str, str] = {}
    if document.site_id != patient.site_id:
        errors["document"] = gettext(
            "This document is not one of this clinic's: open it from the Consents page.")
    elif document.version == 0 or latest_document(patient.site, document.kind) != document:
        errors["document"] = gettext("A newer version of this document exists: read the current "
                                     "version on the Consents page and sign that one.")
    typed = " ".join(str(data.get("typed_name") or "").split())
    if not typed:
        errors["typed_name"] = gettext("Type your full name to sign.") \
            if source == SignatureSource.PATIENT \
            else gettext("Type the patient's name as written on the paper form.")
    elif len(typed) > 200:
        errors["typed_name"] = gettext("A name can be at most 200 characters.")
    elif not _name_matches(typed, patient):
        errors["typed_name"] = (gettext(
            "The name does not match the name your clinic has for you. Type your first and last "
            "name as your clinic knows them; if your clinic has your name wrong, ask them to "
            "correct it.") if source == SignatureSource.PATIENT else
            gettext("The name does not match this patient's record."))
    today = integrity.site_today(patient.site)
    signed_on = _as_date(data.get("signed_on"), "signed_on", errors)
    if signed_on is None and "signed_on" not in errors:
        errors["signed_on"] = gettext("Write today's date.")
    elif signed_on is not None:
        if source == SignatureSource.PATIENT and signed_on != today:
            errors["signed_on"] = gettext("Write today's date: %(today)s.") % {
                "today": today.isoformat()}
        elif signed_on > today:
            errors["signed_on"] = gettext("The date on the paper cannot be in the future.")
    out = {"typed_name": typed, "signed_on": signed_on, "recipient": "", "purpose": "",
           "expires_on": None}
    if document.kind == Kind.PART2:
        recipient = " ".join(str(data.get("recipient") or "").split())
        purpose = " ".join(str(data.get("purpose") or "").split())
        if not recipient:
            errors["recipient"] = gettext(
                "Name who may receive your record (a person or an organisation).")
        elif len(recipient) > RECIPIENT_MAX:
            errors["recipient"] = gettext(
                "Keep the recipient's name to %(max)s characters.") % {"max": RECIPIENT_MAX}
        if not purpose:
            errors["purpose"] = gettext("Say what the recipient may use your record for.")
        elif len(purpose) > PURPOSE_MAX:
            errors["purpose"] = gettext("Keep the purpose to %(max)s characters.") % {
                "max": PURPOSE_MAX}
        expires = _as_date(data.get("expires_on"), "expires_on", errors)
        if expires is None and "expires_on" not in errors:
            errors["expires_on"] = gettext("Choose the date this consent ends.")
        elif expires is not None and expires <= today:
            errors["expires_on"] = gettext("The expiry date must be after today (%(today)s).") % {
                "today": today.isoformat()}
        out.update(recipient=recipient, purpose=purpose, expires_on=expires)
    elif not errors and in_force(patient, document.kind) and Consent.objects.current().filter(
            patient=patient, kind=document.kind, given=True, signature__document=document).exists():
        errors["document"] = gettext("This version is already signed and in force.")
    if errors:
        raise ValidationError(errors)
    return out


# --------------------------------------------------------------------------- writing

def _render(signature: ConsentSignature) -> bytes:
    from speciosa.reports import consent_pdf

    return consent_pdf.signed_copy(signature)


def sha256(data: bytes) -> str:
    return hashlib.sha256(bytes(data)).hexdigest()


def verify(signature: ConsentSignature) -> bool:
    """Whether the stored signed copy still has the hash stored with it."""
    return bool(signature.pdf_sha256) and sha256(signature.pdf) == signature.pdf_sha256


def _store(user, patient: Patient, document: ConsentDocument, values: dict, source: str,
           note: str = "") -> ConsentSignature:
    now = timezone.now()
    sig = ConsentSignature(patient=patient, document=document, source=source, signed_at=now,
                           recorded_by=user if user.is_authenticated else None, note=note, **values)
    sig.pdf = _render(sig)
    sig.pdf_sha256 = sha256(sig.pdf)
    Patient.objects.select_for_update().filter(pk=patient.pk).first()  # one change at a time
    previous = Consent.objects.current().filter(patient=patient, kind=document.kind).order_by("-id").first() \
        if document.kind != Kind.PART2 else None
    sig.save()
    answer = Consent.objects.create(patient=patient, kind=document.kind, given=True, at=now,
                                    recorded_by=sig.recorded_by, signature=sig)
    after = writes.snapshot(sig) | {"pdf_sha256": sig.pdf_sha256, "consent": answer.pk}
    writes.audit(user, writes.Action.CREATE, sig, patient=patient,
                 before=writes.snapshot(previous) if previous else None, after=after,
                 reason=f"{document.kind} consent signed ({_english(sig.get_source_display).lower()}), "
                        f"document {document.pk} version {document.version}")
    return sig


def sign(user, patient: Patient, document: ConsentDocument, data: dict, *,
         token=None) -> ConsentSignature:
    """The patient signs ``document`` in Speciosa (their own login only).

    ``data``: ``typed_name``, ``signed_on`` (today at the site), and for a Part 2 consent
    ``recipient``, ``purpose``, ``expires_on`` (after today). A double submission stores one
    signature. Problems raise ``ValidationError`` naming the field; nothing is stored then."""
    writes.require(access.can_write_diary(user, patient), "Only the patient signs their consent here.")
    prior = writes.replayed(user, token, model=ConsentSignature, kind="consent-sign", patient=patient)
    if prior is not None:  # a double tap: the first signature, not a second validation
        return prior
    values = _validate(patient, document, data, SignatureSource.PATIENT)
    sig, _created = writes.once(user, token, "consent-sign",
                                lambda: _store(user, patient, document, values, SignatureSource.PATIENT),
                                model=ConsentSignature, patient=patient)
    return sig


def record_paper(user, patient: Patient, document: ConsentDocument, data: dict, *,
                 token=None, note: str = "") -> ConsentSignature:
    """A clinician of the patient's care team (or an administrator) records a consent the
    patient signed on paper: the same fields, the date being the one on the paper."""
    writes.require(access.can_write_clinical(user, patient) or access.has_role(user, Role.ADMIN),
                   "Only the patient's care team can record a paper consent.")
    prior = writes.replayed(user, token, model=ConsentSignature, kind="consent-paper", patient=patient)
    if prior is not None:
        return prior
    values = _validate(patient, document, data, SignatureSource.PAPER)
    sig, _created = writes.once(user, token, "consent-paper",
                                lambda: _store(user, patient, document, values, SignatureSource.PAPER, note),
                                model=ConsentSignature, patient=patient)
    return sig


def revoke(user, signature: ConsentSignature, *, reason: str = "", token=None) -> ConsentRevocation:
    """Revoke ``signature``: the patient on their own login, or a clinician of the care team
    recording a revocation the patient made in writing. The signature and its signed copy
    stay; its answer is replaced by a withdrawal. Revoking twice is refused."""
    patient = signature.patient
    own = access.can_write_diary(user, patient)
    writes.require(own or access.can_write_clinical(user, patient),
                   "Only the patient or their care team can revoke this consent.")
    reason = " ".join((reason or "").split())[:500]
    prior = writes.replayed(user, token, model=ConsentRevocation, kind="consent-revoke", patient=patient)
    if prior is not None:
        return prior

    def create() -> ConsentRevocation:
        Patient.objects.select_for_update().filter(pk=patient.pk).first()
        if ConsentRevocation.objects.filter(signature=signature).exists():
            raise ValidationError({"signature": gettext("This consent was already revoked.")})
        answer = Consent.objects.current().filter(signature=signature, given=True).first()
        if answer is None:
            raise ValidationError({"signature": gettext(
                "This consent is no longer in force (a later signature replaced it): revoke that "
                "one.")})
        rev = ConsentRevocation.objects.create(
            signature=signature, source=SignatureSource.PATIENT if own else SignatureSource.PAPER,
            recorded_by=user, reason=reason)
        withdrawal = Consent.objects.create(patient=patient, kind=signature.document.kind, given=False,
                                            at=rev.at, recorded_by=user, signature=signature,
                                            revocation=rev, supersedes=answer)
        writes.audit(user, writes.Action.REVOKE, rev, patient=patient,
                     before=writes.snapshot(answer),
                     after=writes.snapshot(rev) | {"consent": withdrawal.pk},
                     reason=f"{signature.document.kind} consent {signature.pk} revoked"
                            + (f": {reason}" if reason else ""))
        return rev

    rev, _created = writes.once(user, token, "consent-revoke", create, model=ConsentRevocation,
                                patient=patient)
    return rev


def record_refusal(user, patient: Patient, kind: str, *, at: dt.datetime | None = None) -> Consent:
    """The patient declined ``kind`` (care or research) with nothing in force: a refusal
    answer resting on no signature. With a signature in force, revoke it instead."""
    writes.require(access.has_role(user, Role.ADMIN) or access.can_write_clinical(user, patient),
                   "Only an administrator or the patient's care team can record a consent.")
    if kind not in (Kind.CARE, Kind.RESEARCH):
        raise ValidationError({"kind": "Choose care or research."})
    at = at or timezone.now()
    writes.not_in_future(at, "at")
    with transaction.atomic():
        Patient.objects.select_for_update().filter(pk=patient.pk).first()
        current = Consent.objects.current().filter(patient=patient, kind=kind).order_by("-id").first()
        if current is not None and current.given:
            rev = ConsentRevocation.objects.create(signature=current.signature, at=at,
                                                   source=SignatureSource.PAPER, recorded_by=user)
            new = Consent.objects.create(patient=patient, kind=kind, given=False, at=at,
                                         recorded_by=user, signature=current.signature,
                                         revocation=rev, supersedes=current)
        else:
            new = Consent.objects.create(patient=patient, kind=kind, given=False, at=at,
                                         recorded_by=user if user.is_authenticated else None,
                                         supersedes=current)
        writes.audit(user, AuditEntry.Action.CREATE, new, patient=patient,
                     before=writes.snapshot(current) if current else None, after=writes.snapshot(new),
                     reason=f"{kind} consent refused"
                            + (f", superseding consent {current.pk}" if current else ""))
    return new


# --------------------------------------------------------------------------- disclosure

def no_consent_message(recipient: str, n: int = 1) -> str:
    who = "this patient has" if n == 1 else f"{n} of these patients have"
    return (f"Not disclosed: {who} no 42 CFR Part 2 consent in force for the recipient "
            f"'{recipient}' (signed, not revoked, not expired). The patient can sign one on their "
            "Consents page, or the care team can record one signed on paper; the recipient must "
            "be named as in the consent.")


def disclose(user, patients: Iterable[Patient | int], *, recipient: str, purpose: str, what: str,
             detail: dict | None = None, partial: bool = False) -> dict[int, ConsentSignature]:
    """Check a disclosure of ``patients``' records to ``recipient`` and audit it.

    Returns the patients disclosed (id -> the Part 2 signature in force). Without
    ``partial``, any patient without a consent in force refuses the whole disclosure
    (:class:`NoConsentInForce`, nothing audited as disclosed); with it, only those with one
    are returned, and none is refused the same way. Each disclosed patient gets one audit
    entry (``disclose``) naming the recipient, the purpose, the consent and ``what``."""
    recipient = " ".join((recipient or "").split())
    ids = [p if isinstance(p, int) else p.pk for p in patients]
    if not recipient:
        raise ValidationError({"recipient": "Name the recipient of this disclosure."})
    found = part2_in_force(ids, recipient)
    missing = [i for i in ids if i not in found]
    if (missing and not partial) or not found:
        raise NoConsentInForce(no_consent_message(recipient, len(missing) if len(ids) > 1 else 1))
    entries = [writes.audit_entry(
        user, AuditEntry.Action.DISCLOSE, sig, patient=sig.patient, model=what,
        reason=f"disclosed to {recipient}; purpose of use: {purpose}"[:500],
        after={"recipient": recipient, "purpose": purpose, "consent": sig.pk,
               "consent_purpose": sig.purpose, "consent_expires_on": sig.expires_on.isoformat(),
               "what": what, **(detail or {})})
        for sig in found.values()]
    writes.append_audit(entries)
    return found
