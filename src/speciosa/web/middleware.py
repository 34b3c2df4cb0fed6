"""Show times and count diary days in the site's time zone."""

from __future__ import annotations

import zoneinfo

from django.utils import timezone


class SiteTimezoneMiddleware:
    """A patient's "today" is the day at their clinic, not on the server.

    A patient gets their site's zone; a clinician or administrator with a site on their
    profile gets that site's zone; everyone else the server default (``SPECIOSA_TIME_ZONE``).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            patient = getattr(user, "patient", None)
            if patient is not None:
                name = patient.site.time_zone
            else:
                profile = getattr(user, "profile", None)
                if profile is not None and profile.site_id:
                    name = profile.site.time_zone
        if name:
            try:
                timezone.activate(zoneinfo.ZoneInfo(name))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
