from django.contrib.auth import views as auth_views
from django.urls import path

from speciosa.interop import smart

from . import account_views, password_views, security, settings_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", security.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/second-factor/", account_views.otp_verify, name="otp_verify"),
    path("account/second-factor/setup/", account_views.otp_setup, name="otp_setup"),
    path("account/security/", account_views.account_security, name="account_security"),
    path("account/security/recovery-codes/", account_views.recovery_codes_new, name="recovery_codes_new"),
    path("account/security/second-factor-off/", account_views.otp_disable, name="otp_disable"),
    path("account/security/logout-everywhere/", account_views.logout_everywhere, name="logout_everywhere"),
    path("account/security/tokens/revoke/", account_views.token_revoke, name="token_revoke"),
    path("account/notices/seen/", account_views.notices_seen, name="notices_seen"),
    path("account/password/", password_views.PasswordChangeView.as_view(), name="password_change"),
    path("account/password/done/", password_views.PasswordChangeDoneView.as_view(),
         name="password_change_done"),
    path("account/password/forgot/", password_views.ForgotPasswordView.as_view(),
         name="password_reset"),
    path("account/password/forgot/sent/", password_views.ForgotPasswordSentView.as_view(),
         name="password_reset_done"),
    path("account/password/reset/<uidb64>/<token>/", password_views.ResetPasswordView.as_view(),
         name="password_reset_confirm"),
    path("account/password/reset/done/", password_views.ResetPasswordDoneView.as_view(),
         name="password_reset_complete"),
    path("patients/", views.patient_list, name="patient_list"),
    path("patients/<int:patient_id>/", views.patient_detail, name="patient_detail"),
    path("patients/<int:patient_id>/assessments/<slug:instrument_id>/new/", views.assessment_new,
         name="assessment_new"),
    path("patients/<int:patient_id>/launch/", smart.ehr_launch,
         name="smart_launch"),  # a SMART app started from the patient's page (EHR launch)
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
    path("safety-settings/", settings_views.safety_settings, name="safety_settings"),
    path("safety-settings/<str:name>/change/", settings_views.safety_setting_change,
         name="safety_setting_change"),
    path("me/", views.me, name="me"),
    path("me/diary/", views.diary, name="diary_today"),
    path("me/diary/<str:day>/", views.diary, name="diary_day"),
]
