"""Views of the charts and the visit report.

- ``GET /patients/<id>/charts.json``: the clinician's charts (specs, table view, exposure caption);
- ``GET /me/charts.json``: the patient's own simpler charts;
- ``GET /patients/<id>/report.pdf``: the visit report, after a purpose of use; audited as an export.
  Sent to another party (``?recipient=``; needed for care coordination or referral) it is a
  disclosure: it needs the patient's 42 CFR Part 2 consent in force for that recipient (else
  403 with the form and why), is audited as a ``disclose`` entry with recipient and purpose,
  and prints the recipient, the consent and the section 2.32 notice on page one. Without a
  recipient it is the care team's own use.

Access is decided by :mod:`speciosa.clinic.access` (a patient out of reach is a 404).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.utils import translation
from django.views.decorators.http import require_GET

from speciosa.clinic import access, consents, services, writes
from speciosa.clinic.models import Role
from speciosa.web.offline_views import offline_copy

from . import charts, data


def _json(payload: dict | str) -> HttpResponse:
    """``payload`` (a dict, or its JSON text) as a private, never-stored JSON response."""
    if isinstance(payload, str):
        response = HttpResponse(payload, content_type="application/json")
    else:
        response = JsonResponse(payload)
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def patient_charts(request, patient_id: int) -> JsonResponse:
    """The clinician's charts of one patient of their care teams."""
    access.require_role(request.user, Role.CLINICIAN)
    patient = access.patient_for(request.user, patient_id)
    services.record_view(request.user, patient, "charts")
    return _json(data.cached_payload(patient, lambda: charts.payload(data.chart_data(patient)),
                                     kind="clinician"))


@login_required
@require_GET
@offline_copy
def my_charts(request) -> JsonResponse:
    """The patient's own charts (use, craving, withdrawal); nobody else's."""
    access.require_role(request.user, Role.PATIENT)
    patient = access.own_patient(request.user)
    return _json(data.cached_payload(
        patient, lambda: charts.payload(data.chart_data(patient, with_exposure=False), simple=True),
        kind="patient"))


@login_required
@require_GET
def taper_preview(request, patient_id: int, plan_id: int) -> HttpResponse:
    """The predicted exposure under one taper plan of a patient of the clinician's care
    teams (:mod:`speciosa.reports.taper`); another patient's plan is a 404."""
    from django.core.exceptions import ValidationError
    from django.http import Http404

    from speciosa.clinic import taper as ctaper

    from . import taper

    access.require_role(request.user, Role.CLINICIAN)
    patient = access.patient_for(request.user, patient_id)
    try:
        plan = ctaper.plan_for(patient, plan_id)
    except ValidationError:
        raise Http404("No such taper plan in this patient's record") from None
    services.record_view(request.user, patient, "taper-preview", plan)
    return _json(taper.payload(plan))


def _consented_recipients(patient) -> list[str]:
    """The recipients the patient's Part 2 consents in force name (offered in the form)."""
    from speciosa.clinic.models import ConsentSignature

    names = (ConsentSignature.objects.filter(patient=patient, document__kind="part2",
                                             revocation__isnull=True)
             .values_list("recipient", flat=True).distinct())
    return sorted({n for n in names
                   if consents.part2_in_force([patient.pk], n).get(patient.pk)})


def _language_of(patient) -> str:
    """The language the patient chose for their pages ("" when none)."""
    profile = getattr(getattr(patient, "user", None), "profile", None)
    return getattr(profile, "language", "") or ""


#: Purposes that send the report to another party: a recipient and a consent are needed.
SENT_OUT = frozenset({"coordination"})

PURPOSES = {
    "treatment": "Treatment (this clinic's care)",
    "coordination": "Care coordination or referral",
    "patient-request": "The patient's own request",
    "other": "Other (say what)",
}


@login_required
@require_GET
def visit_report(request, patient_id: int) -> HttpResponse:
    """The visit report as a PDF (``?days=30|90|all``, default 90, and ``?purpose=``).

    Without a purpose of use the clinician first gets a small form asking for one; the PDF
    is then audited as an export with that purpose.
    """
    from django.shortcuts import render

    from . import pdf

    access.require_role(request.user, Role.CLINICIAN)
    patient = access.patient_for(request.user, patient_id)
    period = request.GET.get("days", "90")
    if period not in ("30", "90", "all"):
        period = "90"
    purpose = request.GET.get("purpose", "")
    detail = (request.GET.get("detail") or "").strip()[:200]
    recipient = " ".join((request.GET.get("recipient") or "").split())[:consents.RECIPIENT_MAX]

    # the report's own words: in the language of whoever asks for it, unless they choose
    # another (the patient's, to hand it to them); what the record holds stays as recorded
    language = request.GET.get("language") or translation.get_language()
    if language not in dict(settings.LANGUAGES):
        language = translation.get_language()

    def again(error: str, status: int):
        return render(request, "reports/report_purpose.html", {
            "patient": patient, "purposes": PURPOSES, "period": period, "purpose": purpose,
            "detail": detail, "recipient": recipient, "error": error,
            "recipients": _consented_recipients(patient),
            "languages": settings.LANGUAGES, "language": language,
            "patient_language": _language_of(patient)}, status=status)

    if purpose not in PURPOSES or (purpose == "other" and not detail):
        return again("Say what the report is for." if "purpose" in request.GET else "",
                     400 if "purpose" in request.GET else 200)
    if purpose in SENT_OUT and not recipient:
        return again("Name who the report is sent to: sending it out needs the patient's "
                     "42 CFR Part 2 consent for that recipient.", 400)
    stated = PURPOSES[purpose] if purpose != "other" else f"Other: {detail}"
    disclosure = ""
    if recipient:
        try:
            found = consents.disclose(request.user, [patient], recipient=recipient, purpose=stated,
                                      what="visit-report", detail={"period": period})
        except consents.NoConsentInForce as exc:
            return again(str(exc), 403)
        sig = found[patient.pk]
        disclosure = (f"Disclosed to {recipient} for: {stated}, with the patient's 42 CFR Part 2 "
                      f"consent of {sig.signed_on:%d %b %Y} (in force until "
                      f"{sig.expires_on:%d %b %Y}).")
    body = pdf.visit_report(patient, period=period, author=request.user, disclosure=disclosure,
                            language=language)
    writes.audit(request.user, writes.Action.EXPORT, patient=patient, model="visit-report",
                 reason=f"purpose of use: {stated}" + (f"; sent to {recipient}" if recipient else ""),
                 after={"period": period, "purpose": purpose, "recipient": recipient,
                        "language": language})
    response = HttpResponse(body, content_type="application/pdf")
    response["Content-Disposition"] = (
        f'inline; filename="visit-report-{patient.pk}-{pdf.today_for(patient).isoformat()}.pdf"')
    response["Cache-Control"] = "private, no-store"
    return response
