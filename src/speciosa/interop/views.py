"""The read-only FHIR REST API at ``/fhir/``.

- ``GET /fhir/[type]/[id]`` reads one resource;
- ``GET /fhir/[type]?patient=[id]&date=ge2026-01-01`` searches (``subject`` is accepted for
  ``patient``; ``date`` repeats; ``_count`` and ``_offset`` page), returning a ``searchset``
  Bundle;
- ``GET /fhir/Patient/[id]/$everything`` returns everything about one patient;
- ``GET /fhir/metadata`` describes what is served.

Authentication is the REST API's (token or session). Access is decided only by
:func:`speciosa.clinic.access.visible_patients` / :func:`~speciosa.clinic.access.patient_for`:
a clinician sees their care teams' patients, a patient only themselves, researchers and
administrators nothing identifiable. Anything unknown or out of reach is a 404 with an
``OperationOutcome``; reads of a patient's record are audited.
"""

from __future__ import annotations

import itertools

from django.http import Http404
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from speciosa.clinic import access, services, writes
from speciosa.clinic.models import Patient

from . import codes as c
from .export import RESOURCE_TYPES, Exporter, parse_date_filters, searchset

MAX_COUNT = 1000
DEFAULT_COUNT = 100


class FHIRRenderer(JSONRenderer):
    """``application/fhir+json`` (FHIR's JSON media type)."""

    media_type = "application/fhir+json"
    format = "fhir"
    charset = "utf-8"


class PlainJSONRenderer(JSONRenderer):
    media_type = "application/json"


def outcome(code: str, message: str, severity: str = "error") -> dict:
    """An ``OperationOutcome`` with one issue."""
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": message}]}


class FHIRView(APIView):
    renderer_classes = [FHIRRenderer, PlainJSONRenderer]
    schema = None  # not in the OpenAPI document: FHIR describes itself at /fhir/metadata

    def handle_exception(self, exc):
        if isinstance(exc, Http404):
            return Response(outcome("not-found", str(exc) or "Not found"), status=404)
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            resp = Response(outcome("login", "Log in, or send an API token."), status=401)
            resp["WWW-Authenticate"] = 'Token realm="fhir"'
            return resp
        if isinstance(exc, exceptions.PermissionDenied):
            return Response(outcome("forbidden", str(exc.detail)), status=403)
        if isinstance(exc, exceptions.NotAcceptable):
            return Response(outcome("not-supported", "Ask for application/fhir+json."), status=406)
        if isinstance(exc, ValueError):
            return Response(outcome("invalid", str(exc)), status=400)
        return super().handle_exception(exc)

    def _type(self, rtype: str) -> str:
        if rtype not in RESOURCE_TYPES:
            raise Http404(f"Resource type {rtype!r} is not served here; served: {', '.join(RESOURCE_TYPES)}")
        return rtype

    def _base(self, request) -> str:
        return request.build_absolute_uri("/fhir/")


class ReadView(FHIRView):
    def get(self, request, rtype: str, rid: str):
        rtype = self._type(rtype)
        visible = access.visible_patients(request.user)
        resource = Exporter(visible).read(rtype, rid)
        if resource is None:
            raise Http404(f"No {rtype}/{rid} here.")
        patient_id = _patient_of(resource)
        if patient_id is not None:
            services.record_view(request.user, Patient.objects.get(pk=patient_id), f"fhir:{rtype}")
        return Response(resource)


class SearchView(FHIRView):
    def get(self, request, rtype: str):
        rtype = self._type(rtype)
        params = request.query_params
        visible = access.visible_patients(request.user)
        patient_param = params.get("patient") or params.get("subject") or (
            params.get("_id") if rtype == "Patient" else None)
        scope = visible
        patient = None
        if patient_param:
            patient = access.patient_for(request.user, patient_param.removeprefix("Patient/"))
            scope = visible.filter(pk=patient.pk)
        date = parse_date_filters(params.getlist("date"))
        count = _int(params.get("_count"), DEFAULT_COUNT, "_count", 0, MAX_COUNT)
        offset = _int(params.get("_offset"), 0, "_offset", 0, None)
        exporter = Exporter(scope, date=date)
        matches = (r for r in exporter.resources([rtype]) if r["resourceType"] == rtype)
        page = list(itertools.islice(matches, offset, offset + count + 1))
        bundle = searchset(page[:count], base=self._base(request))
        del bundle["total"]
        links = [{"relation": "self", "url": request.build_absolute_uri()}]
        if len(page) > count:
            nxt = params.copy()
            nxt["_offset"] = str(offset + count)
            links.append({"relation": "next",
                          "url": f"{self._base(request)}{rtype}?{nxt.urlencode()}"})
        bundle["link"] = links
        if patient is not None:
            services.record_view(request.user, patient, f"fhir:search:{rtype}")
        return Response(bundle)


class EverythingView(FHIRView):
    def get(self, request, rid: str):
        patient = access.patient_for(request.user, rid)
        exporter = Exporter(access.visible_patients(request.user).filter(pk=patient.pk))
        bundle = searchset(exporter.resources(), base=self._base(request))
        # an export of the whole record: audited with its purpose of use (HL7 PurposeOfUse code,
        # from ``_purpose`` or the ``X-Purpose-Of-Use`` header; TREAT when not given)
        purpose = (request.query_params.get("_purpose") or request.headers.get("X-Purpose-Of-Use")
                   or "TREAT").strip()[:100]
        writes.audit(request.user, writes.Action.EXPORT, patient=patient, model="fhir:$everything",
                     reason=f"purpose of use: {purpose}", after={"purpose": purpose})
        return Response(bundle)


class MetadataView(FHIRView):
    def get(self, request):
        search = [{"name": "patient", "type": "reference"}, {"name": "date", "type": "date"},
                  {"name": "_count", "type": "number"}]
        return Response({
            "resourceType": "CapabilityStatement", "status": "active", "date": "2026-01-01",
            "kind": "instance", "fhirVersion": c.FHIR_VERSION, "format": ["json"],
            "implementation": {"description": "Speciosa read-only FHIR API",
                               "url": self._base(request)},
            "rest": [{"mode": "server", "resource": [
                {"type": t, "interaction": [{"code": "read"}, {"code": "search-type"}],
                 "searchParam": search} for t in RESOURCE_TYPES],
                "operation": [{"name": "everything",
                               "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}]}],
        })


def _int(raw: str | None, default: int, name: str, low: int, high: int | None) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number") from None
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be between {low} and {high}" if high else f"{name} must be at least {low}")
    return value


def _patient_of(resource: dict) -> int | None:
    if resource["resourceType"] == "Patient":
        return int(resource["id"])
    ref = resource.get("subject") or resource.get("patient")
    if isinstance(ref, dict) and str(ref.get("reference", "")).startswith("Patient/"):
        return int(ref["reference"].split("/", 1)[1])
    return None
