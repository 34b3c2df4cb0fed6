"""FHIR Bulk Data ``$export`` over HTTP (Bulk Data Access IG 2.0, asynchronous pattern).

- Kick-off: ``GET /fhir/$export`` (system), ``/fhir/Patient/$export`` (every patient in
  reach) or ``/fhir/Group/<id>/$export``, where a **Group is a care team**
  (``Group/<CareTeam id>``: that team's patients within the requester's reach). It needs
  ``Prefer: respond-async`` (else 400) and a purpose of use (``_purpose`` or the
  ``X-Purpose-Of-Use`` header; a backend client's registered purpose otherwise; else 400).
  ``_type`` (types, comma-separated or repeated) and ``_since`` (an instant with a time zone,
  not in the future) are honoured; another parameter given twice is a 400;
  ``_outputFormat`` may be ``application/fhir+ndjson`` (or its short forms), anything else is
  a 400; any other parameter is a 400 naming it. Answer: 202 with
  ``Content-Location``, the status URL.
- Disclosure (42 CFR Part 2): an export for another party (a backend client, named by its
  registered name, or any export with ``_recipient=<name>``) holds only the patients with a
  Part 2 consent in force for that recipient (speciosa.clinic.consents); none: 403. Each
  disclosed patient gets a ``disclose`` audit entry (recipient, purpose); the manifest names
  the recipient, the number left out and carries the section 2.32 notice; a file is refused
  (403) once a patient in it revoked or the consent expired. An export without a recipient
  by a clinician of the care team is the program's own use.
- Status: ``GET`` answers 202 with ``X-Progress`` while queued or running, then 200 with the
  manifest (``transactionTime``, ``request``, ``requiresAccessToken: true``, ``output``
  ``[{type, url, count}]``, ``error: []``). ``DELETE`` cancels the export and deletes its
  files (202).
- Files: ``GET /fhir/$export-file/<export>/<Type>.ndjson``, ``application/fhir+ndjson``.

Only the requester sees an export's status and files: the same login *and* the same OAuth
client (or no client); anyone else gets a 404. A file is served only while its requester
still reaches every patient in it (else 403). Exports expire after
``SPECIOSA_BULK_EXPORT_HOURS`` (default 24): their files are deleted by the periodic task
``speciosa.tasks.purge_bulk_exports`` or at the first access after expiry.

What is exported is decided at kick-off, through the same reach as a search
(:func:`speciosa.interop.smart.reach`: the role's patients narrowed by a token's scopes): the
patients' ids and the types are stored with the export, and the work runs on the task queue
(:func:`speciosa.tasks.bulk_export`, eager without a broker), building the resources with
:class:`speciosa.interop.export.Exporter`. Every kick-off is audited with its purpose, the
patients and the types; every file download is audited too.

``_since``: a resource is included when its ``meta.lastUpdated`` is at or after ``_since``;
resources that carry no ``lastUpdated`` (Questionnaire, CareTeam, Practitioner, Consent,
Flag: Speciosa keeps no time of their last change) are always included, since their change
time is unknown, and the manifest says so in an ``extension``.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.http import FileResponse, Http404
from django.utils import timezone
from django.utils.http import http_date
from rest_framework.response import Response

from speciosa.clinic import consent_texts, consents, writes
from speciosa.clinic.models import AuditEntry, CareTeam, Patient

from .export import RESOURCE_TYPES, Exporter, dumps
from .models import BulkExport, SmartClient
from .views import FHIRView, _sees_notes, outcome

log = logging.getLogger(__name__)

OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
KICKOFF_PARAMS = frozenset({"_outputFormat", "_type", "_since", "_purpose", "_format",
                            "_recipient"})
#: Types that are not in the patient compartment: left out of Patient and Group exports.
NOT_PATIENT_COMPARTMENT = frozenset({"Questionnaire"})
NDJSON = "application/fhir+ndjson"
#: How far ahead of the server's clock a ``_since`` may be (a client's clock drifts).
SINCE_CLOCK_SKEW = dt.timedelta(minutes=5)
SINCE_UNKNOWN = "https://speciosa.example/fhir/StructureDefinition/since-unknown-types"
#: Manifest extensions of a disclosure: who receives it, how many patients in reach were left
#: out for want of a Part 2 consent in force for that recipient, and the 42 CFR 2.32 notice.
RECIPIENT_EXT = "https://speciosa.example/fhir/StructureDefinition/disclosed-to"
WITHHELD_EXT = "https://speciosa.example/fhir/StructureDefinition/withheld-without-part2-consent"
NOTICE_EXT = "https://speciosa.example/fhir/StructureDefinition/part2-notice"


class BadRequest(ValueError):
    """A kick-off Speciosa cannot take: a 400 OperationOutcome naming the parameter."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


def folder(export: BulkExport) -> Path:
    return Path(settings.BULK_EXPORT_DIR) / str(export.pk)


def remove(export: BulkExport) -> None:
    """Delete an export's files and its row."""
    shutil.rmtree(folder(export), ignore_errors=True)
    shutil.rmtree(folder(export).with_name(f"{export.pk}.part"), ignore_errors=True)
    BulkExport.objects.filter(pk=export.pk).delete()


def purge_expired(now: dt.datetime | None = None) -> int:
    """Delete every expired export (files and row); how many."""
    expired = list(BulkExport.objects.filter(expires__lte=now or timezone.now()))
    for export in expired:
        remove(export)
    return len(expired)


# --------------------------------------------------------------------------- kick-off

def _since(raw: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or timezone.is_naive(when):
        raise BadRequest(f"_since={raw}: give an instant with a time zone, such as "
                         "2026-01-31T00:00:00Z.", "_since")
    if when > timezone.now() + SINCE_CLOCK_SKEW:
        raise BadRequest(f"_since={raw} is in the future: nothing can have changed since then "
                         "(check the client's clock and time zone).", "_since")
    return when


def _types(request, reach, raw: str | None, level: str) -> list[str]:
    """The types to export: ``_type`` (each must be served, and allowed by a bearer token's
    scopes: else 400 / 403), or every type the scopes allow."""
    from django.core.exceptions import PermissionDenied

    if raw is not None:
        wanted = [t.strip() for t in raw.split(",") if t.strip()]
        unknown = [t for t in wanted if t not in RESOURCE_TYPES]
        if not wanted or unknown:
            raise BadRequest(f"_type={raw}: {', '.join(unknown) or 'no type'} is not exported "
                             f"here; types: {', '.join(RESOURCE_TYPES)}.", "_type")
        for t in wanted:
            reach.patients(t, "s")  # a type outside the token's scopes: 403
        return list(dict.fromkeys(wanted))
    out = []
    for t in RESOURCE_TYPES:
        if level != "system" and t in NOT_PATIENT_COMPARTMENT:
            continue
        try:
            reach.patients(t, "s")
        except PermissionDenied:
            continue
        out.append(t)
    if not out:
        reach.patients("Patient", "s")  # raises the 403 naming what is missing
    return out


def _purpose(request, reach) -> str:
    purpose = (request.query_params.get("_purpose") or request.headers.get("X-Purpose-Of-Use")
               or "").strip()
    if not purpose and reach.application is not None:
        client = SmartClient.objects.filter(application=reach.application).first()
        purpose = client.purpose if client else ""
    if not purpose:
        raise BadRequest("Name the purpose of use of this export: _purpose=<text> or the "
                         "X-Purpose-Of-Use header (e.g. TREAT, HOPERAT, or a study's name). "
                         "It is recorded in the audit trail.", "_purpose")
    return purpose[:300]


def _recipient(request, reach) -> str:
    """Who receives the export when it is a disclosure to another party: a backend client
    (SMART Backend Services) is one, named by its registered name; anyone else names one with
    ``_recipient``. Empty: the program's own use (a treating clinician, the patient)."""
    named = " ".join((request.query_params.get("_recipient") or "").split())
    client = SmartClient.objects.filter(application=reach.application).first() \
        if reach.application is not None else None
    if client is not None and client.kind == SmartClient.Kind.BACKEND:
        own = reach.application.name
        if named and consents.normalise(named) != consents.normalise(own):
            raise BadRequest(f"A backend client's export goes to the client itself ({own!r}); "
                             "_recipient cannot name another party.", "_recipient")
        return own
    if len(named) > consents.RECIPIENT_MAX:
        raise BadRequest(f"_recipient: at most {consents.RECIPIENT_MAX} characters.", "_recipient")
    return named


def kick_off(request, level: str, group: str | None = None) -> BulkExport:
    """Validate a kick-off request, record and audit the export, and queue its work."""
    from . import smart

    prefer = [p.strip().replace(" ", "") for p in request.headers.get("Prefer", "").split(",")]
    if "respond-async" not in prefer:
        raise BadRequest("A bulk export runs asynchronously: send 'Prefer: respond-async'.")
    for key, values in request.query_params.lists():
        if key not in KICKOFF_PARAMS:
            raise BadRequest(f"{key} is not supported by $export here; supported: "
                             f"{', '.join(sorted(KICKOFF_PARAMS - {'_format'}))}.", key)
        if len(values) > 1 and key != "_type":  # _type repeated: every type it names
            raise BadRequest(f"{key} is given {len(values)} times: give it once.", key)
    fmt = request.query_params.get("_outputFormat")
    if fmt is not None and fmt not in OUTPUT_FORMATS:
        raise BadRequest(f"_outputFormat={fmt} is not served; use application/fhir+ndjson.",
                         "_outputFormat")
    since_raw = request.query_params.get("_since")
    since = _since(since_raw) if since_raw is not None else None
    reach = smart.reach(request)
    type_values = request.query_params.getlist("_type")
    types = _types(request, reach, ",".join(type_values) if type_values else None, level)
    patients = None
    for t in types:  # never wider than the narrowest type's reach
        qs = reach.patients(t, "s")
        patients = qs if patients is None else patients & qs
    if level == "group":
        team = CareTeam.objects.filter(pk=group).first() if str(group).isdigit() else None
        patients = patients.filter(care_team=team) if team else Patient.objects.none()
        if team is None or not patients.exists():
            raise Http404(f"No Group/{group} here (a Group is a care team whose patients you "
                          "may see).")
    purpose = _purpose(request, reach)
    recipient = _recipient(request, reach)
    ids = sorted(set(patients.values_list("pk", flat=True)))
    withheld = 0
    if recipient:
        in_reach = ids
        client = SmartClient.objects.filter(application=reach.application).first() \
            if reach.application is not None else None
        if client is not None and client.kind == SmartClient.Kind.BACKEND and client.site_id:
            # its reach is already narrowed to the consented: count the rest of its site
            in_reach = list(Patient.objects.filter(site_id=client.site_id)
                            .values_list("pk", flat=True))
        ids = sorted(consents.part2_in_force(ids, recipient))
        withheld = len(set(in_reach) - set(ids))
        if not ids and in_reach:
            raise consents.NoConsentInForce(
                "Nothing exported: " + consents.no_consent_message(recipient, len(in_reach))
                .removeprefix("Not disclosed: "))
    with transaction.atomic():
        export = BulkExport.objects.create(
            user=request.user, application=reach.application, level=level,
            group=str(group or ""), request_url=request.build_absolute_uri()[:2000],
            purpose=purpose, patient_ids=ids, types=types, since=since,
            notes=_sees_notes(request.user), recipient=recipient, withheld=withheld,
            expires=timezone.now() + dt.timedelta(hours=settings.BULK_EXPORT_HOURS))
        writes.audit(request.user, AuditEntry.Action.EXPORT, None, model="fhir:$export",
                     reason=f"purpose of use: {purpose}"
                            + (f"; disclosed to {recipient}" if recipient else ""),
                     after={"kind": "fhir-bulk", "export": str(export.pk), "level": level,
                            "group": export.group, "types": types,
                            "since": since.isoformat() if since else None, "patients": ids,
                            "client": reach.application.client_id if reach.application else "",
                            "purpose": purpose, "recipient": recipient, "withheld": withheld})
        if recipient:  # one entry per patient: the accounting of disclosures
            consents.disclose(request.user, ids, recipient=recipient, purpose=purpose,
                              what="fhir:$export", detail={"export": str(export.pk),
                                                           "types": types})
        transaction.on_commit(lambda pk=str(export.pk): enqueue(pk))
    return export


def enqueue(export_id: str) -> None:
    from speciosa import tasks

    tasks.bulk_export.delay(export_id)


# --------------------------------------------------------------------------- the work

def run(export_id: str) -> dict[str, int]:
    """Build and write an export's NDJSON files (the task's body). Rewrites its folder whole,
    so that a redelivered task is harmless; stops when the export was cancelled meanwhile."""
    export = BulkExport.objects.filter(pk=export_id).first()
    if export is None or export.status in (BulkExport.Status.DONE, BulkExport.Status.CANCELLED):
        return {}
    started = timezone.now()
    BulkExport.objects.filter(pk=export.pk).update(status=BulkExport.Status.RUNNING,
                                                   progress="starting")
    final = folder(export)
    part = final.with_name(f"{export.pk}.part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    exporter = Exporter(Patient.objects.filter(pk__in=export.patient_ids), notes=export.notes)
    counts: dict[str, int] = {}
    unknown_since: list[str] = []
    try:
        for i, rtype in enumerate(export.types):
            if not BulkExport.objects.filter(pk=export.pk).exclude(
                    status=BulkExport.Status.CANCELLED).update(
                    progress=f"{i} of {len(export.types)} types written"):
                shutil.rmtree(part, ignore_errors=True)  # cancelled or deleted meanwhile
                return {}
            n = 0
            with open(part / f"{rtype}.ndjson", "w", encoding="utf-8") as fh:
                for res in exporter.resources([rtype]):
                    if res["resourceType"] != rtype:
                        continue
                    if export.since is not None:
                        updated = (res.get("meta") or {}).get("lastUpdated")
                        if updated is None:
                            if rtype not in unknown_since:
                                unknown_since.append(rtype)
                        elif dt.datetime.fromisoformat(updated) < export.since:
                            continue
                    fh.write(dumps(res))
                    fh.write("\n")
                    n += 1
            if n:
                counts[rtype] = n
            else:
                (part / f"{rtype}.ndjson").unlink()
    except Exception as exc:
        shutil.rmtree(part, ignore_errors=True)
        from speciosa.tasks import TRANSIENT

        if not isinstance(exc, TRANSIENT):  # a retry would meet it again: say so
            BulkExport.objects.filter(pk=export.pk).update(
                status=BulkExport.Status.FAILED, error=f"{type(exc).__name__}"[:500])
        raise
    shutil.rmtree(final, ignore_errors=True)
    part.rename(final)
    done = BulkExport.objects.filter(pk=export.pk).exclude(
        status=BulkExport.Status.CANCELLED).update(
        status=BulkExport.Status.DONE, transaction_time=started,
        output=[{"type": t, "count": n} for t, n in counts.items()],
        progress=" ".join(unknown_since), error="")
    if not done:
        shutil.rmtree(final, ignore_errors=True)
    log.info("bulk export written", extra={"task": "bulk_export", "count": sum(counts.values())})
    return counts


# --------------------------------------------------------------------------- views

def _own(request, export_id) -> BulkExport:
    """The export ``export_id`` if this requester made it (same login, same OAuth client or
    none), still kept; otherwise 404 (an expired one is deleted now)."""
    from . import smart

    export = BulkExport.objects.filter(pk=export_id, user=request.user,
                                       application=smart.reach(request).application).first()
    if export is None or export.status == BulkExport.Status.CANCELLED:
        raise Http404("No such export here (it may have expired or been deleted).")
    if export.expires <= timezone.now():
        remove(export)
        raise Http404("This export has expired; its files were deleted. Start a new one.")
    return export


def _still_in_reach(request, export: BulkExport, rtype: str) -> None:
    """A file holds the patients its requester could see at kick-off: it is served only while
    they still may (a clinician taken off the care team, a patient context changed, a
    backend client moved to another site: 403)."""
    from django.core.exceptions import PermissionDenied

    from . import smart

    wanted = set(export.patient_ids)
    if not wanted:
        return
    reachable = set(smart.reach(request).patients(rtype, "s")
                    .filter(pk__in=wanted).values_list("pk", flat=True))
    if reachable != wanted:
        raise PermissionDenied("This export holds patients you may no longer see (your care "
                               "teams or your access changed since it began): start a new "
                               "export.")


def _still_consented(export: BulkExport) -> None:
    """A disclosure's files are served only while every patient in them still has a Part 2
    consent in force for the recipient (a revocation or an expiry since kick-off: 403)."""
    from django.core.exceptions import PermissionDenied

    if not export.recipient or not export.patient_ids:
        return
    if len(consents.part2_in_force(export.patient_ids, export.recipient)) != len(export.patient_ids):
        raise PermissionDenied("A patient in this export revoked their 42 CFR Part 2 consent for "
                               f"{export.recipient!r}, or it expired, since the export began: "
                               "nothing is served. Start a new export.")


class KickOffView(FHIRView):
    """``GET [base]/$export``, ``[base]/Patient/$export``, ``[base]/Group/[id]/$export``."""

    level = "system"

    def handle_exception(self, exc):
        if isinstance(exc, BadRequest):
            return Response(outcome("invalid" if exc.param != "_outputFormat" else
                                    "not-supported", str(exc), expression=exc.param),
                            status=400)
        return super().handle_exception(exc)

    def get(self, request, gid: str | None = None):
        export = kick_off(request, self.level, gid)
        status_url = request.build_absolute_uri(f"/fhir/$export-status/{export.pk}")
        body = outcome("informational", "The export is queued; poll the Content-Location URL.",
                       "information")
        return Response(body, status=202, headers={"Content-Location": status_url})


class PatientKickOffView(KickOffView):
    level = "patient"


class GroupKickOffView(KickOffView):
    level = "group"


class StatusView(FHIRView):
    """``GET`` the status or the manifest; ``DELETE`` cancels and deletes."""

    def get(self, request, export_id):
        export = _own(request, export_id)
        if export.status in (BulkExport.Status.QUEUED, BulkExport.Status.RUNNING):
            return Response(status=202, headers={"X-Progress": export.progress or export.status,
                                                 "Retry-After": "2"})
        if export.status == BulkExport.Status.FAILED:
            return Response(outcome("exception", "The export failed; start a new one. "
                                    f"({export.error})"), status=500)
        base = request.build_absolute_uri(f"/fhir/$export-file/{export.pk}/")
        manifest = {
            "transactionTime": export.transaction_time.isoformat(),
            "request": export.request_url, "requiresAccessToken": True,
            "output": [{"type": o["type"], "url": f"{base}{o['type']}.ndjson",
                        "count": o["count"]} for o in export.output],
            "error": []}
        extension = {}
        if export.since is not None and export.progress:
            extension[SINCE_UNKNOWN] = export.progress.split()
        if export.recipient:
            extension.update({RECIPIENT_EXT: export.recipient, WITHHELD_EXT: export.withheld,
                              NOTICE_EXT: consent_texts.REDISCLOSURE_NOTICE})
        if extension:
            manifest["extension"] = extension
        return Response(manifest, headers={"Expires": http_date(export.expires.timestamp())},
                        content_type="application/json")

    def delete(self, request, export_id):
        export = _own(request, export_id)
        BulkExport.objects.filter(pk=export.pk).update(status=BulkExport.Status.CANCELLED)
        remove(export)
        writes.audit(request.user, AuditEntry.Action.EXPORT, None, model="fhir:$export",
                     reason="export cancelled and deleted by its requester",
                     after={"export": str(export.pk), "deleted": True})
        return Response(status=202)


class FileView(FHIRView):
    """``GET [base]/$export-file/<export>/<Type>.ndjson``: to the requester only."""

    def perform_content_negotiation(self, request, force=False):
        # the file is NDJSON whatever the client accepts (Accept: application/fhir+ndjson)
        return super().perform_content_negotiation(request, force=True)

    def get(self, request, export_id, name: str):
        export = _own(request, export_id)
        types = {o["type"] for o in export.output}
        rtype = name.removesuffix(".ndjson")
        if export.status != BulkExport.Status.DONE or rtype not in types or \
                not name.endswith(".ndjson"):
            raise Http404(f"No file {name} in this export.")
        _still_in_reach(request, export, rtype)
        _still_consented(export)
        path = folder(export) / f"{rtype}.ndjson"
        if not path.is_file():
            raise Http404(f"No file {name} in this export.")
        writes.audit(request.user, AuditEntry.Action.VIEW, None, model="fhir:$export-file",
                     reason=f"purpose of use: {export.purpose}",
                     after={"export": str(export.pk), "file": name,
                            "patients": export.patient_ids})
        return FileResponse(open(path, "rb"), content_type=NDJSON)  # noqa: SIM115

