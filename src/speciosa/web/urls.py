from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="web/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("patients/", views.patient_list, name="patient_list"),
    path("patients/<int:patient_id>/", views.patient_detail, name="patient_detail"),
    path("patients/<int:patient_id>/assessments/<slug:instrument_id>/new/", views.assessment_new,
         name="assessment_new"),
    path("patients/<int:patient_id>/labs/new/", views.lab_new, name="lab_new"),
    path("patients/<int:patient_id>/notes/new/", views.note_new, name="note_new"),
    path("patients/<int:patient_id>/<slug:kind>/<int:record_id>/correct/", views.record_correct,
         name="record_correct"),
    path("patients/<int:patient_id>/<slug:kind>/<int:record_id>/history/", views.record_history,
         name="record_history"),
    path("evidence/", views.evidence, name="evidence"),
    path("worklist/", views.worklist, name="worklist"),
    path("alerts/<int:alert_id>/resolve/", views.alert_resolve, name="alert_resolve"),
    path("alerts/<int:alert_id>/acknowledge/", views.alert_acknowledge, name="alert_acknowledge"),
    path("me/", views.me, name="me"),
    path("me/diary/", views.diary, name="diary_today"),
    path("me/diary/<str:day>/", views.diary, name="diary_day"),
]
