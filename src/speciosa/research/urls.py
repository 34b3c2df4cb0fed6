"""URLs of the researcher pages (mounted at ``/research/``)."""

from django.urls import path

from . import views

app_name = "research"

urlpatterns = [
    path("", views.cohort, name="cohort"),
]
