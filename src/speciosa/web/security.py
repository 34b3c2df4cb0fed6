"""Who needs a second factor, session lifetimes, and the audit of logins.

Policy (docs/security.md):

- Staff (clinicians, administrators, researchers, and any superuser or ``is_staff`` login)
  always need a second factor: a TOTP device (django-otp) or one of their recovery codes.
  Until the session is verified, every page except the login, logout and second-factor pages
  redirects to the second-factor step, and ``/api/`` and ``/fhir/`` answer 403 to the session.
- A patient may opt in from the Security page; once they have a confirmed device, they need
  it too.
- Sessions end after inactivity: ``SPECIOSA_STAFF_SESSION_MINUTES`` (default 30) for staff,
  ``SPECIOSA_PATIENT_SESSION_MINUTES`` (default 12 h) for patients.
- Every login, failed login and lockout (django-axes) writes an :class:`AuditEntry`.
- Failed logins count per username *and* client address (:func:`client_ip`: forwarded
  headers only from ``SPECIOSA_TRUSTED_PROXIES``): after ``SPECIOSA_LOCKOUT_FAILURES`` the
  pair waits :func:`lockout_wait`, doubling with each further failure; logins are also
  limited per address (:class:`AddressThrottle`), on the web form and the token endpoint.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import math
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django_otp import devices_for_user, user_has_device
from django_otp.models import Device
from rest_framework.throttling import SimpleRateThrottle

from speciosa.clinic.models import Role

STAFF_ROLES = (Role.CLINICIAN, Role.ADMIN, Role.RESEARCHER)
RECOVERY_CODES = 10


def role(user) -> str | None:
    from speciosa.clinic.access import role_of

    return role_of(user)


def is_staff_login(user) -> bool:
    """Clinicians, administrators and researchers (and any Django staff or superuser)."""
    return bool(user.is_staff or user.is_superuser or role(user) in STAFF_ROLES)


def has_confirmed_device(user) -> bool:
    """Whether ``user`` has a confirmed device of any installed kind (authenticator, recovery
    codes, ...): django-otp's ``user_has_device`` with one query, where it asks each device
    model in turn (two queries on each request of a patient who has not opted in)."""
    from django.db.models import Exists
    from django_otp import device_classes

    if not user.is_authenticated:
        return False
    checks = {f"has_{i}": Exists(model.objects.devices_for_user(user, confirmed=True))
              for i, model in enumerate(device_classes())}
    if not checks:
        return False
    row = get_user_model().objects.filter(pk=user.pk).annotate(**checks).values_list(*checks).first()
    return bool(row) and any(row)


def needs_second_factor(user) -> bool:
    """Staff always; a patient once they have opted in (a confirmed device)."""
    if not user.is_authenticated:
        return False
    return is_staff_login(user) or has_confirmed_device(user)


def verify_code(user, code: str) -> Device | None:
    """The confirmed device (authenticator or recovery code) that accepts ``code``, if any.

    django-otp throttles each device after failures (growing delays) and refuses a TOTP
    code that was already used.
    """
    code = "".join((code or "").split())
    if not code or len(code) > 64:
        return None
    with transaction.atomic():
        for device in devices_for_user(user, confirmed=True, for_verify=True):
            if device.verify_token(code):
                return device
    return None


def session_minutes(user) -> int:
    return (settings.PATIENT_SESSION_MINUTES if role(user) == Role.PATIENT and not is_staff_login(user)
            else settings.STAFF_SESSION_MINUTES)


#: Session key: when (epoch seconds) the session's inactivity window was last renewed.
RENEWED_KEY = "speciosa-renewed"
#: A session is renewed at most this often (seconds). Renewing writes the session row (an
#: UPDATE and a commit); doing it on every request was the one write of every page view.
#: Between renewals the stored expiry stays where the last one put it, so a session can end
#: up to this much *sooner* after the last request than the window says, never later. A
#: short window is renewed more often (:func:`renew_every`): at most a tenth of it is lost.
RENEW_EVERY_S = 60


def renew_every(seconds: int) -> int:
    """How often (seconds) a session with an inactivity window of ``seconds`` is renewed:
    :data:`RENEW_EVERY_S`, or a tenth of the window when that is shorter (a 1-minute window
    renewed once a minute would end a minute after its first request however busy its user:
    a request at 59 s would not renew it). 0: on every request."""
    return max(0, min(RENEW_EVERY_S, seconds // 10))


class SessionPolicyMiddleware:
    """Requests of a logged-in user renew the session for that user's inactivity window
    (at most once every :func:`renew_every` seconds; see :data:`RENEW_EVERY_S`)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            session = request.session
            seconds = session_minutes(user) * 60
            now = int(time.time())
            renewed = session.get(RENEWED_KEY)
            fresh = (isinstance(renewed, int) and 0 <= now - renewed < renew_every(seconds)
                     and session.get("_session_expiry") == seconds)
            if not fresh:  # a new window (or another one: the role changed)
                session.set_expiry(seconds)
                session[RENEWED_KEY] = now
        return self.get_response(request)


def _open_paths() -> tuple[str, ...]:
    # (dismissing a notice about one's own login reads and shows nothing else; the scripts'
    # translation catalogue is the same for everyone, and the second-factor page loads it)
    return (reverse("login"), reverse("logout"), reverse("otp_verify"), reverse("otp_setup"),
            reverse("notices_seen"), reverse("javascript_catalog"),
            "/" + settings.STATIC_URL.lstrip("/"))


class SecondFactorMiddleware:
    """A session whose user needs a second factor and has not given it reaches nothing else.

    HTML pages redirect to the second-factor step (enrolment when the user has no device yet);
    ``/api/`` and ``/fhir/`` answer 403 with JSON. The one exception is an API or FHIR request
    that a bearer credential *actually authenticated* (an API token, issued only after the
    second factor; see :func:`speciosa.api.authentication.token_user`): merely sending an
    ``Authorization`` header (``Bearer x``, ``Basic …``, junk) changes nothing. DRF's session
    authentication refuses such a session too
    (:class:`speciosa.api.authentication.VerifiedSessionAuthentication`), so neither layer
    alone lets an unverified session through.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or user.is_verified():
            return self.get_response(request)
        path = request.path
        is_api = path.startswith("/api/") or path.startswith("/fhir/")
        if path.startswith(_open_paths()) or not needs_second_factor(user):
            return self.get_response(request)
        if is_api:
            from speciosa.api.authentication import SECOND_FACTOR_MESSAGE, token_user

            if token_user(request) is not None:
                return self.get_response(request)
            return JsonResponse({"detail": SECOND_FACTOR_MESSAGE}, status=403)
        target = "otp_verify" if user_has_device(user, confirmed=True) else "otp_setup"
        query = urlencode({"next": request.get_full_path()}) if request.method == "GET" else ""
        return redirect(reverse(target) + (f"?{query}" if query else ""))


def sessions_of(user) -> Iterator:
    """Every stored (database) session that belongs to ``user``."""
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    uid = str(user.pk)
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == uid:
            yield session


def log_out_everywhere(user) -> tuple[int, int]:
    """End every session of ``user`` and revoke every API token of theirs: how many of each."""
    from speciosa.api import tokens

    ended = 0
    for session in list(sessions_of(user)):
        session.delete()
        ended += 1
    return ended, tokens.revoke_all(user)


# --------------------------------------------------------------------------- client address


@functools.lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _networks(tuple(settings.TRUSTED_PROXIES)))


def client_ip(request) -> str:
    """The address the request came from, for lockouts, throttles and the audit.

    ``REMOTE_ADDR`` (the peer of the TCP connection), unless that peer is one of
    ``SPECIOSA_TRUSTED_PROXIES``: then ``X-Forwarded-For`` is read from the right (each proxy
    appends the address it saw) and the first hop that is not a trusted proxy is the client.
    A hop to the left of that was written by the client and is never believed, and a client
    that is not a trusted proxy cannot change its address by sending the header.
    """
    if request is None:
        return ""
    remote = (request.META.get("REMOTE_ADDR") or "").strip()[:45]
    if not settings.TRUSTED_PROXIES or not _trusted(remote):
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    nearest = remote
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return nearest  # garbage: the proxy nearest the client is all we know
        if not _trusted(hop):
            return hop[:45]
        nearest = hop
    return nearest


class AddressThrottle(SimpleRateThrottle):
    """Login attempts per client address (:func:`client_ip`), whatever the username:
    ``SPECIOSA_LOGIN_ADDRESS_RATE`` (default 30 a minute), one budget shared by the web login
    form and the token endpoint, counted in the shared cache (``SPECIOSA_CACHE_URL``)."""

    scope = "login-address"

    def get_rate(self) -> str:
        return settings.LOGIN_ADDRESS_RATE

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request)}


class LoginView(auth_views.LoginView):
    """Django's login form, limited per client address (:class:`AddressThrottle`) before the
    password is checked (each Argon2 check costs about half a second of CPU)."""

    template_name = "web/login.html"

    def post(self, request, *args, **kwargs):
        throttle = AddressThrottle()
        if not throttle.allow_request(request, self):
            seconds = max(1, math.ceil(throttle.wait() or 1))
            response = render(request, "web/locked_out.html",
                              {"address_limited": True, "seconds": seconds}, status=429)
            response["Retry-After"] = str(seconds)
            return response
        return super().post(request, *args, **kwargs)


#: Sent with every log out: the browser deletes what this origin kept on the device (the
#: patient app's copies of pages, its queue of unsent diaries, its service worker). Not
#: "cookies": browsers clear those for the whole registrable domain (other sites of the same
#: organisation too), and Django's log out has already ended the session (docs/offline.md).
CLEAR_SITE_DATA = '"cache", "storage"'


class LogoutView(auth_views.LogoutView):
    """Django's log out, which also tells the browser to delete this site's data on the device
    (``Clear-Site-Data``): nothing clinical stays on a phone after its patient logs out."""

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        response["Clear-Site-Data"] = CLEAR_SITE_DATA
        return response


# --------------------------------------------------------------------------- lockout


class LoginAttemptBackend(AxesStandaloneBackend):
    """django-axes' backend (refuses a username + address that must wait), keeping the
    username on the request for :func:`lockout_wait`, which axes calls with the request only."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is not None:
            request.speciosa_login_username = None if username is None else str(username)[:150]
        return super().authenticate(request, username=username, password=password, **kwargs)


def _failures(request) -> int:
    """Failed logins on record for the request's username and address (reset by a login)."""
    from axes.models import AccessAttempt
    from django.db.models import Sum

    username = getattr(request, "speciosa_login_username", None)
    if username is None:
        return 0
    total = AccessAttempt.objects.filter(
        username=username, ip_address=getattr(request, "axes_ip_address", None)).aggregate(
        n=Sum("failures_since_start"))["n"]
    return total or 0


def lockout_wait(request=None) -> dt.timedelta:
    """``AXES_COOLOFF_TIME``: how long a username + address waits after failed logins.

    ``SPECIOSA_LOCKOUT_MINUTES`` (default 1) at ``SPECIOSA_LOCKOUT_FAILURES`` failures, doubled
    by each further one (2, 4, 8 … minutes), at most ``SPECIOSA_LOCKOUT_MAX_MINUTES`` (a day).
    """
    base = dt.timedelta(minutes=settings.LOCKOUT_MINUTES)
    if request is None:
        return base
    extra = min(40, max(0, _failures(request) - settings.AXES_FAILURE_LIMIT))
    return min(base * 2 ** extra, dt.timedelta(minutes=settings.LOCKOUT_MAX_MINUTES))


def _keep_failures(request) -> None:
    """After a failed login: its attempt record lives ``SPECIOSA_LOCKOUT_MEMORY_HOURS`` (axes
    would end it with the current wait, and the next wait would start from nothing)."""
    from axes.models import AccessAttemptExpiration

    username = getattr(request, "speciosa_login_username", None)
    if username is None or getattr(request, "axes_ip_address", None) is None:
        return
    AccessAttemptExpiration.objects.filter(
        access_attempt__username=username, access_attempt__ip_address=request.axes_ip_address,
    ).update(expires_at=timezone.now() + dt.timedelta(hours=settings.LOCKOUT_MEMORY_HOURS))


def wait_message(wait: dt.timedelta) -> str:
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    return (f"Too many failed logins for this username from your network address. Wait "
            f"{minutes} minute{'s' if minutes != 1 else ''}, then try again; each further wrong "
            "password doubles the wait. Logins from other places are not affected, and your "
            "clinic's administrator can clear the wait.")


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: 429 saying how long to wait (JSON for the API)."""
    wait = lockout_wait(request)
    seconds = str(max(1, math.ceil(wait.total_seconds())))
    if request.path.startswith(("/api/", "/fhir/")):
        response = JsonResponse({"detail": wait_message(wait)}, status=429)
    else:
        response = render(request, "web/locked_out.html", {"message": wait_message(wait)},
                          status=429)
    response["Retry-After"] = seconds
    return response


# --------------------------------------------------------------------------- audit of logins

def _client_ip(request) -> str:
    return client_ip(request)


def _audit(action: str, user, request, **after) -> None:
    from speciosa.clinic.models import AuditEntry

    AuditEntry.objects.create(user=user, action=action, model="Login",
                              after={"ip": _client_ip(request), **after})


def audit_login(user, request, **after) -> None:
    """A login that is not a web session's (an API token issued: ``via="api-token"``)."""
    from speciosa.clinic.models import AuditEntry

    _audit(AuditEntry.Action.LOGIN, user, request, **after)


def on_logged_in(sender, request, user, **kwargs) -> None:
    from speciosa.clinic.models import AuditEntry

    _audit(AuditEntry.Action.LOGIN, user, request)


def on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    from speciosa.clinic.models import AuditEntry

    username = str((credentials or {}).get("username") or "")[:150]
    user = get_user_model().objects.filter(username=username).first()
    _audit(AuditEntry.Action.LOGIN_FAILED, user, request, username=username)
    if request is not None:
        _keep_failures(request)


def on_locked_out(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    from speciosa.clinic.models import AuditEntry

    username = str(username or "")[:150]
    user = get_user_model().objects.filter(username=username).first()
    _audit(AuditEntry.Action.LOCKOUT, user, request, username=username,
           minutes=math.ceil(lockout_wait(request).total_seconds() / 60))


def connect_signals() -> None:
    from axes.signals import user_locked_out
    from django.contrib.auth.signals import user_logged_in, user_login_failed

    user_logged_in.connect(on_logged_in, dispatch_uid="speciosa-audit-login")
    user_login_failed.connect(on_login_failed, dispatch_uid="speciosa-audit-login-failed")
    user_locked_out.connect(on_locked_out, dispatch_uid="speciosa-audit-lockout")
