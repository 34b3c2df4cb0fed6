"""``/fhir/``: the read-only FHIR API (see :mod:`speciosa.interop.views`)."""

from django.urls import path, re_path

from . import views

app_name = "fhir"

urlpatterns = [
    path("metadata", views.MetadataView.as_view(), name="metadata"),
    path("Patient/<str:rid>/$everything", views.EverythingView.as_view(), name="everything"),
    path("<str:rtype>/<str:rid>/_history", views.HistoryView.as_view(), name="history"),
    path("<str:rtype>/<str:rid>/_history/<str:vid>", views.VReadView.as_view(), name="vread"),
    path("<str:rtype>/<str:rid>", views.ReadView.as_view(), name="read"),
    path("<str:rtype>", views.SearchView.as_view(), name="search"),
    re_path(r"^.*$", views.UnknownView.as_view(), name="unknown"),
]
