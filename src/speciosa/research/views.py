"""Researcher pages: de-identified cohort counts, the cohort analysis and its plots.

Only the researcher role reaches them (anyone else: 403; anonymous: the login page). They
show aggregates of the de-identified data of consented patients and nothing identifiable:
no names, MRNs, dates or pseudonyms.
"""

from __future__ import annotations

from django.core.cache import cache
from django.db.models import Count, Max
from django.shortcuts import render
from django.utils.safestring import mark_safe

from speciosa.clinic import access, writes
from speciosa.clinic.models import (
    Assessment,
    AuditEntry,
    Consent,
    DiaryDay,
    Dose,
    LabResult,
    Patient,
    Role,
)

from . import analysis

_researcher_only = access.role_required(Role.RESEARCHER)


#: Seconds an analysis is reused while the data it was computed from are unchanged.
CACHE_SECONDS = 600


def _data_fingerprint() -> str:
    """Changes whenever a patient, consent, diary day, dose, assessment or lab is added,
    corrected (a correction is a new row) or retracted, and every day (the withheld recent
    days are counted back from today)."""
    from django.utils import timezone

    parts = [timezone.now().date().isoformat()]
    for model in (Patient, Consent, DiaryDay, Dose, Assessment, LabResult):
        agg = model.objects.aggregate(n=Count("pk"), last=Max("pk"))
        parts.append(f"{agg['n']}:{agg['last']}")
    parts += [str(model.objects.filter(retracted=True).count())  # a retraction adds no row
              for model in (Dose, Assessment, LabResult)]
    return "research-analysis:" + "|".join(parts)


def _cached_analysis() -> tuple[analysis.AnalysisResult, dict[str, int], dict]:
    """The cohort analysis, table counts and de-identification report (no per-patient
    data), cached per data version."""
    key = _data_fingerprint()
    hit = cache.get(key)
    if hit is None:
        ds, result = analysis.run_cohort_analysis()
        hit = (result, dict(ds.counts), ds.report)
        cache.set(key, hit, CACHE_SECONDS)
    return hit


def _left_out(report: dict) -> list[tuple[str, int]]:
    """(reason, records) for every reason records were left out, e.g. implausible dates."""
    return [(reason, sum(kinds.values())) for reason, kinds in report["records_left_out"].items()
            if sum(kinds.values())]


@_researcher_only
def cohort(request):
    """Cohort counts, the analysis results table with 95% CIs, the plots and the statement.

    Audited as a view with who (the researcher), what (the cohort counts and the k of the
    data analysed) and why (the research role's one purpose: cohort analysis)."""
    result, counts, report = _cached_analysis()
    writes.audit(request.user, AuditEntry.Action.VIEW, None, model="ResearchAnalysis",
                   reason="purpose of use: research (cohort analysis page, de-identified data)",
                   after={"purpose": "research: cohort analysis", "cohort": result.cohort,
                          "k": report["k_anonymity"]["k"], "rows": counts})
    models = [{"fit": m, "svg": mark_safe(analysis.scatter_svg(m))}  # our own escaped SVG
              for m in result.models]
    return render(request, "research/cohort.html", {
        "result": result, "models": models, "counts": counts, "report": report,
        "left_out": _left_out(report),
    })
