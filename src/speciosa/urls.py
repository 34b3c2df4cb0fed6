from django.contrib import admin
from django.urls import include, path

from speciosa.ops.health import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),  # no login, no patient data (speciosa.ops.health)
    path("api/", include("speciosa.api.urls")),
    path("oauth/", include("speciosa.interop.oauth_urls")),  # SMART on FHIR (interop.smart)
    path("fhir/", include("speciosa.interop.urls")),
    path("research/", include("speciosa.research.urls")),
    path("", include("speciosa.reports.urls")),
    path("", include("speciosa.education.urls")),
    path("", include("speciosa.web.urls")),
]
