"""Speciosa's own password pages (issue 15): changing one's password, and a forgotten
password reset by an e-mailed link (Django's views, with Speciosa's templates).

A reset request is limited per client address and per e-mail address
(``SPECIOSA_PASSWORD_RESET_RATE``, default 5 an hour each, counted in the shared cache) and
answered the same way whether or not a login has that address, so the page reveals no
account. Each request and each completed reset is in the audit trail (``credentials``; the
e-mail address itself is not stored), and the user is told of a completed reset on their
next page. A reset never logs in: a staff login then still gives its second factor.
"""

from __future__ import annotations

import hashlib
import math

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.shortcuts import render
from django.urls import reverse_lazy
from django.utils import timezone
from rest_framework.throttling import SimpleRateThrottle

from speciosa.clinic import writes

from . import security
from .models import CredentialNotice


class _ResetThrottle(SimpleRateThrottle):
    scope = "password-reset"

    def __init__(self, ident: str):
        self.ident = ident
        super().__init__()

    def get_rate(self) -> str:
        return settings.PASSWORD_RESET_RATE

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.ident}


def _email_key(email: str) -> str:
    return "email-" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "web/password_change_form.html"


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "web/password_change_done.html"


class ForgotPasswordView(auth_views.PasswordResetView):
    template_name = "web/password_reset/form.html"
    email_template_name = "web/password_reset/email.txt"
    subject_template_name = "web/password_reset/subject.txt"
    success_url = reverse_lazy("password_reset_done")

    def post(self, request, *args, **kwargs):
        throttle = _ResetThrottle("address-" + security.client_ip(request))
        if not throttle.allow_request(request, self):
            seconds = max(1, math.ceil(throttle.wait() or 1))
            response = render(request, "web/password_reset/too_many.html",
                              {"minutes": max(1, math.ceil(seconds / 60))}, status=429)
            response["Retry-After"] = str(seconds)
            return response
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        email = form.cleaned_data["email"]
        users = list(form.get_users(email))
        limited = not _ResetThrottle(_email_key(email)).allow_request(self.request, self)
        ip = security.client_ip(self.request)
        for user in users:
            writes.audit(None, writes.Action.CREDENTIALS, user, model="User",
                         after={"what": "password-reset-requested", "user": user.pk, "ip": ip,
                                "sent": not limited})
        if not users:
            writes.audit(None, writes.Action.CREDENTIALS, None, model="password-reset",
                         after={"what": "password-reset-requested", "matched": 0, "ip": ip})
        if limited:  # the same answer, and no more mail to that address this hour
            from django.http import HttpResponseRedirect

            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)


class ForgotPasswordSentView(auth_views.PasswordResetDoneView):
    template_name = "web/password_reset/sent.html"


class ResetPasswordView(auth_views.PasswordResetConfirmView):
    template_name = "web/password_reset/confirm.html"
    success_url = reverse_lazy("password_reset_complete")
    post_reset_login = False

    def form_valid(self, form):
        response = super().form_valid(form)
        user = form.user
        when = timezone.localtime()
        writes.audit(user, writes.Action.CREDENTIALS, user, model="User",
                     after={"what": "password-reset", "user": user.pk,
                            "ip": security.client_ip(self.request)})
        CredentialNotice.objects.create(
            user=user, at=when,
            text=f"On {when:%Y-%m-%d at %H:%M} your password was reset with a link sent by "
                 "e-mail. If you did not ask for this, tell your clinic.")
        return response


class ResetPasswordDoneView(auth_views.PasswordResetCompleteView):
    template_name = "web/password_reset/done.html"
