"""The read-only FHIR REST API at ``/fhir/``.

- ``GET /fhir/[type]/[id]`` reads one resource;
- ``GET /fhir/[type]?patient=[id]&code=...&date=ge2026-01-01`` searches with the parameters
  of :data:`speciosa.interop.search.PARAMS` (``_count``, ``_sort``, ``_summary=count``; the
  ``next`` link pages with ``_offset``), returning a ``searchset`` Bundle;
- ``GET /fhir/Patient/[id]/$everything`` returns everything about one patient;
- ``GET /fhir/metadata`` describes what is served.

Authentication is the REST API's (token or session) or a SMART on FHIR bearer token
(:mod:`speciosa.interop.smart`). Access is decided only by
:func:`speciosa.clinic.access.visible_patients`, narrowed by a bearer token's scopes
(:func:`speciosa.interop.smart.reach`): a clinician sees their care teams' patients, a patient
only themselves, researchers and administrators nothing identifiable; a token never more.
Anything unknown or out of reach is a 404 with an ``OperationOutcome`` (a type outside a
token's scopes a 403), as is every other error; reads of a patient's record are audited.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import reverse
from django.utils.http import http_date
from rest_framework import exceptions
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from speciosa.api.authentication import ApiTokenAuthentication, VerifiedSessionAuthentication
from speciosa.api.parsers import FHIRJSONParser, SafeJSONParser
from speciosa.clinic import access, services, writes
from speciosa.clinic.models import Patient, Role

from . import codes as c
from . import search, smart
from .export import ID_PREFIXES, RESOURCE_TYPES, TABLE_MODELS, Exporter, Gone, searchset

#: The FHIR id type (R4 2.24.0.1): letters, digits, '-' and '.', at most 64 (ASCII only).
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}", re.ASCII)
#: The largest id a database integer column holds (ids beyond it name nothing).
MAX_DB_ID = 2**63 - 1
MAX_COUNT = 1000
DEFAULT_COUNT = 100
MAX_OFFSET = 10**9
#: The ``_format`` values of FHIR JSON (the spec's short form and the media types).
JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json"})


class FHIRRenderer(JSONRenderer):
    """``application/fhir+json`` (FHIR's JSON media type)."""

    media_type = "application/fhir+json"
    format = "fhir"
    charset = "utf-8"


class PlainJSONRenderer(JSONRenderer):
    media_type = "application/json"


def outcome(code: str, message: str, severity: str = "error", *,
            expression: str | None = None) -> dict:
    """An ``OperationOutcome`` with one issue (``expression``: the search parameter)."""
    issue = {"severity": severity, "code": code, "diagnostics": message}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


class FormatNotServed(exceptions.NotAcceptable):
    """A ``_format`` other than JSON (406, naming it)."""


#: DRF errors -> (OperationOutcome issue code, message); anything else keeps DRF's message.
_ISSUE_CODES = {
    exceptions.NotAuthenticated: ("login", "Log in, or send an API token."),
    exceptions.AuthenticationFailed: ("login", "Log in, or send an API token."),
    exceptions.PermissionDenied: ("forbidden", None),
    FormatNotServed: ("not-supported", None),
    exceptions.NotAcceptable: ("not-supported", "Ask for application/fhir+json."),
    exceptions.MethodNotAllowed: ("not-supported", None),
    exceptions.UnsupportedMediaType: ("not-supported", None),
    exceptions.Throttled: ("throttled", None),
    exceptions.NotFound: ("not-found", None),
    exceptions.ParseError: ("invalid", None),
}


class FHIRView(APIView):
    """Every answer, errors included, is FHIR JSON: an error is an ``OperationOutcome``."""

    renderer_classes = [FHIRRenderer, PlainJSONRenderer]
    # a SMART bearer token first (its scopes narrow the reach: smart.reach), then the API's own
    authentication_classes = [smart.SmartBearerAuthentication, ApiTokenAuthentication,
                              VerifiedSessionAuthentication]
    # a body is only ever read through these (nesting capped, bad text refused)
    parser_classes = [FHIRJSONParser, SafeJSONParser]
    schema = None  # not in the OpenAPI document: FHIR describes itself at /fhir/metadata

    def handle_exception(self, exc):
        if isinstance(exc, Http404):
            return Response(outcome("not-found", str(exc) or "Not found"), status=404)
        if isinstance(exc, PermissionDenied):  # e.g. a bearer token's scopes (smart.Reach)
            return Response(outcome("forbidden", str(exc) or "Forbidden"), status=403)
        if isinstance(exc, Gone):
            return Response(outcome("deleted", str(exc)), status=410)
        if isinstance(exc, search.SearchError):
            return Response(outcome(exc.code, str(exc), expression=exc.param), status=400)
        if isinstance(exc, ValueError):
            return Response(outcome("invalid", str(exc)), status=400)
        if isinstance(exc, exceptions.APIException):
            code, message = next(((c_, m) for cls, (c_, m) in _ISSUE_CODES.items()
                                  if isinstance(exc, cls)), ("exception", None))
            detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
            resp = Response(outcome(code, message or detail), status=exc.status_code)
            if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
                resp.status_code = 401
                resp["WWW-Authenticate"] = 'Bearer realm="fhir", Token realm="fhir"'
            if isinstance(exc, exceptions.MethodNotAllowed):
                resp["Allow"] = ", ".join(self.allowed_methods)
            if getattr(exc, "wait", None):
                resp["Retry-After"] = str(int(exc.wait))
            return resp
        return super().handle_exception(exc)

    def initial(self, request, *args, **kwargs):
        # FHIR's _format overrides Accept on every interaction: only JSON is served
        fmt = request.query_params.get("_format")
        if fmt is not None and fmt.split(";")[0].strip() not in JSON_FORMATS:
            raise FormatNotServed(
                f"_format={fmt} is not served; use _format=json (application/fhir+json).")
        super().initial(request, *args, **kwargs)

    def _id(self, rtype: str, rid: str) -> str:
        """A FHIR id (``[A-Za-z0-9-.]{1,64}``), else a 404: ``" 1"`` or ``"٣"`` is not
        ``1``, though Python's ``int`` would read them so."""
        if not FHIR_ID.fullmatch(rid):
            raise Http404(f"No {rtype}/{rid} here: {rid!r} is not a FHIR id.")
        return rid

    def _type(self, rtype: str) -> str:
        if rtype not in RESOURCE_TYPES:
            raise Http404(f"Resource type {rtype!r} is not served here; served: {', '.join(RESOURCE_TYPES)}")
        return rtype

    def _base(self, request) -> str:
        return request.build_absolute_uri("/fhir/")


def _version_headers(resp: Response, resource: dict) -> Response:
    """``ETag: W/"<versionId>"`` and ``Last-Modified`` (when the resource has a time)."""
    meta = resource.get("meta") or {}
    if meta.get("versionId"):
        resp["ETag"] = f'W/"{meta["versionId"]}"'
    if meta.get("lastUpdated"):
        when = dt.datetime.fromisoformat(meta["lastUpdated"])
        resp["Last-Modified"] = http_date(when.timestamp())
    return resp


def _none_match(header: str, version_id: str) -> bool:
    """``If-None-Match`` by the weak comparison RFC 9110 (13.1.2) prescribes: ``W/"v"`` and
    ``"v"`` are the same tag, ``*`` matches any current representation."""
    tags = [t.strip() for t in header.split(",") if t.strip()]
    return "*" in tags or any(t.removeprefix("W/") == f'"{version_id}"' for t in tags)


#: The purpose of use recorded for a backend client's read when it names none (HL7
#: PurposeOfUse codes come from ``_purpose`` or the ``X-Purpose-Of-Use`` header).
BACKEND_PURPOSE = "system access by a SMART backend client"


def _record_read(request, patient_ids, what: str) -> None:
    """Audit a read of these patients' records: a view entry each; for a backend client
    (another party) also a ``disclose`` entry naming it as the recipient, with the purpose
    of use and the Part 2 consent the read rests on (the accounting of disclosures)."""
    ids = sorted({int(i) for i in patient_ids if i})
    if not ids:
        return
    for patient in Patient.objects.filter(pk__in=ids):
        services.record_view(request.user, patient, what)
    recipient = smart.reach(request).recipient
    if recipient:
        from speciosa.clinic import consents

        purpose = (request.query_params.get("_purpose") or request.headers.get("X-Purpose-Of-Use")
                   or BACKEND_PURPOSE).strip()[:100]
        consents.disclose(request.user, ids, recipient=recipient, purpose=purpose, what=what)


class ReadView(FHIRView):
    def get(self, request, rtype: str, rid: str):
        rtype = self._type(rtype)
        rid = self._id(rtype, rid)
        visible = smart.reach(request).patients(rtype, "r")
        resource = Exporter(visible, notes=_sees_notes(request.user)).read(rtype, rid)
        if resource is None:
            raise Http404(f"No {rtype}/{rid} here.")
        _record_read(request, [_patient_of(resource)], f"fhir:{rtype}")
        if _none_match(request.headers.get("If-None-Match", ""), resource["meta"]["versionId"]):
            return _version_headers(Response(status=304), resource)
        return _version_headers(Response(resource), resource)


class HistoryView(FHIRView):
    """``GET /fhir/[type]/[id]/_history``: every version, newest first (a ``history``
    Bundle); records that keep no past versions give their current one."""

    def get(self, request, rtype: str, rid: str):
        rtype = self._type(rtype)
        rid = self._id(rtype, rid)
        exporter = Exporter(smart.reach(request).patients(rtype, "r"),
                            notes=_sees_notes(request.user))
        versions = exporter.versions(rtype, rid)
        if not versions:
            raise Http404(f"No {rtype}/{rid} here.")
        base = self._base(request)
        entries = []
        for i, (vid, res) in enumerate(versions):
            url = f"{rtype}/{rid}/_history/{vid}"
            if res is None:
                entries.append({"fullUrl": f"{base}{rtype}/{rid}",
                                "request": {"method": "DELETE", "url": f"{rtype}/{rid}"},
                                "response": {"status": "410 Gone"}})
                continue
            first = i == len(versions) - 1
            entries.append({"fullUrl": f"{base}{rtype}/{rid}", "resource": res,
                            "request": {"method": "POST" if first else "PUT",
                                        "url": rtype if first else f"{rtype}/{rid}"},
                            "response": {"status": "201 Created" if first else "200 OK",
                                         "location": url,
                                         "lastModified": res["meta"].get("lastUpdated")}})
            if entries[-1]["response"]["lastModified"] is None:
                del entries[-1]["response"]["lastModified"]
        patient_id = next((_patient_of(r) for _, r in versions if r is not None), None)
        _record_read(request, [patient_id], f"fhir:history:{rtype}")
        return Response({"resourceType": "Bundle", "type": "history", "total": len(entries),
                         "link": [{"relation": "self", "url": f"{base}{rtype}/{rid}/_history"}],
                         "entry": entries})


class VReadView(FHIRView):
    """``GET /fhir/[type]/[id]/_history/[vid]``: one version (410 for a withdrawal)."""

    def get(self, request, rtype: str, rid: str, vid: str):
        rtype = self._type(rtype)
        rid = self._id(rtype, rid)
        exporter = Exporter(smart.reach(request).patients(rtype, "r"),
                            notes=_sees_notes(request.user))
        versions = exporter.versions(rtype, rid) or []
        found = next(((v, r) for v, r in versions if v == vid), None)
        if found is None:
            raise Http404(f"No version {vid} of {rtype}/{rid} here.")
        if found[1] is None:
            raise Gone(f"{rtype}/{rid} was withdrawn as entered in error in version {vid}.")
        _record_read(request, [_patient_of(found[1])], f"fhir:{rtype}")
        return _version_headers(Response(found[1]), found[1])


class SearchView(FHIRView):
    """``GET /fhir/[type]?...``: the parameters of :data:`speciosa.interop.search.PARAMS`.

    An unsupported parameter, modifier or value is a 400 naming it, unless the request says
    ``Prefer: handling=lenient``: then it is left out, and the ``self`` link shows only what
    was applied. ``patient``/``subject`` narrow the patients in scope through
    :mod:`speciosa.clinic.access` (a patient out of reach is a 404, as a read is).
    """

    def get(self, request, rtype: str):
        rtype = self._type(rtype)
        lenient = _prefers_lenient(request)
        visible = smart.reach(request).patients(rtype, "s")
        scope = visible
        patients: list[Patient] = []
        criteria: list[search.Criterion] = []
        applied: list[tuple[str, str]] = []
        count, offset, summary, sort = DEFAULT_COUNT, 0, None, None
        for key, values in request.query_params.lists():
            for raw in values:
                try:
                    if key == "_count":
                        # more than a page holds is capped, not refused (R4 search: the
                        # server may return fewer, never more); the self link says so
                        count = min(_int(raw, DEFAULT_COUNT, "_count", 0, None), MAX_COUNT)
                        applied.append((key, str(count)))
                        continue
                    elif key == "_offset":
                        offset = _int(raw, 0, "_offset", 0, MAX_OFFSET)
                        continue  # the links set their own offset
                    elif key == "_format":
                        pass  # JSON, checked for every interaction in FHIRView.initial
                    elif key == "_summary":
                        if raw != "count":
                            raise search.SearchError(key, f"_summary={raw} is not supported; "
                                                          "_summary=count is.", "not-supported")
                        summary = raw
                    elif key == "_sort":
                        sort = search.sort_key(rtype, raw)
                    elif key in search.PATIENT_PARAMS and key in search.PARAMS[rtype]:
                        found = _patients(visible, key, raw)
                        patients += found
                        scope = scope.filter(pk__in=[p.pk for p in found])
                    else:
                        crit = search.criterion(rtype, key, raw)
                        if rtype == "Patient" and crit.param.name == "_id":
                            scope = scope.filter(pk__in=[
                                int(i) for _, i in crit.alternatives
                                if i and i.isascii() and i.isdigit() and int(i) <= MAX_DB_ID])
                        criteria.append(crit)
                except search.SearchError as exc:
                    if lenient and exc.code == "not-supported":
                        continue
                    raise
                applied.append((key, raw))
        exporter = Exporter(scope, notes=_sees_notes(request.user))
        stream = (r for r in exporter.resources([rtype]) if r["resourceType"] == rtype)
        matches = search.matching(stream, criteria)
        total: int | None = None
        if sort is not None or summary or count == 0:
            found = sorted(matches, key=sort) if sort is not None else list(matches)
            total = len(found)
            page = [] if summary else found[offset:offset + count]
            more = not summary and offset + count < total and count > 0
        else:
            page = list(itertools.islice(matches, offset, offset + count + 1))
            more = len(page) > count
            page = page[:count]
        bundle = searchset(page, base=self._base(request))
        if total is None:
            del bundle["total"]
        else:
            bundle["total"] = total
        if summary or count == 0:
            del bundle["entry"]
        here = f"{self._base(request)}{rtype}"

        def page_url(at: int) -> str:
            query = urlencode([*applied, ("_offset", str(at))] if at else applied)
            return f"{here}?{query}" if query else here

        # the self link names this page (its _offset too), so following it gives this page
        links = [{"relation": "self", "url": page_url(offset)}]
        if offset and count and not summary:
            links.append({"relation": "previous", "url": page_url(max(offset - count, 0))})
        if more:
            links.append({"relation": "next", "url": page_url(offset + count)})
        bundle["link"] = links
        # every patient whose record the answer shows is audited, named in the query or not
        # (a search by code or name across patients opens their records as a read does)
        shown = {p.pk for p in patients} | {pid for pid in map(_patient_of, page) if pid}
        _record_read(request, shown, f"fhir:search:{rtype}")
        if not patients:  # a search across patients: one more entry naming what it showed
            services.record_list_view(
                request.user, f"fhir:search:{rtype}", sorted(shown),
                resources=[f"{r['resourceType']}/{r['id']}" for r in page],
                query=urlencode(applied))
        return Response(bundle)


#: What ``$everything`` takes: the purpose of use and the format; R4's ``_type``, ``_since``,
#: ``start``, ``end`` and ``_count`` are not applied, so they are refused rather than ignored.
EVERYTHING_PARAMS = frozenset({"_purpose", "_format"})


class EverythingView(FHIRView):
    def get(self, request, rid: str):
        if not _prefers_lenient(request):
            for key in request.query_params:
                if key not in EVERYTHING_PARAMS:
                    raise search.SearchError(
                        key, f"$everything does not apply {key} here: it returns the whole "
                             "record (search by type, with date, for a part of it); send "
                             "'Prefer: handling=lenient' to have it ignored.", "not-supported")
        patients = _everything_reach(request)
        patient = _patient_in(patients, rid)
        exporter = Exporter(patients.filter(pk=patient.pk), notes=_sees_notes(request.user))
        bundle = searchset(exporter.resources(), base=self._base(request))
        # an export of the whole record: audited with its purpose of use (HL7 PurposeOfUse code,
        # from ``_purpose`` or the ``X-Purpose-Of-Use`` header; TREAT when not given)
        purpose = (request.query_params.get("_purpose") or request.headers.get("X-Purpose-Of-Use")
                   or "TREAT").strip()[:100]
        writes.audit(request.user, writes.Action.EXPORT, patient=patient, model="fhir:$everything",
                     reason=f"purpose of use: {purpose}", after={"purpose": purpose})
        recipient = smart.reach(request).recipient
        if recipient:  # a backend client is another party: a disclosure, accounted for
            from speciosa.clinic import consents

            consents.disclose(request.user, [patient.pk], recipient=recipient, purpose=purpose,
                              what="fhir:$everything")
        return Response(bundle)


class UnknownView(FHIRView):
    """Any other path under ``/fhir/``: a 404 OperationOutcome, whatever the method."""

    def _not_found(self, request, *args, **kwargs):
        raise Http404(f"Nothing is served at {request.path}; see /fhir/metadata.")

    get = post = put = patch = delete = head = _not_found


class MetadataView(FHIRView):
    """``GET /fhir/metadata``: readable without credentials (a client discovers the server,
    its FHIR release and how to authenticate before it logs in)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        resources = []
        for t in RESOURCE_TYPES:
            params = [{"name": p.name, "definition": p.definition, "type": p.type,
                       "documentation": p.documentation}
                      for p in search.PARAMS[t].values()]
            kept = t in VERSIONED_TYPES
            interactions = [{"code": "read"}, {"code": "vread"}, {"code": "history-instance"},
                            {"code": "search-type"}]
            resources.append({
                "type": t, "interaction": interactions, "versioning": "versioned",
                "readHistory": kept, "searchParam": params,
                "documentation": ("Corrections are versions: _history and vread return every "
                                  "version." if kept else "Past versions are not kept: "
                                  "_history returns the current version; meta.versionId is "
                                  "derived from the content.")})
        return Response({
            "resourceType": "CapabilityStatement", "status": "active", "date": "2026-01-01",
            "kind": "instance", "fhirVersion": c.FHIR_VERSION,
            "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
            "format": ["json", "application/fhir+json"],
            "implementation": {"description": "Speciosa read-only FHIR API",
                               "url": self._base(request)},
            "rest": [{
                "mode": "server",
                "documentation": RESULT_PARAMETERS_DOC,
                "security": security(request),
                "resource": resources,
                "operation": [
                    {"name": "everything", "definition":
                     "http://hl7.org/fhir/OperationDefinition/Patient-everything"},
                    *BULK_OPERATIONS]}],
        })


#: Bulk Data $export (speciosa.interop.bulk): system, Patient and Group (a care team) level.
BULK = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"
BULK_OPERATIONS = [
    {"name": "export", "definition": f"{BULK}export",
     "documentation": "[base]/$export: asynchronous (Prefer: respond-async), purpose of use "
                      "required (_purpose or X-Purpose-Of-Use); _type, _since, _outputFormat "
                      "application/fhir+ndjson; files to the requester only, kept 24 hours."},
    {"name": "patient-export", "definition": f"{BULK}patient-export",
     "documentation": "[base]/Patient/$export: every patient in reach."},
    {"name": "group-export", "definition": f"{BULK}group-export",
     "documentation": "[base]/Group/[id]/$export: a Group is a care team (Group/[CareTeam "
                      "id]), its patients within reach."},
]

#: Types whose past versions are kept (corrections), from the exporter's tables.
VERSIONED_TYPES = frozenset(t for t, tables in ID_PREFIXES.items()
                            if any(table in TABLE_MODELS for _, table in tables))

#: The restful-security-service code system (CapabilityStatement.rest.security.service).
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"
#: Where a SMART client finds the OAuth endpoints in the CapabilityStatement.
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def security(request) -> dict:
    """How to authenticate (CapabilityStatement.rest.security): SMART on FHIR bearer tokens
    (with the oauth-uris extension SMART clients read), the API token and the web session."""
    def url(name: str) -> str:
        return request.build_absolute_uri(reverse(f"oauth2_provider:{name}"))

    return {
        "cors": False,
        "extension": [{"url": OAUTH_URIS, "extension": [
            {"url": "authorize", "valueUri": url("authorize")},
            {"url": "token", "valueUri": url("token")}]}],
        "service": [
            {"coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR",
                         "display": "SMART-on-FHIR"}],
             "text": "SMART on FHIR: Authorization: Bearer <access token> (App Launch, "
                     "Backend Services); see /fhir/.well-known/smart-configuration"},
            {"text": "API token: Authorization: Token <key>"},
            {"text": "Web session (cookie) of Speciosa's login, second factor included"}],
        "description": (
            "Every request except /fhir/metadata and /fhir/.well-known/smart-configuration "
            "needs credentials; without them the answer is 401 with WWW-Authenticate: Bearer, "
            "Token. SMART on FHIR: an app gets a bearer token by the authorization code flow "
            "with PKCE (S256), after the person's whole Speciosa login, second factor included "
            "for staff (standalone launch with launch/patient, or EHR launch with launch); a "
            "backend system by client credentials with a signed JWT (private_key_jwt, RS384 or "
            "ES384), bound to one site. Scopes patient/, user/ and system/ with .read (SMART "
            "v1) or .rs, .r, .s (v2) narrow what the login's role allows, never widen it: a "
            "type without a scope is a 403. An API token is issued by POST /api/v1/auth/token/ "
            "only after the whole login, second factor included; it expires (hours for staff, "
            "days for patients) and is sent as 'Authorization: Token <key>'. A web session "
            "works too once its second factor is done. What a user sees follows their role: a "
            "clinician their care teams' patients, a patient themselves."),
    }


#: What every search accepts besides its parameters (rest.documentation).
RESULT_PARAMETERS_DOC = (
    "Every search takes _count (0-1000, default 100; more is capped at 1000, as the self link "
    "shows; 0 gives only Bundle.total), _sort (a date "
    "parameter of the type, '-' first for newest first), _summary=count (Bundle.total only) and "
    "pages with the next and previous links (_offset; the self link names the page); "
    "_format may be json (nothing else is served: 406). A parameter repeated is AND, commas "
    "within a value are OR. An unsupported parameter is a 400 OperationOutcome naming it; "
    "with 'Prefer: handling=lenient' it is ignored and the self link shows only what was applied.")


def _sees_notes(user) -> bool:
    """Clinical notes are the care team's: a patient's own login does not get them (as on
    the web, where the timeline with notes is a clinician's page)."""
    return not access.has_role(user, Role.PATIENT)


def _prefers_lenient(request) -> bool:
    prefer = request.headers.get("Prefer", "")
    return any(part.strip().replace(" ", "") == "handling=lenient" for part in prefer.split(","))


def _patient_in(patients, rid) -> Patient:
    """The patient ``rid`` among ``patients`` (the request's reach), else a 404."""
    rid = str(rid)
    if not (rid.isascii() and rid.isdigit() and int(rid) <= MAX_DB_ID):
        raise Http404("No such patient")
    try:
        return patients.select_related("site", "care_team").get(pk=int(rid))
    except (Patient.DoesNotExist, ValueError, TypeError):
        raise Http404("No such patient") from None


def _everything_reach(request):
    """``$everything`` shows every type: a bearer token needs a search scope for each."""
    r = smart.reach(request)
    patients = r.patients("Patient", "s")
    if r.token is not None:
        for rtype in RESOURCE_TYPES:
            patients = patients & r.patients(rtype, "s")
    return patients


def _patients(visible, key: str, raw: str) -> list[Patient]:
    """The patients a ``patient``/``subject`` value names (commas are OR), each within the
    request's reach (:func:`speciosa.interop.smart.reach`; 404 when out of reach)."""
    out = []
    for part in search._split(raw):
        ref = search.parse_reference(part, "Patient")
        rtype, _, rid = ref.partition("/")
        if rtype != "Patient" or not rid:
            raise search.SearchError(key, f"{key}={raw}: name a patient (Patient/[id] or [id]).")
        out.append(_patient_in(visible, rid))
    return out


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
