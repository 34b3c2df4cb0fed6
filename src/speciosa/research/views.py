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

from speciosa.clinic import access
from speciosa.clinic.models import Assessment, AuditEntry, Consent, Dose, LabResult, Patient, Role

from . import analysis

_researcher_only = access.role_required(Role.RESEARCHER)


#: Seconds an analysis is reused while the data it was computed from are unchanged.
CACHE_SECONDS = 600


def _data_fingerprint() -> str:
    """Changes whenever a patient, consent, dose, assessment or lab is added, corrected (a
    correction is a new row) or retracted."""
    parts = []
    for model in (Patient, Consent, Dose, Assessment, LabResult):
        agg = model.objects.aggregate(n=Count("pk"), last=Max("pk"))
        parts.append(f"{agg['n']}:{agg['last']}")
    parts += [str(model.objects.filter(retracted=True).count())  # a retraction adds no row
              for model in (Dose, Assessment, LabResult)]
    return "research-analysis:" + "|".join(parts)


def _cached_analysis() -> tuple[analysis.AnalysisResult, dict[str, int]]:
    """The cohort analysis and table counts (no per-patient data), cached per data version."""
    key = _data_fingerprint()
    hit = cache.get(key)
    if hit is None:
        ds, result = analysis.run_cohort_analysis()
        hit = (result, dict(ds.counts))
        cache.set(key, hit, CACHE_SECONDS)
    return hit


@_researcher_only
def cohort(request):
    """Cohort counts, the analysis results table with 95% CIs, the plots and the statement."""
    result, counts = _cached_analysis()
    AuditEntry.objects.create(user=request.user, action=AuditEntry.Action.VIEW,
                              model="ResearchAnalysis",
                              reason="cohort analysis page, de-identified data",
                              after={"cohort": result.cohort})
    models = [{"fit": m, "svg": mark_safe(analysis.scatter_svg(m))}  # our own escaped SVG
              for m in result.models]
    return render(request, "research/cohort.html", {
        "result": result, "models": models, "counts": counts,
    })
