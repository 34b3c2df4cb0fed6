"""Research exports from the browser: the researcher names the purpose of use on the research
page, the export is built on the task queue (:func:`speciosa.tasks.research_export`), and the
zip (the same files as ``speciosa export research``) is downloaded by that researcher only,
until it expires.

Audit trail: the request (``create`` of the ResearchExport, with its purpose), the export itself
(one ``export`` entry with recipient, purpose and the exported patients' ids, written once the
zip is in place) and each download (``view``, with the purpose).
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import zipfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from speciosa.clinic import access, writes
from speciosa.clinic.models import AuditEntry

from .models import ResearchExport

log = logging.getLogger(__name__)

#: The shortest purpose of use accepted (characters): "study" alone says nothing.
MIN_PURPOSE = 10


def zip_path(export: ResearchExport) -> Path:
    return Path(settings.RESEARCH_EXPORT_DIR) / f"{export.pk}.zip"


def key_problem() -> str:
    """Why the site cannot make a research export now ('' when it can): the missing key."""
    from . import deid

    try:
        deid.site_key()
    except deid.ResearchKeyError:  # the message names a server path: not for the page
        return ("the site's research key is not set (SPECIOSA_RESEARCH_KEY, or the key file "
                "SPECIOSA_RESEARCH_KEY_FILE: see docs/configuration.md); ask the administrator")
    return ""


def request_export(user, purpose: str, token=None) -> ResearchExport:
    """Record, audit and queue a research export for ``user`` (a researcher).

    A retry with the same submission token returns the first export (one row, one task).

    Raises
    ------
    ValidationError
        Under ``purpose`` when it is missing or too short; under ``__all__`` when the site
        has no research key (nothing is stored).
    PermissionDenied
        When ``user`` is not an active researcher.
    """
    from django.core.exceptions import PermissionDenied

    if not access.can_receive_research_export(user):
        raise PermissionDenied("Research exports are made for researchers only.")
    purpose = " ".join((purpose or "").split())
    if len(purpose) < MIN_PURPOSE:
        raise ValidationError({"purpose": (
            "Say what the data will be used for (at least "
            f"{MIN_PURPOSE} characters, e.g. the approved study and its protocol number): it "
            "is recorded in the audit trail with the export.")})
    if len(purpose) > 300:
        raise ValidationError({"purpose": "Keep the purpose of use to 300 characters."})
    problem = key_problem()
    if problem:
        raise ValidationError({"__all__": f"This site cannot make research exports yet: {problem}."})

    def create():
        export = ResearchExport.objects.create(
            user=user, purpose=purpose,
            expires=timezone.now() + dt.timedelta(hours=settings.RESEARCH_EXPORT_HOURS))
        writes.audit(user, AuditEntry.Action.CREATE, export, reason=f"purpose of use: {purpose}",
                     after={"kind": "research", "export": export.pk, "purpose": purpose,
                            "expires": export.expires.isoformat()})
        transaction.on_commit(lambda pk=export.pk: enqueue(pk))
        return export

    export, _ = writes.once(user, token, "research-export", create, model=ResearchExport)
    return export


def enqueue(export_id: int) -> None:
    from speciosa import tasks

    tasks.research_export.delay(export_id)


def run(export_id: int) -> int | None:
    """Build one export's zip (the task's body); returns the number of patients exported.

    A redelivered or retried task finds the export done and does nothing; a half-written zip
    is rewritten; the ``export`` audit entry is written once, with the state change."""
    import getpass

    from . import dataset, deid

    export = ResearchExport.objects.filter(pk=export_id).select_related("user").first()
    if export is None or export.status == ResearchExport.Status.DONE:
        return None
    ResearchExport.objects.filter(pk=export.pk).update(status=ResearchExport.Status.RUNNING)
    final = zip_path(export)
    part = final.with_name(final.name + ".part")
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        key = deid.site_key()
        with tempfile.TemporaryDirectory(prefix="research-export-") as tmp:
            folder = Path(tmp) / "export"
            ds, files = dataset.write_streamed(deid.Deidentifier(key), folder,
                                               options=dataset.options_from_settings())
            with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as zf:
                for path in sorted(folder.rglob("*")):
                    if path.is_file():
                        zf.write(path, f"speciosa-research/{path.relative_to(folder)}")
        part.replace(final)
    except Exception as exc:
        part.unlink(missing_ok=True)
        from speciosa.tasks import TRANSIENT

        if not isinstance(exc, TRANSIENT):  # a retry would meet it again: say so
            ResearchExport.objects.filter(pk=export.pk).update(
                status=ResearchExport.Status.FAILED, error=type(exc).__name__[:500])
        raise
    with transaction.atomic():
        done = ResearchExport.objects.filter(pk=export.pk).exclude(
            status=ResearchExport.Status.DONE).update(
            status=ResearchExport.Status.DONE, finished_at=timezone.now(),
            patients=ds.n_exported, size=final.stat().st_size, error="")
        if done:
            dataset.audit_export(ds, files, user=export.user, purpose=export.purpose,
                                 os_user=getpass.getuser(),
                                 extra={"export": export.pk, "via": "research page"})
    return ds.n_exported


def own(user, export_id) -> ResearchExport:
    """``user``'s own export with ``export_id``; anyone else's, or none: 404."""
    export = ResearchExport.objects.filter(pk=export_id, user=user).first()
    if export is None or not access.can_receive_research_export(user):
        raise Http404("No such research export of yours.")
    return export


def _still_consented(export: ResearchExport) -> None:
    """The zip is given out only while every patient in it (the ids its ``export`` audit
    entry names) still has a signed, unrevoked research consent: a withdrawal since it was
    built refuses it (403), as a Part 2 revocation refuses a FHIR bulk export's files."""
    from django.core.exceptions import PermissionDenied

    from . import dataset

    entry = (AuditEntry.objects.filter(action=AuditEntry.Action.EXPORT, model="ResearchExport",
                                       after__export=export.pk).order_by("-pk").first())
    held = set((entry.after or {}).get("patient_ids") or []) if entry else None
    if held is None or not held <= set(dataset.consented_patient_ids()):
        raise PermissionDenied("A patient in this research export withdrew their research "
                               "consent since it was built (or what it holds is not on "
                               "record): it is not given out. Ask for a new export.")


def download(user, export_id) -> Path:
    """The zip of ``user``'s finished, unexpired export (audited as a view); else 404."""
    export = own(user, export_id)
    path = zip_path(export)
    if export.status != ResearchExport.Status.DONE or not path.is_file():
        raise Http404("This research export is not ready.")
    if export.expires <= timezone.now():
        raise Http404("This research export has expired; ask for a new one.")
    _still_consented(export)
    writes.audit(user, AuditEntry.Action.VIEW, export,
                 reason=f"purpose of use: {export.purpose}",
                 after={"kind": "research", "export": export.pk, "download": path.name,
                        "purpose": export.purpose})
    return path


def purge_expired(now: dt.datetime | None = None) -> int:
    """Delete expired exports (zip and row); returns how many."""
    expired = list(ResearchExport.objects.filter(expires__lte=now or timezone.now()))
    for export in expired:
        zip_path(export).unlink(missing_ok=True)
        zip_path(export).with_name(zip_path(export).name + ".part").unlink(missing_ok=True)
        export.delete()
    return len(expired)
