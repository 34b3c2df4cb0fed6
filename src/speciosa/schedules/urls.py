from django.urls import path

from . import views

urlpatterns = [
    path("patients/<int:patient_id>/plan/", views.plan, name="patient_plan"),
    path("patients/<int:patient_id>/plan/stop/", views.plan_stop, name="patient_plan_stop"),
    path("me/questionnaires/<slug:instrument_id>/", views.questionnaire, name="questionnaire"),
]
