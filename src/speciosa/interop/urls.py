"""``/fhir/``: the read-only FHIR API (see :mod:`speciosa.interop.views`)."""

from django.urls import path, re_path

from . import bulk, smart, views

app_name = "fhir"

urlpatterns = [
    path("metadata", views.MetadataView.as_view(), name="metadata"),
    path(".well-known/smart-configuration", smart.smart_configuration, name="smart-configuration"),
    # Bulk Data (speciosa.interop.bulk): before [type]/[id], which "Patient/$export" would match
    path("$export", bulk.KickOffView.as_view(), name="export"),
    path("Patient/$export", bulk.PatientKickOffView.as_view(), name="export-patient"),
    path("Group/<str:gid>/$export", bulk.GroupKickOffView.as_view(), name="export-group"),
    path("$export-status/<uuid:export_id>", bulk.StatusView.as_view(), name="export-status"),
    path("$export-file/<uuid:export_id>/<str:name>", bulk.FileView.as_view(),
         name="export-file"),
    path("Patient/<str:rid>/$everything", views.EverythingView.as_view(), name="everything"),
    path("<str:rtype>/<str:rid>/_history", views.HistoryView.as_view(), name="history"),
    path("<str:rtype>/<str:rid>/_history/<str:vid>", views.VReadView.as_view(), name="vread"),
    path("<str:rtype>/<str:rid>", views.ReadView.as_view(), name="read"),
    path("<str:rtype>", views.SearchView.as_view(), name="search"),
    re_path(r"^.*$", views.UnknownView.as_view(), name="unknown"),
]
