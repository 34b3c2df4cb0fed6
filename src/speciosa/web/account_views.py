"""The second factor (enrol, verify, recovery codes) and the Security page.

Built on django-otp: a :class:`TOTPDevice` (authenticator app) and a :class:`StaticDevice`
holding single-use recovery codes. See :mod:`speciosa.web.security` for who needs which.
"""

from __future__ import annotations

import base64
import io

from django import forms
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from speciosa.clinic.models import AuditEntry, Patient, Profile, Role

from . import credentials, security


class LanguageForm(forms.Form):
    """The language of the pages for this login; blank: the browser's (docs/translation.md)."""

    language = forms.ChoiceField(
        label=gettext_lazy("Language of the pages"), required=False,
        choices=[("", gettext_lazy("The language of this browser")), *settings.LANGUAGES],
        error_messages={"invalid_choice": gettext_lazy(
            "Choose one of the languages in the list.")})


class CodeForm(forms.Form):
    code = forms.CharField(label=gettext_lazy("Code"), max_length=64, strip=True,
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code",
                                                         "inputmode": "text", "autocapitalize": "none"}))


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return reverse("home")


def _audit(request, what: str, **more) -> None:
    AuditEntry.objects.create(user=request.user, action=AuditEntry.Action.SECOND_FACTOR,
                              model="Login", after={"what": what, **more})


def _revoke_tokens_on_second_factor_change(user) -> int:
    """Turning the second factor on or off revokes the user's API tokens: a token issued
    before (perhaps to a stolen password) must not outlive the change. How many."""
    from speciosa.api import tokens

    return tokens.revoke_all(user)


def qr_data_uri(text: str) -> str:
    """``text`` as a QR code, an SVG data URI made on the server (no third party sees it)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def new_recovery_codes(user) -> list[str]:
    """Replace the user's recovery codes with ten new single-use ones (shown once)."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="recovery codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(security.RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    return codes


@login_required
@require_http_methods(["GET", "POST"])
def otp_setup(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app: show the secret and its QR code, confirm one code, then show
    the recovery codes once."""
    if user_has_device(request.user, confirmed=True) and not request.user.is_verified():
        return redirect(reverse("otp_verify") + "?" + request.GET.urlencode())
    device = TOTPDevice.objects.filter(user=request.user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=request.user, name="authenticator", confirmed=False)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token("".join(form.cleaned_data["code"].split())):
            TOTPDevice.objects.filter(user=request.user, confirmed=True).delete()
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            codes = new_recovery_codes(request.user)
            revoked = _revoke_tokens_on_second_factor_change(request.user)
            _audit(request, "enrolled", tokens_revoked=revoked)
            return render(request, "web/otp_recovery_codes.html", {"codes": codes, "next": _next(request)})
        form.add_error("code", "That code did not match. Check the time on your phone and try the newest code.")
    secret = base64.b32encode(device.bin_key).decode("ascii")
    return render(request, "web/otp_setup.html", {
        "form": form, "secret": secret, "qr": qr_data_uri(device.config_url),
        "next": request.GET.get("next", ""), "required": security.is_staff_login(request.user)})


@login_required
@require_http_methods(["GET", "POST"])
def otp_verify(request: HttpRequest) -> HttpResponse:
    """The second step of logging in: a code from the authenticator app, or a recovery code."""
    if not user_has_device(request.user, confirmed=True):
        return redirect(reverse("otp_setup") + "?" + request.GET.urlencode())
    if request.user.is_verified():
        return redirect(_next(request))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = security.verify_code(request.user, form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            _audit(request, "recovery code used" if isinstance(device, StaticDevice) else "verified")
            return redirect(_next(request))
        _audit(request, "wrong code")
        form.add_error("code", "That code did not match (or too many tries: wait a little and retry).")
    return render(request, "web/otp_verify.html", {"form": form, "next": request.GET.get("next", "")})


@login_required
def account_security(request: HttpRequest, language_form: LanguageForm | None = None,
                     status: int = 200) -> HttpResponse:
    """The Security page: the pages' language, second factor, recovery codes, API tokens, log
    out everywhere, and what an administrator changed."""
    from speciosa.api import tokens

    if language_form is None:
        profile = getattr(request.user, "profile", None)
        language_form = LanguageForm(initial={"language": getattr(profile, "language", "")})
    has_device = user_has_device(request.user, confirmed=True)
    remaining = StaticToken.objects.filter(device__user=request.user).count()
    return render(request, "web/account_security.html", {
        "has_device": has_device, "remaining": remaining,
        "required": security.is_staff_login(request.user),
        "sessions": sum(1 for _ in security.sessions_of(request.user)),
        "tokens": list(tokens.tokens_of(request.user)),
        "notices": list(request.user.credential_notices.all()[:10]),
        "language_form": language_form,
    }, status=status)


@login_required
@require_POST
def account_language(request: HttpRequest) -> HttpResponse:
    """Change the language of this login's pages (patients on their phone, staff alike).
    Audited as a setting change of the login's profile; the language cookie follows, so the
    login page after log out stays in it. A choice not in the list changes nothing (400)."""
    form = LanguageForm(request.POST)
    if not form.is_valid():
        return account_security(request, language_form=form, status=400)
    language = form.cleaned_data["language"]
    user = request.user
    profile = getattr(user, "profile", None)
    if profile is None:
        if not user.is_superuser:
            form.add_error("language", translation.gettext(
                "This login has no role yet, so no language of its own: ask an administrator."))
            return account_security(request, language_form=form, status=400)
        profile = Profile.objects.create(user=user, role=Role.ADMIN)
    before = profile.language
    if language != before:
        profile.language = language
        profile.save(update_fields=["language"])
        AuditEntry.objects.create(
            user=user, action=AuditEntry.Action.SETTING_CHANGE, model="Profile",
            object_id=profile.pk, patient=Patient.objects.filter(user=user).first(),
            before={"language": before}, after={"language": language})
    response = redirect(reverse("account_security") + "?language=saved")
    if language:
        response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language,
                            max_age=settings.LANGUAGE_COOKIE_AGE, samesite="Lax",
                            secure=settings.SESSION_COOKIE_SECURE, httponly=True)
    else:
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME, samesite="Lax")
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest) -> HttpResponse:
    """Revoke one of the user's own API tokens (by its digest; anyone else's is not found)."""
    from speciosa.api import tokens

    revoked = tokens.revoke(request.user, request.POST.get("token", ""))
    if revoked:
        credentials.owner_revoked_token(request.user, revoked)
    return redirect("account_security")


@login_required
@require_POST
def notices_seen(request: HttpRequest) -> HttpResponse:
    """Dismiss the notices about changes an administrator made to this login."""
    credentials.dismiss_notices(request.user)
    return redirect(_next(request))


@login_required
@require_POST
def recovery_codes_new(request: HttpRequest) -> HttpResponse:
    """New recovery codes (the old ones stop working); only in a verified session."""
    if not request.user.is_verified():
        return redirect("otp_verify")
    codes = new_recovery_codes(request.user)
    _audit(request, "new recovery codes")
    return render(request, "web/otp_recovery_codes.html", {"codes": codes, "next": reverse("account_security")})


@login_required
@require_POST
def otp_disable(request: HttpRequest) -> HttpResponse:
    """A patient who opted in may opt out again (staff may not)."""
    if security.is_staff_login(request.user) or not request.user.is_verified():
        return redirect("account_security")
    TOTPDevice.objects.filter(user=request.user).delete()
    StaticDevice.objects.filter(user=request.user).delete()
    revoked = _revoke_tokens_on_second_factor_change(request.user)
    _audit(request, "disabled", tokens_revoked=revoked)
    return redirect("account_security")


@login_required
@require_POST
def logout_everywhere(request: HttpRequest) -> HttpResponse:
    """End every session of this user (on every device) and revoke their API tokens."""
    user = request.user
    ended, revoked = security.log_out_everywhere(user)
    AuditEntry.objects.create(user=user, action=AuditEntry.Action.LOGOUT_ALL, model="Login",
                              after={"sessions": ended, "tokens": revoked})
    logout(request)
    response = redirect("login")
    response["Clear-Site-Data"] = security.CLEAR_SITE_DATA  # this device's copies too
    return response
