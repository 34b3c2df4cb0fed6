"""The patient's side as an installable, offline-capable web app (issue 17; docs/offline.md).

- ``/me/manifest.webmanifest``: the web app manifest (start and scope ``/me/``: the patient's
  pages only; staff pages are never part of the app).
- ``/me/sw.js``: the service worker, served from ``/me/`` so that its scope is the patient's
  pages and nothing else (a staff page is never controlled by it). Its code is the static file
  ``speciosa/sw.js``, with the vendored Workbox runtime it imports (``speciosa/workbox/``,
  nothing from a CDN) and a configuration line written here.
- ``/me/offline/``: the page shown for a patient page that is not kept on the phone.
- ``/me/offline/help/``: whom to call, after a diary with an urgent symptom saved offline.
- ``/me/sync/``: what the service worker needs to send queued diaries: who is logged in, a
  fresh CSRF token (the queued form's own one may have been rotated by a new login) and a few
  new one-time submission tokens for diaries written offline.

Which responses the service worker may keep on the phone is decided here, on the server: a
view marked with :func:`offline_copy` sends ``X-Speciosa-Offline: keep`` on a patient's own
page under ``/me/``; the service worker keeps nothing without it, whatever else it fetches.
"""

from __future__ import annotations

import functools
import hashlib
import json

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import get_language
from django.views.decorators.http import require_GET

from speciosa.clinic import access, crisis
from speciosa.clinic.models import Role

from . import forms

#: The response header that lets the service worker keep a copy of a page on the phone.
OFFLINE_HEADER = "X-Speciosa-Offline"
#: The request header the service worker sends when it replays a queued diary.
REPLAY_HEADER = "X-Speciosa-Replay"
#: The vendored Workbox runtime (tools/workbox/package.json names the same version).
WORKBOX_VERSION = "7.4.1"
#: The reminders' Web Push handler, imported by the worker when it is there.
PUSH_HANDLER = "speciosa/push-sw.js"
#: How many one-time submission tokens the phone holds for diaries written offline.
POOL_SIZE = 10
#: The theme colour: ``--accent`` in speciosa.css.
THEME_COLOUR = "#1f6f5c"

#: Static files every patient page needs, kept on the phone when the app is installed.
SHELL_FILES = (
    "speciosa/speciosa.css", "speciosa/charts.css", "speciosa/htmx-2.0.11.min.js",
    "speciosa/diary.js", "speciosa/pwa.js", "speciosa/charts.js", "speciosa/favicon.svg",
    "speciosa/vendor/vega-6.4.0.min.js", "speciosa/vendor/vega-interpreter-2.3.2.js",
    "speciosa/vendor/vega-lite-6.4.3.min.js", "speciosa/vendor/vega-embed-7.3.0.min.js",
    "speciosa/icons/icon-192.png", "education/education.css",
)


def offline_copy(view):
    """Let the service worker keep the last copy of this view's page on the patient's phone.

    Only a successful GET of a page under ``/me/`` to a logged-in patient is marked; the
    response keeps its ``Cache-Control: no-store`` (no HTTP cache, proxy or back button keeps
    it): the mark is read by the app's own service worker alone, which keeps such copies for
    at most ``SPECIOSA_OFFLINE_DAYS`` and deletes them at log out (docs/offline.md)."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if (request.method == "GET" and response.status_code == 200
                and request.path.startswith("/me/") and not request.GET
                and access.has_role(request.user, Role.PATIENT)):
            response[OFFLINE_HEADER] = "keep"
        return response

    return wrapped


def is_replay(request) -> bool:
    """Whether this POST is a queued entry the service worker sends again."""
    return request.headers.get(REPLAY_HEADER) == "1"


@require_GET
def manifest(request) -> HttpResponse:
    """The web app manifest (no login: it names no one and nothing clinical)."""
    me = reverse("me")
    body = {
        "name": "Speciosa diary",
        "short_name": "Speciosa",
        "description": "Your recovery diary and the pages your care team shares with you.",
        "id": me,
        "start_url": me,
        "scope": me,
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#f6f7f9",
        "theme_color": THEME_COLOUR,
        "icons": [
            {"src": static("speciosa/icons/icon-192.png"), "sizes": "192x192", "type": "image/png",
             "purpose": "any"},
            {"src": static("speciosa/icons/icon-512.png"), "sizes": "512x512", "type": "image/png",
             "purpose": "any"},
            {"src": static("speciosa/icons/icon-maskable-512.png"), "sizes": "512x512",
             "type": "image/png", "purpose": "maskable"},
        ],
    }
    return HttpResponse(json.dumps(body, indent=1), content_type="application/manifest+json")


@functools.cache
def _file_hash(name: str) -> str:
    path = finders.find(name)
    if not path:
        raise LookupError(f"static file {name} is missing")
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


@functools.cache
def _template_hash(name: str) -> str:
    from django.template.loader import get_template

    with open(get_template(name).origin.name, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


@functools.cache
def _catalogue_hash(language: str) -> str:
    """The compiled catalogue of ``language`` (the offline page's words), '' without one."""
    for directory in settings.LOCALE_PATHS:
        path = directory / language / "LC_MESSAGES" / "django.mo"
        if path.exists():
            return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return ""


def _sw_config() -> dict:
    shell = [{"url": static(name), "revision": _file_hash(name)} for name in SHELL_FILES]
    offline_page = reverse("offline_page")
    # The offline page is kept in the language of the login that installed the worker: its
    # revision names the language (and that language's catalogue), so the worker the browser
    # fetches after the patient changes language (or another patient logs in on this phone)
    # differs, installs, and keeps the page again in the new language.
    language = get_language()
    shell.append({"url": offline_page, "revision": "-".join(
        (_template_hash("web/offline.html"), language, _catalogue_hash(language)))})
    return {
        # the reminders' Web Push handler (issue 16), when that app is installed: one worker
        # per scope, so the app's worker carries it
        "push": static(PUSH_HANDLER) if finders.find(PUSH_HANDLER) else None,
        "workbox": static(f"speciosa/workbox/{WORKBOX_VERSION}").rstrip("/"),
        "scope": reverse("me"),
        "me": reverse("me"),
        "sync": reverse("offline_sync"),
        "offline": offline_page,
        "help": reverse("offline_help"),
        "login": reverse("login"),
        "shell": shell,
        "static": "/" + settings.STATIC_URL.strip("/") + "/",
        "keepSeconds": int(settings.OFFLINE_DAYS * 86400),
        "header": OFFLINE_HEADER,
        # side effects that call for help at once (clinic.crisis): offline, the phone shows the
        # numbers itself, since the server cannot yet
        "urgent": sorted(crisis.URGENT_SYMPTOMS),
        "replayHeader": REPLAY_HEADER,
    }


@require_GET
def service_worker(request) -> HttpResponse:
    """The service worker (no login: the browser checks it for updates at any time, and it
    holds code, not data). ``no-cache``: every check reaches the server."""
    path = finders.find("speciosa/sw.js")
    with open(path, encoding="utf-8") as f:
        code = f.read()
    head = f"self.SPECIOSA_OFFLINE = {json.dumps(_sw_config(), sort_keys=True)};\n"
    response = HttpResponse(head + code, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = reverse("me")
    return response


@access.role_required(Role.PATIENT)
@require_GET
@offline_copy
def javascript_catalog(request) -> HttpResponse:
    """The scripts' strings in the patient's language (djangojs.po), under /me/ so that the
    app keeps its last copy on the phone and the offline pages still speak the language
    (docs/translation.md). The same catalogue as /jsi18n/; nothing personal in it."""
    from django.views.i18n import JavaScriptCatalog

    return JavaScriptCatalog.as_view(domain="djangojs")(request)


@require_GET
def offline_page(request):
    """The page for a patient page not kept on this phone (nothing about anyone on it)."""
    return render(request, "web/offline.html", {})


@access.role_required(Role.PATIENT)
@require_GET
@offline_copy
def offline_help(request):
    """Whom to call, for a diary with an urgent symptom saved on the phone only: the worker
    opens this page then (the server cannot show its help before it has the entry). pwa.js
    fetches it at each online visit of ``/me/``, so the kept copy has the site's numbers."""
    return render(request, "web/offline_help.html",
                  {"numbers": crisis.numbers_for(access.own_patient(request.user).site, get_language())})


@access.role_required(Role.PATIENT)
@require_GET
def sync(request) -> JsonResponse:
    """For the service worker: who is logged in, a CSRF token, new one-time form tokens.

    The service worker sends a queued diary only to the patient who wrote it. The JSON is
    readable by this site's own pages and service worker alone (same-origin policy)."""
    access.own_patient(request.user)
    response = JsonResponse({
        "user": request.user.pk,
        "csrf": get_token(request),
        "tokens": [forms.new_token() for _ in range(POOL_SIZE)],
    })
    response["Cache-Control"] = "no-store, private"
    return response
