"""Show times and count diary days in the site's time zone; speak the login's language."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.utils import timezone, translation
from django.utils.cache import patch_vary_headers

from speciosa.clinic import access
from speciosa.clinic.models import Role


def user_language(user) -> str | None:
    """The language ``user`` chose (``Profile.language``), if they chose one of
    ``settings.LANGUAGES``; ``None`` for an anonymous visitor and a login that did not."""
    if user is None or not user.is_authenticated:
        return None
    profile = access.profile_of(user)  # with its site: the one read of the request
    code = getattr(profile, "language", "") or ""
    return code if code in dict(settings.LANGUAGES) else None


#: Paths that speak English whatever the login's language: the API and FHIR (their messages,
#: such as a service's validation message, are read by programs and logged; docs/translation.md).
ENGLISH_ONLY = ("/api/", "/fhir/")


class UserLanguageMiddleware:
    """The request runs in the logged-in user's language (``Profile.language``); without one
    (anonymous, or never chosen), in the language cookie's or the browser's Accept-Language
    among ``settings.LANGUAGES``; else English (docs/translation.md). The API and FHIR
    (:data:`ENGLISH_ONLY`) are always English.

    Placed after the authentication middleware (it needs ``request.user``) and before the
    session, second-factor and message middleware, whose redirects and notices are then in
    the same language. The language in force before the request is restored after it, so
    code that runs after a response in the same thread (tests, eager tasks) is not left in a
    patient's language. ``Content-Language`` says which language the page is in.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(ENGLISH_ONLY):
            language = "en"  # the API's messages are English for everyone
        else:
            language = (user_language(getattr(request, "user", None))
                        or translation.get_language_from_request(request))
        with translation.override(language):
            request.LANGUAGE_CODE = translation.get_language()
            response = self.get_response(request)
        patch_vary_headers(response, ("Accept-Language",))
        response.headers.setdefault("Content-Language", request.LANGUAGE_CODE)
        return response


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
            # a patient login's record (with its site: the view's own_patient reuses it);
            # a staff login has none to look for
            patient = access.linked_patient(user) if access.has_role(user, Role.PATIENT) else None
            if patient is not None:
                name = patient.site.time_zone
            else:
                profile = access.profile_of(user)  # with its site, read by the role check
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


class NoStoreMiddleware:
    """``Cache-Control: no-store`` (and ``private``) on every response to a logged-in user and
    on every ``/api/`` and ``/fhir/`` response: pages and data about patients are kept by no
    browser cache, proxy or back button (issue #11, item 12). The login page, health check
    and static files (served before this) stay cacheable."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.utils.cache import patch_cache_control

        response = self.get_response(request)
        user = getattr(request, "user", None)
        logged_in = user is not None and user.is_authenticated
        if logged_in or request.path.startswith(("/api/", "/fhir/")):
            patch_cache_control(response, no_store=True, private=True)
        return response


class PlainNotFoundMiddleware:
    """With ``SPECIOSA_DEBUG`` on (the demo), a 404 is the site's own page, as in production,
    not Django's debug page that lists every URL pattern to anyone (issue #11, item 12).
    Without debug Django already does this; then this middleware does nothing."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.conf import settings

        response = self.get_response(request)
        unmatched = getattr(request, "resolver_match", None) is None
        if settings.DEBUG and response.status_code == 404 and unmatched:
            from django.urls import Resolver404
            from django.views.defaults import page_not_found

            return page_not_found(request, Resolver404())  # no URL matched
        return response

    def process_exception(self, request, exception):
        from django.conf import settings
        from django.http import Http404

        if settings.DEBUG and isinstance(exception, Http404):
            from django.views.defaults import page_not_found

            return page_not_found(request, exception)
        return None
