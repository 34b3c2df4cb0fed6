"""The Django admin shows no credential and mints none (issue #11, item 4).

- API tokens (django-rest-knox), authenticators (TOTP secrets), recovery codes and the
  OAuth clients, grants and tokens of SMART on FHIR (django-oauth-toolkit; clients are
  registered with ``speciosa oauth``) are not in the admin at all: their own admin pages are
  unregistered here, so an administrator can neither read a secret nor make a token to act as
  someone else.
- Failed logins (django-axes) are listed read-only; deleting one would unlock a login
  without an audit entry.
- What an administrator may do to another user's login is an action on the user list
  (reset second factor, revoke API tokens, clear failed logins) or the password form; each
  is audited and the user is told (:mod:`speciosa.web.credentials`).
"""

from __future__ import annotations

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken
from oauth2_provider import models as omodels

from speciosa.clinic import integrity
from speciosa.clinic.admin import BadLookupMixin, ReadOnlyMixin

from . import credentials

User = get_user_model()

for _model in (
    AuthToken,
    TOTPDevice,
    StaticDevice,
    AccessAttempt,
    AccessLog,
    AccessFailureLog,
    User,
    omodels.Application,
    omodels.AccessToken,
    omodels.RefreshToken,
    omodels.Grant,
    omodels.IDToken,
    omodels.DeviceGrant,
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(AccessAttempt)
class ReadOnlyAccessAttemptAdmin(BadLookupMixin, ReadOnlyMixin, AccessAttemptAdmin):
    """Failed logins by username and address; clear them with the user list's action."""

    actions = None


class OneRoleUserChangeForm(UserChangeForm):
    """A superuser is an administrator: never a patient's login, nor another role's
    (:func:`speciosa.clinic.integrity.superuser_problems`; the model's pre-save check
    refuses it on every other path)."""

    def clean(self):
        data = super().clean()
        if data.get("is_superuser") and self.instance.pk:
            draft = User(pk=self.instance.pk, is_superuser=True)
            for field, message in integrity.superuser_problems(draft).items():
                self.add_error(field, message)
        return data


@admin.register(User)
class CredentialsUserAdmin(BadLookupMixin, UserAdmin):
    """Django's user admin with audited, notified actions on credentials."""

    form = OneRoleUserChangeForm
    actions = ["reset_second_factor", "revoke_api_tokens", "clear_failed_logins"]

    def _each(self, request, queryset, change, done: str) -> None:
        count = 0
        for user in queryset:
            change(request.user, user)
            count += 1
        self.message_user(
            request, f"{done} for {count} login(s); each is audited and told.", messages.SUCCESS
        )

    @admin.action(description="Reset second factor (they enrol again; audited, user told)")
    def reset_second_factor(self, request, queryset):
        self._each(request, queryset, credentials.reset_second_factor, "Second factor reset")

    @admin.action(description="Revoke API tokens (audited, user told)")
    def revoke_api_tokens(self, request, queryset):
        self._each(request, queryset, credentials.revoke_tokens, "API tokens revoked")

    @admin.action(description="Clear failed logins / unlock (audited, user told)")
    def clear_failed_logins(self, request, queryset):
        self._each(request, queryset, credentials.unlock, "Failed logins cleared")

    def user_change_password(self, request, id, form_url=""):
        request._speciosa_password_form = True
        return super().user_change_password(request, id, form_url)

    def log_change(self, request, obj, message):
        if getattr(request, "_speciosa_password_form", False):
            credentials.password_set(request.user, obj)
        return super().log_change(request, obj, message)


# The administrator's start page names Speciosa's own set-up pages (registering a patient,
# adding a clinician, the rule settings) before Django's model admin (issue 15).
admin.site.index_template = "web/admin_index.html"
admin.site.site_header = "Speciosa administration"
admin.site.site_title = "Speciosa administration"
