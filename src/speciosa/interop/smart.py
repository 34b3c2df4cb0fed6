"""SMART on FHIR: OAuth 2.0 for the FHIR API (django-oauth-toolkit is the authorization server).

- **SMART App Launch** (``/oauth/authorize/``, ``/oauth/token/``): authorization code with
  PKCE (S256 only, for every client). The person logs in through Speciosa's own login, second
  factor included for staff (the authorize page is an ordinary page behind
  :class:`speciosa.web.security.SecondFactorMiddleware`). Standalone launch with
  ``launch/patient``: a patient's login has its own record as context; a clinician picks one
  of their care teams' patients on the authorize page. EHR launch: a clinician starts the app
  from a patient's page (:class:`speciosa.interop.models.SmartLaunch`), the app sends
  ``launch=<key>`` with the ``launch`` scope. Either way the token response carries
  ``patient``. ``openid fhirUser`` adds an ID token whose ``fhirUser`` names the
  Practitioner or Patient.
- **SMART Backend Services**: client credentials with a signed JWT assertion
  (``private_key_jwt``, RS384 or ES384, keys registered with the client), ``system/`` scopes,
  bound to one site (:func:`authenticate_assertion`).
- **Scopes narrow, never widen** (:func:`reach`): a token reaches at most what its user's role
  reaches through :mod:`speciosa.clinic.access` (a backend client: its site's patients);
  ``patient/`` scopes only the token's patient; a type without a scope is a 403.

Scopes: SMART v1 ``<context>/<Type|*>.read`` and v2 ``.rs``, ``.r`` (read, vread, history),
``.s`` (search, ``$everything``, ``$export``); write scopes are not offered (the API is
read-only).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

import jwt
from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.forms import AllowForm
from oauth2_provider.models import AccessToken, Application
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import BaseScopes
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import AuthorizationView
from oauthlib.oauth2.rfc6749 import errors as oauth_errors

from speciosa.clinic import access
from speciosa.clinic.models import Patient, Role

from .export import RESOURCE_TYPES
from .models import AssertionUse, SmartClient, SmartGrantContext, SmartLaunch, SmartTokenContext

CONTEXTS = ("patient", "user", "system")
#: Permissions a scope may name: SMART v1 ``read``; v2 ``rs``, ``r``, ``s``.
PERMISSIONS = {"read": frozenset("rs"), "rs": frozenset("rs"), "r": frozenset("r"),
               "s": frozenset("s")}
_SCOPE = re.compile(r"^(patient|user|system)/([A-Za-z]+|\*)\.(read|rs|r|s)$")
OTHER_SCOPES = {
    "openid": "Know who you are (OpenID Connect)",
    "fhirUser": "Know your FHIR identity (Practitioner or Patient)",
    "launch": "Start from a patient's page in Speciosa (EHR launch)",
    "launch/patient": "Work on one patient's record (chosen when you allow access)",
    "offline_access": "Keep access after you log out (refresh token)",
    "online_access": "Keep access while you are logged in (refresh token)",
}
APP_SCOPES = frozenset(OTHER_SCOPES)
#: The assertion type of private_key_jwt (RFC 7523).
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("RS384", "ES384")
MAX_ASSERTION_SECONDS = 300  # SMART Backend Services: exp at most five minutes ahead
LAUNCH_SECONDS = 300


def _describe(context: str, rtype: str, perm: str) -> str:
    what = "all your records' resources" if rtype == "*" else f"{rtype} resources"
    how = {"read": "read and search", "rs": "read and search", "r": "read", "s": "search"}[perm]
    who = {"patient": "of the selected patient", "user": "you may see",
           "system": "of the client's site"}[context]
    return f"{how.capitalize()} {what} {who}"


def all_scopes() -> dict[str, str]:
    """Every scope Speciosa grants, with the description shown on the authorize page."""
    out = dict(OTHER_SCOPES)
    for context in CONTEXTS:
        for rtype in ("*", *RESOURCE_TYPES):
            for perm in PERMISSIONS:
                out[f"{context}/{rtype}.{perm}"] = _describe(context, rtype, perm)
    return out


_ALL = all_scopes()


class SmartScopes(BaseScopes):
    """django-oauth-toolkit's scopes backend: a SMART app may ask for patient/ and user/
    scopes (and openid, fhirUser, launch, ...); a backend client only for system/ scopes."""

    def get_all_scopes(self):
        return _ALL

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        kind = _kind(application)
        if kind == SmartClient.Kind.BACKEND:
            return [s for s in _ALL if s.startswith("system/")]
        if kind == SmartClient.Kind.APP:
            return [s for s in _ALL if not s.startswith("system/")]
        return []  # an Application without a SmartClient row gets nothing

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        return []


def _kind(application) -> str | None:
    if application is None:
        return None
    try:
        return application.smart.kind
    except SmartClient.DoesNotExist:
        return None


# --------------------------------------------------------------------------- scopes -> reach

def granted(scope: str) -> dict[tuple[str, str], frozenset[str]]:
    """``(context, type) -> permissions`` of a token's space-separated scopes."""
    out: dict[tuple[str, str], frozenset[str]] = {}
    for part in (scope or "").split():
        m = _SCOPE.match(part)
        if m:
            key = (m.group(1), m.group(2))
            out[key] = out.get(key, frozenset()) | PERMISSIONS[m.group(3)]
    return out


def allows(grants: dict[tuple[str, str], frozenset[str]], context: str, rtype: str,
           perm: str) -> bool:
    return any(perm in grants.get((context, t), frozenset()) for t in (rtype, "*"))


@dataclass
class Reach:
    """What one request may reach: the patients per resource type and interaction.

    Without an OAuth token (API token, web session) it is the role's reach
    (:func:`speciosa.clinic.access.visible_patients`) for every type.
    """

    user: object
    token: AccessToken | None = None

    def patients(self, rtype: str, perm: str = "r"):
        """The patients whose ``rtype`` resources this request may ``perm`` (``r`` read,
        ``s`` search); a 403 when the token's scopes do not cover it."""
        if self.token is None:
            return access.visible_patients(self.user)
        grants = granted(self.token.scope)
        client = _client(self.token.application)
        if client is not None and client.kind == SmartClient.Kind.BACKEND:
            if allows(grants, "system", rtype, perm) and client.site_id:
                return backend_patients(client)
            raise PermissionDenied(self._refusal(rtype, perm, "system"))
        base = access.visible_patients(self.user)
        if allows(grants, "user", rtype, perm):
            return base
        if allows(grants, "patient", rtype, perm):
            patient_id = self.patient_id
            return base.filter(pk=patient_id) if patient_id else base.none()
        raise PermissionDenied(self._refusal(rtype, perm, "patient/ or user/"))

    @property
    def recipient(self) -> str | None:
        """The other party a backend client is (its registered name), else ``None``: what it
        reads is a disclosure under a 42 CFR Part 2 consent naming it."""
        client = _client(self.token.application) if self.token is not None else None
        if client is not None and client.kind == SmartClient.Kind.BACKEND:
            return client.application.name
        return None

    @property
    def patient_id(self) -> int | None:
        if self.token is None:
            return None
        return (SmartTokenContext.objects.filter(access_token=self.token)
                .values_list("patient_id", flat=True).first())

    @property
    def application(self):
        return self.token.application if self.token is not None else None

    def _refusal(self, rtype: str, perm: str, context: str) -> str:
        verb = {"r": "read", "s": "search"}[perm]
        return (f"This access token's scopes do not allow to {verb} {rtype}: it needs a "
                f"{context} scope for {rtype} or * ({verb} is .read, .rs or .{perm}); granted: "
                f"{self.token.scope or 'none'}.")


def backend_patients(client: SmartClient):
    """The patients a backend client reaches: those of its site with a 42 CFR Part 2
    consent in force naming the client (its registered name) as the recipient. A backend
    client is another party: what it reads is a disclosure (speciosa.clinic.consents)."""
    from speciosa.clinic import consents

    site = Patient.objects.filter(site_id=client.site_id)
    ids = consents.part2_in_force(site.values_list("pk", flat=True), client.application.name)
    return site.filter(pk__in=sorted(ids))


def _client(application) -> SmartClient | None:
    if application is None:
        return None
    try:
        return application.smart
    except SmartClient.DoesNotExist:
        return None


def reach(request) -> Reach:
    """The reach of a DRF ``request`` (see :class:`Reach`)."""
    auth = getattr(request, "auth", None)
    return Reach(request.user, auth if isinstance(auth, AccessToken) else None)


class SmartBearerAuthentication(OAuth2Authentication):
    """``Authorization: Bearer <access token>`` on the FHIR API.

    A token of an interactive login was issued only after the whole login, second factor
    included (the authorize page sits behind the second-factor step), so it stands in for the
    second factor. A backend client's token acts as the client's service login.
    """

    satisfies_second_factor = True
    www_authenticate_realm = "fhir"

    def authenticate(self, request):
        # only the Authorization header (never a token in a URL, which logs keep, or in a
        # body); and it is checked on the Django request, so that asking for a bearer token
        # does not parse a request body (a form POST would be a 415 instead of a 403)
        # the scheme is case-insensitive (RFC 9110 11.1): "bearer <token>" is a bearer token
        scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return None
        valid, oauth_request = get_oauthlib_core().verify_request(request._request, scopes=[])
        if not valid:
            request.oauth2_error = getattr(oauth_request, "oauth2_error", {})
            return None
        user, token = oauth_request.user, oauth_request.access_token
        if user is None:  # client credentials: the backend client's own service login
            user = token.application.user if token.application_id else None
            if user is None or _kind(token.application) != SmartClient.Kind.BACKEND:
                return None
        if not user.is_active:
            return None
        return user, token


def end_online_access(user) -> int:
    """Revoke the refresh tokens ``user`` granted with ``online_access`` (and not
    ``offline_access``): 'keep access while you are logged in' ends when the person logs out.
    Their access tokens run out within the hour as they would. How many were revoked."""
    from oauth2_provider.models import RefreshToken

    online = (RefreshToken.objects.filter(user=user, revoked__isnull=True,
                                          access_token__scope__contains="online_access")
              .select_related("access_token"))
    revoked = 0
    for refresh in online:
        scopes = refresh.access_token.scope.split() if refresh.access_token else []
        if "online_access" in scopes and "offline_access" not in scopes:
            RefreshToken.objects.filter(pk=refresh.pk).update(revoked=timezone.now())
            revoked += 1
    return revoked


# --------------------------------------------------------------------------- fhirUser

def fhir_user(user) -> str | None:
    """The FHIR identity of a login: ``Patient/<id>`` for a patient's own login,
    ``Practitioner/<id>`` for a clinician (as the exporter names them)."""
    base = f"{settings.SPECIOSA_BASE_URL}/fhir/"
    if access.has_role(user, Role.PATIENT):
        pk = Patient.objects.filter(user=user).values_list("pk", flat=True).first()
        return f"{base}Patient/{pk}" if pk else None
    if access.has_role(user, Role.CLINICIAN):
        return f"{base}Practitioner/{user.pk}"
    return None


# --------------------------------------------------------------------------- the validator

class SmartValidator(OAuth2Validator):
    """django-oauth-toolkit's validator, with the SMART launch context (the patient, carried
    from the authorize page through the code to the token), ``fhirUser`` in the ID token and
    ``private_key_jwt`` client authentication for backend clients."""

    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, "fhirUser": "fhirUser"}

    def get_additional_claims(self, request):
        who = fhir_user(request.user) if request.user is not None else None
        return {"fhirUser": who} if who else {}

    def save_authorization_code(self, client_id, code, request, *args, **kwargs):
        grant = self._create_authorization_code(request, code)
        patient_id = getattr(request, "speciosa_patient", None)
        if patient_id:
            SmartGrantContext.objects.create(grant=grant, patient_id=patient_id)

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        valid = super().validate_code(client_id, code, client, request, *args, **kwargs)
        if valid and not request.user.is_active:
            return False  # deactivated since the code was issued
        if valid:
            request.speciosa_patient = (SmartGrantContext.objects
                                        .filter(grant__code=code, grant__application=client)
                                        .values_list("patient_id", flat=True).first())
        return valid

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        """A refresh token of a deactivated login gets no new token (its bearer tokens are
        refused already: :class:`SmartBearerAuthentication`)."""
        valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        return valid and request.user is not None and request.user.is_active

    def save_bearer_token(self, token, request, *args, **kwargs):
        patient_id = getattr(request, "speciosa_patient", None)
        old = getattr(request, "refresh_token_instance", None)
        if patient_id is None and old is not None and old.access_token_id:
            # a refreshed token keeps the context of the token it replaces
            patient_id = (SmartTokenContext.objects.filter(access_token_id=old.access_token_id)
                          .values_list("patient_id", flat=True).first())
        super().save_bearer_token(token, request, *args, **kwargs)
        if patient_id:
            checksum = hashlib.sha256(token["access_token"].encode("utf-8")).hexdigest()
            new = AccessToken.objects.get(token_checksum=checksum)
            SmartTokenContext.objects.create(access_token=new, patient_id=patient_id)
            token["patient"] = str(patient_id)

    def client_authentication_required(self, request, *args, **kwargs):
        if getattr(request, "client_assertion_type", None):
            return True
        return super().client_authentication_required(request, *args, **kwargs)

    def authenticate_client(self, request, *args, **kwargs):
        assertion_type = getattr(request, "client_assertion_type", None)
        if assertion_type is not None:
            if assertion_type != JWT_BEARER:
                return False
            application = authenticate_assertion(getattr(request, "client_assertion", None),
                                                 _token_urls(request))
            if application is None:
                return False
            request.client = application
            request.client_id = application.client_id
            return True
        if request.grant_type == "client_credentials":
            return False  # backend clients prove themselves with a signed JWT only
        return super().authenticate_client(request, *args, **kwargs)


def _token_urls(request) -> list[str]:
    """The token endpoint's absolute URLs an assertion's ``aud`` may name: at the public
    address (``SPECIOSA_BASE_URL``) and at the host of this request (which Django checked
    against ``ALLOWED_HOSTS``), by the scheme it came with."""
    path = reverse("oauth2_provider:token")
    headers = request.headers or {}
    scheme = "https" if headers.get("X_DJANGO_OAUTH_TOOLKIT_SECURE") else "http"
    urls = [f"{settings.SPECIOSA_BASE_URL}{path}"]
    host = headers.get("HTTP_HOST") or headers.get("SERVER_NAME")  # as Django's get_host
    if host and not headers.get("HTTP_HOST") and headers.get("SERVER_PORT") not in (
            None, "80", "443"):
        host = f"{host}:{headers['SERVER_PORT']}"
    if host:
        urls.append(f"{scheme}://{host}{path}")
    return urls


def authenticate_assertion(assertion: str | None, token_urls: list[str]) -> Application | None:
    """The backend client that signed ``assertion`` (a JWT: ``iss`` = ``sub`` = its client
    id, ``aud`` the token endpoint, ``exp`` at most five minutes ahead, a ``jti`` never seen
    before, RS384 or ES384 with one of its registered keys), or None.

    A used ``jti`` is kept until the assertion expires, so a replay is refused."""
    if not assertion or len(assertion) > 16_000:
        return None
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    client_id = claims.get("iss")
    if not isinstance(client_id, str) or claims.get("sub") != client_id:
        return None
    if header.get("alg") not in ASSERTION_ALGORITHMS:
        return None
    client = (SmartClient.objects.select_related("application")
              .filter(application__client_id=client_id, kind=SmartClient.Kind.BACKEND).first())
    if client is None:
        return None
    key = _key_for(client.jwks, header)
    if key is None:
        return None
    try:
        verified = jwt.decode(assertion, key=key, algorithms=list(ASSERTION_ALGORITHMS),
                              audience=token_urls, issuer=client_id,
                              options={"require": ["exp", "jti", "iss", "sub", "aud"]})
    except jwt.PyJWTError:
        return None
    expires = dt.datetime.fromtimestamp(verified["exp"], dt.UTC)
    if expires > timezone.now() + dt.timedelta(seconds=MAX_ASSERTION_SECONDS + 30):
        return None
    AssertionUse.objects.filter(expires__lt=timezone.now()).delete()
    try:
        with transaction.atomic():
            AssertionUse.objects.create(client_id=client_id, jti=str(verified["jti"])[:255],
                                        expires=expires)
    except IntegrityError:
        return None  # the same jti again: a replay
    return client.application


def _key_for(jwks: dict, header: dict):
    """The public key of ``jwks`` that matches the JWT header (``kid``, else the only key)."""
    try:
        keys = jwt.PyJWKSet.from_dict(jwks).keys
    except (jwt.PyJWTError, TypeError, KeyError, ValueError):
        return None
    kid = header.get("kid")
    if kid is not None:
        keys = [k for k in keys if k.key_id == kid]
    elif len(keys) != 1:
        return None
    return keys[0] if keys else None


# --------------------------------------------------------------------------- authorize page

class SmartAllowForm(AllowForm):
    launch = forms.CharField(required=False, widget=forms.HiddenInput(), max_length=64)
    patient = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, choices=())


class SmartAuthorizationView(AuthorizationView):
    """The authorize page: django-oauth-toolkit's, with the SMART launch context.

    It is reached only by a logged-in user with the second factor done (the login page and
    :class:`speciosa.web.security.SecondFactorMiddleware` come first), and shows what the app
    asks for; with ``launch/patient`` a clinician chooses the patient, and with ``launch`` the
    EHR launch names them."""

    template_name = "interop/authorize.html"
    form_class = SmartAllowForm

    def validate_authorization_request(self, request):
        scopes, credentials = super().validate_authorization_request(request)
        if credentials.get("code_challenge_method") != "S256":
            raise OAuthToolkitError(
                error=oauth_errors.InvalidRequestError(
                    description="PKCE with code_challenge_method=S256 is required.",
                    state=credentials.get("state")),
                redirect_uri=credentials.get("redirect_uri"))
        return scopes, credentials

    def _choices(self):
        return [(p.pk, f"{p.family_name}, {p.given_name} ({p.identifier})")
                for p in access.visible_patients(self.request.user).order_by("family_name", "pk")]

    def get_form(self, form_class=None):
        form = super().get_form(form_class)
        form.fields["patient"].choices = [("", "Choose a patient"), *self._choices()]
        return form

    def get_initial(self):
        initial = super().get_initial()
        initial["launch"] = self.request.GET.get("launch", "")
        return initial

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        scopes = kwargs.get("scopes") or []
        context["needs_patient"] = self._needs_patient(scopes) and not self._fixed_patient(scopes)
        context["fixed_patient"] = self._fixed_patient(scopes)
        return context

    def _needs_patient(self, scopes) -> bool:
        return "launch/patient" in scopes or "launch" in scopes

    def _fixed_patient(self, scopes, launch_key: str | None = None,
                       client_id: str | None = None) -> Patient | None:
        """The patient the context already names: the EHR launch's (a launch started by this
        login for this app: its key was handed to that app's launch URL only), or a patient's
        own."""
        key = launch_key if launch_key is not None else self.request.GET.get("launch", "")
        if client_id is None:
            client_id = self.request.GET.get("client_id", "")
        if key:
            launch = SmartLaunch.objects.filter(key=key, user=self.request.user, used=False,
                                                application__client_id=client_id,
                                                expires__gt=timezone.now()).first()
            return launch.patient if launch else None
        if "launch/patient" in scopes and access.has_role(self.request.user, Role.PATIENT):
            return access.visible_patients(self.request.user).first()
        return None

    def get(self, request, *args, **kwargs):
        scopes = request.GET.get("scope", "").split()
        key = request.GET.get("launch", "")
        bases = fhir_bases(request)
        if request.GET.get("aud", "").rstrip("/") not in bases:
            # SMART App Launch: aud names the FHIR server the token is for, so that a
            # genuine token is never sent to a counterfeit server
            return self._refuse(request, f"aud must name this FHIR server ({bases[0]}).")
        if "launch" in scopes and not (key and self._fixed_patient(scopes, key)):
            return self._refuse(request, "The launch parameter is unknown, used or expired: "
                                         "start the app again from the patient's page.")
        return super().get(request, *args, **kwargs)

    def _refuse(self, request, message: str):
        """An invalid request, sent back to the app when its client and redirect are valid."""
        try:
            _, credentials = super().validate_authorization_request(request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        error = OAuthToolkitError(
            error=oauth_errors.InvalidRequestError(description=message,
                                                   state=credentials.get("state")),
            redirect_uri=credentials.get("redirect_uri"))
        return self.error_response(error, application=None)

    def form_valid(self, form):
        scopes = (form.cleaned_data.get("scope") or "").split()
        self._patient_id = None
        if form.cleaned_data.get("allow") and self._needs_patient(scopes):
            key = form.cleaned_data.get("launch") or ""
            fixed = self._fixed_patient(scopes, key, form.cleaned_data.get("client_id") or "")
            if "launch" in scopes and fixed is None:
                form.add_error(None, "The launch is unknown, used or expired.")
                return self.form_invalid(form)
            patient_id = fixed.pk if fixed else form.cleaned_data.get("patient")
            if not patient_id or not access.visible_patients(self.request.user).filter(
                    pk=patient_id).exists():
                form.add_error("patient", "Choose the patient whose record the app may open.")
                return self.form_invalid(form)
            if key:
                SmartLaunch.objects.filter(key=key).update(used=True)
            self._patient_id = patient_id
        return super().form_valid(form)

    def form_invalid(self, form):
        scopes = (form.data.get("scope") or "").split()
        application = Application.objects.filter(client_id=form.data.get("client_id")).first()
        return self.render_to_response(self.get_context_data(
            form=form, scopes=scopes, application=application,
            scopes_descriptions=[_ALL.get(s, s) for s in scopes]))

    def create_authorization_response(self, request, scopes, credentials, allow):
        patient_id = getattr(self, "_patient_id", None)
        if patient_id:
            credentials = {**credentials, "speciosa_patient": patient_id}
        return super().create_authorization_response(request, scopes, credentials, allow)


def fhir_bases(request) -> list[str]:
    """The FHIR base URLs of this server an authorize request's ``aud`` may name (no
    trailing slash): at the public address (``SPECIOSA_BASE_URL``) and at this request's host
    (checked by Django against ``ALLOWED_HOSTS``), as the EHR launch's ``iss`` names it."""
    return list(dict.fromkeys([f"{settings.SPECIOSA_BASE_URL.rstrip('/')}/fhir",
                               request.build_absolute_uri("/fhir")]))


def launchable_apps() -> list[SmartClient]:
    """The SMART apps a clinician can start from a patient's page (those with a launch URL)."""
    return list(SmartClient.objects.filter(kind=SmartClient.Kind.APP).exclude(launch_uri="")
                .select_related("application").order_by("application__name"))


def launch_origins(apps) -> list[str]:
    from urllib.parse import urlsplit

    return sorted({f"{u.scheme}://{u.netloc}" for u in (urlsplit(a.launch_uri) for a in apps)})


@require_POST
def ehr_launch(request, patient_id: int):
    """A clinician starts a SMART app from a patient's page: a single-use launch key (minutes)
    for this clinician, app and patient; the browser goes to the app's launch URL with
    ``iss`` (the FHIR base) and ``launch``."""
    if not request.user.is_authenticated:
        return HttpResponseRedirect(f"{reverse('login')}?next={request.path}")
    access.require_role(request.user, Role.CLINICIAN)
    patient = access.patient_for(request.user, patient_id)
    client = get_object_or_404(SmartClient, application__client_id=request.POST.get(
        "client_id", ""), kind=SmartClient.Kind.APP)
    if not client.launch_uri:
        raise Http404("This app has no launch URL.")
    launch = SmartLaunch.objects.create(
        key=secrets.token_urlsafe(32), user=request.user, application=client.application,
        patient=patient, expires=timezone.now() + dt.timedelta(seconds=LAUNCH_SECONDS))
    sep = "&" if "?" in client.launch_uri else "?"
    iss = request.build_absolute_uri("/fhir")
    query = urlencode({"iss": iss, "launch": launch.key})
    return HttpResponseRedirect(f"{client.launch_uri}{sep}{query}")


# --------------------------------------------------------------------------- discovery

def smart_configuration(request):
    """``/fhir/.well-known/smart-configuration`` (SMART App Launch 2.x, section 2.3)."""
    base = request.build_absolute_uri("/")[:-1]
    return JsonResponse({
        "issuer": oauth2_settings.oidc_issuer(request),
        "jwks_uri": f"{base}{reverse('oauth2_provider:jwks-info')}",
        "authorization_endpoint": f"{base}{reverse('oauth2_provider:authorize')}",
        "token_endpoint": f"{base}{reverse('oauth2_provider:token')}",
        "revocation_endpoint": f"{base}{reverse('oauth2_provider:revoke-token')}",
        "introspection_endpoint": f"{base}{reverse('oauth2_provider:introspect')}",
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post",
                                                  "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "scopes_supported": ["openid", "fhirUser", "launch", "launch/patient", "offline_access",
                             "online_access", "patient/*.read", "patient/*.rs", "user/*.read",
                             "user/*.rs", "system/*.read", "system/*.rs"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": ["launch-ehr", "launch-standalone", "client-public",
                         "client-confidential-symmetric", "client-confidential-asymmetric",
                         "context-ehr-patient", "context-standalone-patient",
                         "sso-openid-connect", "permission-patient", "permission-user",
                         "permission-offline", "permission-online", "permission-v1",
                         "permission-v2"],
    }, headers={"Cache-Control": "no-store"})
