from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("speciosa.api.urls")),
    path("fhir/", include("speciosa.interop.urls")),
    path("research/", include("speciosa.research.urls")),
    path("", include("speciosa.reports.urls")),
    path("", include("speciosa.education.urls")),
    path("", include("speciosa.web.urls")),
]
