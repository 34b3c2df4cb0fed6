"""Consent pages (issue 16): the patient's (``/me/consents/``: read, sign, revoke, download the
signed copy) and the clinician's (the patient page's section, a paper consent recorded on the
patient's behalf, a signed copy). Everything is written by :mod:`speciosa.clinic.consents`;
another patient's document, signature or copy is a 404.
"""

from __future__ import annotations

import logging

from django import forms as dforms
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from speciosa.clinic import access, consent_texts, consents, integrity, services
from speciosa.clinic.models import ConsentKind, Role
from speciosa.knowledge import evidence

from . import forms

log = logging.getLogger(__name__)


class SignForm(forms.TokenForm):
    """The service says what is wrong with each field; the form only carries the text."""

    typed_name = dforms.CharField(label=gettext_lazy("Type your full name"), required=False, max_length=300,
                                  widget=dforms.TextInput(attrs={"autocomplete": "name"}))
    signed_on = dforms.CharField(label=gettext_lazy("Today's date"), required=False, max_length=20,
                                 widget=dforms.DateInput(attrs={"type": "date"}))
    recipient = dforms.CharField(label=gettext_lazy("Who may receive my record"), required=False, max_length=300,
                                 help_text=gettext_lazy("A person or an organisation, e.g. Riverside Primary Care"))
    purpose = dforms.CharField(label=gettext_lazy("What for"), required=False, max_length=600,
                               help_text=gettext_lazy("e.g. to coordinate my care with my family doctor"))
    expires_on = dforms.CharField(label=gettext_lazy("This consent ends on"), required=False, max_length=20,
                                  widget=dforms.DateInput(attrs={"type": "date"}))


class PaperForm(SignForm):
    document = dforms.ChoiceField(label="Document signed")

    def __init__(self, *args, documents=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["document"].choices = [(str(d.pk), f"{d.title} (version {d.version})")
                                           for d in documents]
        self.fields["typed_name"].label = "Name as the patient wrote it"
        self.fields["signed_on"].label = "Date on the paper"
        self.fields["recipient"].label = "Recipient (Part 2 consent only)"
        self.fields["purpose"].label = "Purpose (Part 2 consent only)"
        self.fields["expires_on"].label = "Expiry date (Part 2 consent only)"
        self.order_fields(["document"])


class RevokeForm(forms.TokenForm):
    reason = dforms.CharField(label="Why (optional)", required=False, max_length=500)


def _rows(patient):
    """The patient's signatures with their status, newest first."""
    today = integrity.site_today(patient.site)
    sigs = list(consents.signatures_of(patient))
    current = {s.pk for s in sigs if s.is_current}
    return [(s, consents.status(s, today, current)) for s in sigs]


def _offered(patient, rows):
    """Each document the site offers, with the signature of it in force (if any)."""
    in_force = {}
    for sig, st in rows:
        if st.code == "in-force" and sig.document.kind != ConsentKind.PART2:
            in_force.setdefault(sig.document.kind, sig)
    return [(d, in_force.get(d.kind)) for d in consents.documents_for(patient)]


def _pdf(sig, filename_stem: str) -> HttpResponse:
    if not sig.pdf_sha256:
        raise Http404("No signed copy is kept for this consent (it was recorded on paper "
                      "before Speciosa kept signed copies).")
    if not consents.verify(sig):
        # the stored bytes no longer have the hash stored with them: never hand them out
        # as the signed copy (the header would vouch for a document that was changed)
        log.error("consent signed copy fails its hash", extra={"signature_id": sig.pk})
        return HttpResponse(
            "This signed copy does not match the fingerprint (SHA-256) recorded when it was "
            "signed, so it is not given out. The clinic has been told; ask them for the copy.",
            status=409, content_type="text/plain; charset=utf-8")
    data = bytes(sig.pdf)
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename_stem}-{sig.pk}.pdf"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-SHA256"] = sig.pdf_sha256
    return response


# --------------------------------------------------------------------------- the patient's

@access.role_required(Role.PATIENT)
@require_GET
def my_consents(request):
    patient = access.own_patient(request.user)
    rows = _rows(patient)
    return render(request, "web/my_consents.html", {
        "patient": patient, "offered": _offered(patient, rows), "rows": rows,
        "done": request.GET.get("done", "")})


@access.role_required(Role.PATIENT)
@require_http_methods(["GET", "POST"])
def my_consent_sign(request, document_id):
    patient = access.own_patient(request.user)
    doc = consents.document_for(patient, document_id)
    latest = consents.latest_document(patient.site, doc.kind)
    if doc.version == 0 or latest != doc:
        raise Http404("This is not the current version of this document.")
    form = SignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            consents.sign(request.user, patient, doc, form.cleaned_data,
                          token=forms.submission_key(request, form))
            return redirect("/me/consents/?done=signed")
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
    return render(request, "web/my_consent_sign.html", {
        "patient": patient, "doc": doc, "form": form, "part2": doc.kind == ConsentKind.PART2,
        "today": integrity.site_today(patient.site), "example_notice": consent_texts.EXAMPLE_NOTICE,
        "citations": evidence.citations_of(consent_texts.PART2_CITATIONS)
        if doc.kind == ConsentKind.PART2 else []})


@access.role_required(Role.PATIENT)
@require_http_methods(["GET", "POST"])
def my_consent(request, signature_id):
    patient = access.own_patient(request.user)
    sig = consents.signature_for(request.user, signature_id, patient)
    form = RevokeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            consents.revoke(request.user, sig, reason=form.cleaned_data["reason"],
                            token=forms.submission_key(request, form))
            return redirect("/me/consents/?done=revoked")
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
    return render(request, "web/my_consent.html", {
        "patient": patient, "sig": sig, "status": consents.status(sig), "form": form,
        "example_notice": consent_texts.EXAMPLE_NOTICE})


@access.role_required(Role.PATIENT)
@require_GET
def my_consent_pdf(request, signature_id):
    patient = access.own_patient(request.user)
    return _pdf(consents.signature_for(request.user, signature_id, patient), "my-consent")


# --------------------------------------------------------------------------- the clinician's

def consent_context(patient) -> dict:
    """The patient page's Consents section: the current answer of each kind and every
    signature with its status."""
    rows = _rows(patient)
    in_force = {s.document.kind for s, st in rows if st.code == "in-force"}
    return {"rows": rows, "research_in_force": ConsentKind.RESEARCH in in_force,
            "care_in_force": ConsentKind.CARE in in_force}


@access.role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def paper_consent_new(request, patient_id):
    patient = access.patient_for(request.user, patient_id)
    documents = consents.documents_for(patient)
    form = PaperForm(request.POST or None, documents=documents,
                     initial={"document": request.GET.get("document", "")})
    if request.method == "POST" and form.is_valid():
        doc = consents.document_for(patient, form.cleaned_data["document"])
        try:
            consents.record_paper(request.user, patient, doc, form.cleaned_data,
                                  token=forms.submission_key(request, form))
            return redirect(f"/patients/{patient.pk}/#consents")
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
    return render(request, "web/paper_consent_form.html", {
        "patient": patient, "form": form, "example_notice": consent_texts.EXAMPLE_NOTICE,
        "documents": documents})


@access.role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def patient_consent(request, patient_id, signature_id):
    """A signature of the patient: details, the signed copy, and a written revocation the
    patient gave the care team, recorded on their behalf."""
    patient = access.patient_for(request.user, patient_id)
    sig = consents.signature_for(request.user, signature_id, patient)
    services.record_view(request.user, patient, "consent")
    form = RevokeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            consents.revoke(request.user, sig, reason=form.cleaned_data["reason"],
                            token=forms.submission_key(request, form))
            return redirect(f"/patients/{patient.pk}/#consents")
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
    return render(request, "web/patient_consent.html", {
        "patient": patient, "sig": sig, "status": consents.status(sig), "form": form,
        "example_notice": consent_texts.EXAMPLE_NOTICE})


@access.role_required(Role.CLINICIAN)
@require_GET
def patient_consent_pdf(request, patient_id, signature_id):
    patient = access.patient_for(request.user, patient_id)
    sig = consents.signature_for(request.user, signature_id, patient)
    services.record_view(request.user, patient, "consent-signed-copy")
    return _pdf(sig, f"consent-{patient.pk}")

