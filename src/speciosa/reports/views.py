"""Views of the charts and the visit report (placeholders until the builders land)."""

from __future__ import annotations

from django.http import Http404


def patient_charts(request, patient_id):
    """Placeholder."""
    raise Http404


def my_charts(request):
    """Placeholder."""
    raise Http404


def visit_report(request, patient_id):
    """Placeholder."""
    raise Http404
