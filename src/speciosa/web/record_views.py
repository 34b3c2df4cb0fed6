"""The patient's own record (issue 16): lab results explained in plain words, the decisions
made with the clinician, the reading assigned, and the record to download (PDF and FHIR), as
the right of access requires. Only the patient's own login reaches these pages (no id in the
URL: nobody else's record can be asked for); each download is audited as an export with its
purpose.
"""

from __future__ import annotations

import json

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from speciosa.clinic import access, writes
from speciosa.clinic.models import LabResult, Role
from speciosa.education import results
from speciosa.education.models import EducationAssignment

#: The purpose recorded with the patient's own downloads.
RIGHT_OF_ACCESS = "purpose of use: the patient's own request (right of access)"


def _own(request):
    return access.own_patient(request.user)


@access.role_required(Role.PATIENT)
@require_GET
def my_record(request):
    patient = _own(request)
    labs = LabResult.objects.current().filter(patient=patient)
    assignments = EducationAssignment.objects.filter(patient=patient)
    from django.utils import translation

    from speciosa.education.content import get_page, translate_page

    language = translation.get_language()
    reading = []
    for a in assignments:
        try:
            reading.append((a, translate_page(get_page(a.page_id), language)[0].title))
        except KeyError:
            continue  # a page withdrawn since it was assigned
    return render(request, "web/my_record.html", {
        "patient": patient, "results": results.explain_all(labs, language),
        "results_shown": results.shown_in(language),
        "decisions": patient.decisions.select_related("clinician").all(),
        "reading": reading,
    })


def _stamp(patient) -> str:
    return timezone.localdate().isoformat()


@access.role_required(Role.PATIENT)
@require_GET
def my_record_pdf(request):
    from speciosa.reports import pdf

    patient = _own(request)
    body = pdf.visit_report(patient, period="all", author=request.user)
    writes.audit(request.user, writes.Action.EXPORT, patient=patient, model="visit-report",
                 reason=RIGHT_OF_ACCESS, after={"period": "all", "purpose": "patient-request",
                                                "format": "pdf"})
    response = HttpResponse(body, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="my-record-{_stamp(patient)}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


@access.role_required(Role.PATIENT)
@require_GET
def my_record_fhir(request):
    """The patient's record as a FHIR R4 ``collection`` Bundle (the resources the FHIR API
    serves this login: the care team's notes stay the care team's, as on the API)."""
    from speciosa.interop.export import Exporter

    patient = _own(request)
    exporter = Exporter(type(patient).objects.filter(pk=patient.pk), notes=False)
    base = request.build_absolute_uri("/fhir/")
    entries = [{"fullUrl": f"{base}{r['resourceType']}/{r['id']}", "resource": r}
               for r in exporter.resources()]
    bundle = {"resourceType": "Bundle", "type": "collection",
              "timestamp": timezone.now().isoformat(timespec="seconds"), "entry": entries}
    writes.audit(request.user, writes.Action.EXPORT, patient=patient, model="fhir-record",
                 reason=RIGHT_OF_ACCESS, after={"purpose": "patient-request", "format": "fhir",
                                                "resources": len(entries)})
    response = HttpResponse(json.dumps(bundle, indent=1), content_type="application/fhir+json")
    response["Content-Disposition"] = f'attachment; filename="my-record-{_stamp(patient)}.json"'
    response["Cache-Control"] = "private, no-store"
    return response
