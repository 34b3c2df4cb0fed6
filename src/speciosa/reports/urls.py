"""URLs of the charts and the visit report (mounted at the site root, before the web app)."""

from django.urls import path

from . import views

urlpatterns = [
    path("patients/<int:patient_id>/charts.json", views.patient_charts, name="patient_charts"),
    path("patients/<int:patient_id>/taper-plans/<int:plan_id>/preview.json",
         views.taper_preview, name="taper_preview"),
    path("patients/<int:patient_id>/report.pdf", views.visit_report, name="visit_report"),
    path("me/charts.json", views.my_charts, name="my_charts"),
]
