"""Researcher pages: de-identified cohort counts, the cohort analysis and its plots.

Only the researcher role reaches them (anyone else: 403; anonymous: the login page). They
show aggregates of the de-identified data of consented patients and nothing identifiable:
no names, MRNs, dates or pseudonyms.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from speciosa.clinic import access, writes
from speciosa.clinic.models import (
    AuditEntry,
    Role,
)
from speciosa.web.forms import TokenForm, apply_service_errors, submission_key

from . import analysis, cached, exports
from .models import ResearchExport

_researcher_only = access.role_required(Role.RESEARCHER)


def _left_out(report: dict) -> list[tuple[str, int]]:
    """(reason, records) for every reason records were left out, e.g. implausible dates."""
    return [(reason, sum(kinds.values())) for reason, kinds in report["records_left_out"].items()
            if sum(kinds.values())]


@_researcher_only
def cohort(request):
    """Cohort counts, the analysis results table with 95% CIs, the plots and the statement.

    Audited as a view with who (the researcher), what (the cohort counts and the k of the
    data analysed) and why (the research role's one purpose: cohort analysis)."""
    hit, current = cached.get()
    if hit is None:  # the first analysis of this site is being computed
        return render(request, "research/cohort.html", {"computing": True, "cli_command": CLI_COMMAND})
    result, counts, report = hit
    writes.audit(request.user, AuditEntry.Action.VIEW, None, model="ResearchAnalysis",
                   reason="purpose of use: research (cohort analysis page, de-identified data)",
                   after={"purpose": "research: cohort analysis", "cohort": result.cohort,
                          "k": report["k_anonymity"]["k"], "rows": counts})
    models = [{"fit": m, "svg": mark_safe(analysis.scatter_svg(m))}  # our own escaped SVG
              for m in result.models]
    return render(request, "research/cohort.html", {
        "result": result, "models": models, "counts": counts, "report": report,
        "left_out": _left_out(report), "cli_command": CLI_COMMAND, "current": current,
    })


#: The command line that makes the same export (the CLI's own flags: tests/research/test_web_export.py
#: checks they agree with ``speciosa export research --help``).
CLI_COMMAND = "speciosa export research --out DIR --researcher USERNAME --purpose TEXT"


class ExportForm(TokenForm):
    purpose = forms.CharField(
        label="Purpose of use", max_length=300, required=False,
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": 300}),
        help_text="The approved study (and its protocol number) the data are for; recorded in "
                  "the audit trail with the export.")


@_researcher_only
def export_list(request):
    """The researcher's own exports (state, expiry, download) and the form to ask for one.

    POST: ask for an export (purpose of use required); it is built on the task queue and
    the page shows it once ready. A double submit stores one export."""
    form = ExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            exports.request_export(request.user, form.cleaned_data["purpose"],
                                   submission_key(request, form))
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            return redirect("research:exports")
    mine = ResearchExport.objects.filter(user=request.user).order_by("-created_at")[:20]
    return render(request, "research/exports.html", {
        "form": form, "exports": mine, "key_problem": exports.key_problem(),
        "cli_command": CLI_COMMAND, "hours": settings.RESEARCH_EXPORT_HOURS,
        "pending": any(e.status in (ResearchExport.Status.QUEUED, ResearchExport.Status.RUNNING)
                       for e in mine),
    }, status=400 if request.method == "POST" else 200)


@login_required
@require_GET
def export_download(request, export_id: int):
    """The zip of one's own finished export; anyone else's (or none, or expired): 404."""
    from django.core.exceptions import PermissionDenied
    from django.http import HttpResponseForbidden

    try:
        path = exports.download(request.user, export_id)
    except PermissionDenied as exc:  # say why (a consent withdrawn since it was built)
        return HttpResponseForbidden(str(exc), content_type="text/plain; charset=utf-8")
    return FileResponse(open(path, "rb"), as_attachment=True,  # noqa: SIM115 (closed by Django)
                        filename=f"speciosa-research-{export_id}.zip",
                        content_type="application/zip")
