"""Researcher pages: de-identified cohort counts and the cohort analysis."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from speciosa.clinic import access
from speciosa.clinic.models import Role


@login_required
def cohort(request):
    """The cohort page (placeholder while the analysis is built)."""
    if access.role_of(request.user) != Role.RESEARCHER:
        raise PermissionDenied("Research pages are for the researcher role.")
    return render(request, "web/researcher.html")
