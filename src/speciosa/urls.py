from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from django.views.i18n import JavaScriptCatalog, set_language

from speciosa.ops.health import health

urlpatterns = [
    path("admin/", admin.site.urls),
    # browsers ask for /favicon.ico on pages that name no icon (Django's admin, JSON)
    path("favicon.ico", RedirectView.as_view(url=static("speciosa/favicon.svg"), permanent=True)),
    path("health/", health, name="health"),  # no login, no patient data (speciosa.ops.health)
    # the scripts' strings in the request's language (djangojs.po; docs/translation.md), from
    # this server (no CDN), a script of our own origin under the CSP; no login, no data
    path("jsi18n/", JavaScriptCatalog.as_view(domain="djangojs"), name="javascript_catalog"),
    # before logging in, the page's language (a cookie); a login's own is on its Security page
    path("i18n/setlang/", set_language, name="set_language"),
    path("api/", include("speciosa.api.urls")),
    path("oauth/", include("speciosa.interop.oauth_urls")),  # SMART on FHIR (interop.smart)
    path("fhir/", include("speciosa.interop.urls")),
    path("research/", include("speciosa.research.urls")),
    path("", include("speciosa.reports.urls")),
    path("", include("speciosa.education.urls")),
    path("", include("speciosa.messaging.urls")),
    path("", include("speciosa.schedules.urls")),
    path("", include("speciosa.reminders.urls")),
    path("", include("speciosa.web.urls")),
]
