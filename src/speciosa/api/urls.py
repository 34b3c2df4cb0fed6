"""``/api/`` URLs: version 1 under ``v1/``, its OpenAPI schema at ``v1/schema/``.

There is no ``v1/docs/`` page: drf-spectacular's Swagger UI and Redoc pages load their
scripts from a CDN (or need the extra ``drf-spectacular-sidecar`` package), and Speciosa's
pages load nothing from third parties. Open the schema in any OpenAPI viewer instead.
"""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from . import medication_views, schedule_views, taper_views, urine_views, views

v1 = [
    path("auth/token/", views.TokenView.as_view(), name="token"),
    path("me/", views.MeView.as_view(), name="me"),
    path("me/diary/", views.MyDiaryView.as_view(), name="my_diary"),
    path("me/medications/", medication_views.MyMedicationsView.as_view(), name="my_medications"),
    path("me/diary/<str:day>/", views.MyDiaryDayView.as_view(), name="my_diary_day"),
    path("me/due/", schedule_views.MyDueView.as_view(), name="my_due"),
    path("me/questionnaires/<str:instrument_id>/draft/", schedule_views.MyDraftView.as_view(),
         name="my_questionnaire_draft"),
    path("me/questionnaires/<str:instrument_id>/submission/", schedule_views.MySubmissionView.as_view(),
         name="my_questionnaire_submission"),
    path("plan-templates/", schedule_views.PlanTemplateListView.as_view(), name="plan_templates"),
    path("me/entries/<str:kind>/<str:record_id>/corrections/", views.MyEntryCorrectionView.as_view(),
         name="my_entry_corrections"),
    path("me/entries/<str:kind>/<str:record_id>/retraction/", views.MyEntryRetractionView.as_view(),
         name="my_entry_retraction"),
    path("patients/", views.PatientListView.as_view(), name="patient_list"),
    path("patients/<str:patient_id>/", views.PatientDetailView.as_view(), name="patient_detail"),
    path("patients/<str:patient_id>/timeline/", views.TimelineView.as_view(), name="timeline"),
    path("patients/<str:patient_id>/assessments/", views.AssessmentCreateView.as_view(), name="assessments"),
    path("patients/<str:patient_id>/labs/", views.LabCreateView.as_view(), name="labs"),
    path("patients/<str:patient_id>/notes/", views.NoteCreateView.as_view(), name="notes"),
    path("patients/<str:patient_id>/medications/", medication_views.MedicationListView.as_view(),
         name="medications"),
    path("patients/<str:patient_id>/medications/<str:medication_id>/",
         medication_views.MedicationDetailView.as_view(), name="medication"),
    path("patients/<str:patient_id>/medications/<str:medication_id>/change/",
         medication_views.MedicationChangeView.as_view(), name="medication_change"),
    path("patients/<str:patient_id>/medications/<str:medication_id>/stop/",
         medication_views.MedicationStopView.as_view(), name="medication_stop"),
    path("patients/<str:patient_id>/medications/<str:medication_id>/confirmation/",
         medication_views.MedicationConfirmationView.as_view(), name="medication_confirmation"),
    path("patients/<str:patient_id>/medication-reviews/",
         medication_views.MedicationReviewListView.as_view(), name="medication_reviews"),
    path("patients/<str:patient_id>/urine-panels/",
         urine_views.UrinePanelListView.as_view(), name="urine_panels"),
    path("patients/<str:patient_id>/urine-panels/<str:panel_id>/",
         urine_views.UrinePanelDetailView.as_view(), name="urine_panel"),
    path("patients/<str:patient_id>/plan/", schedule_views.PlanView.as_view(), name="plan"),
    path("patients/<str:patient_id>/plan/history/", schedule_views.PlanHistoryView.as_view(),
         name="plan_history"),
    path("patients/<str:patient_id>/plan/stop/", schedule_views.PlanStopView.as_view(), name="plan_stop"),
    path("patients/<str:patient_id>/urine-panels/<str:panel_id>/correct/",
         urine_views.UrinePanelCorrectView.as_view(), name="urine_panel_correct"),
    path("patients/<str:patient_id>/urine-panels/<str:panel_id>/withdraw/",
         urine_views.UrinePanelWithdrawView.as_view(), name="urine_panel_withdraw"),
    path("patients/<str:patient_id>/treatment-episodes/",
         medication_views.EpisodeListView.as_view(), name="episodes"),
    path("patients/<str:patient_id>/treatment-episodes/<str:episode_id>/",
         medication_views.EpisodeDetailView.as_view(), name="episode"),
    path("patients/<str:patient_id>/treatment-episodes/<str:episode_id>/change/",
         medication_views.EpisodeChangeView.as_view(), name="episode_change"),
    path("patients/<str:patient_id>/treatment-episodes/<str:episode_id>/stop/",
         medication_views.EpisodeStopView.as_view(), name="episode_stop"),
    path("patients/<str:patient_id>/treatment-episodes/<str:episode_id>/injections/",
         medication_views.EpisodeInjectionView.as_view(), name="episode_injections"),
    path("patients/<str:patient_id>/taper-plans/", taper_views.TaperPlanListView.as_view(),
         name="taper_plans"),
    path("patients/<str:patient_id>/taper-plans/<str:plan_id>/",
         taper_views.TaperPlanDetailView.as_view(), name="taper_plan"),
    path("patients/<str:patient_id>/taper-plans/<str:plan_id>/correct/",
         taper_views.TaperPlanCorrectView.as_view(), name="taper_plan_correct"),
    path("patients/<str:patient_id>/taper-plans/<str:plan_id>/replace/",
         taper_views.TaperPlanReplaceView.as_view(), name="taper_plan_replace"),
    path("patients/<str:patient_id>/taper-plans/<str:plan_id>/stop/",
         taper_views.TaperPlanStopView.as_view(), name="taper_plan_stop"),
    path("patients/<str:patient_id>/records/<str:kind>/<str:record_id>/corrections/",
         views.CorrectionView.as_view(), name="corrections"),
    path("patients/<str:patient_id>/records/<str:kind>/<str:record_id>/retraction/",
         views.RetractionView.as_view(), name="retraction"),
    path("patients/<str:patient_id>/records/<str:kind>/<str:record_id>/history/",
         views.RecordHistoryView.as_view(), name="history"),
    path("instruments/", views.InstrumentListView.as_view(), name="instruments"),
    path("instruments/<str:instrument_id>/", views.InstrumentDetailView.as_view(), name="instrument"),
    path("labs/", views.LabListView.as_view(), name="labs_catalogue"),
]


class _SchemaUrls:
    """Only the v1 API goes into the schema (not the FHIR endpoints or the web)."""

    urlpatterns = [path("api/v1/", include((v1, "api-v1")))]


urlpatterns = [
    path("v1/schema/", SpectacularAPIView.as_view(urlconf=_SchemaUrls, api_version="1"), name="api-schema"),
    path("v1/", include((v1, "api-v1"))),
    re_path(r"^v1/", views.NotFoundView.as_view(), name="api-not-found"),
]
