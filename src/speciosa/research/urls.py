"""URLs of the researcher pages (mounted at ``/research/``)."""

from django.urls import path

from . import views

app_name = "research"

urlpatterns = [
    path("", views.cohort, name="cohort"),
    path("exports/", views.export_list, name="exports"),
    path("exports/<int:export_id>/download/", views.export_download, name="export-download"),
]
