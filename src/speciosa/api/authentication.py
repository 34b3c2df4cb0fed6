"""Who a request to ``/api/`` or ``/fhir/`` is, and whether it carries the second factor.

Two kinds of credential reach the API (docs/security.md, "Second factor"):

- **A bearer credential** that was issued only after the whole login, second factor included:
  today the API token (:class:`ApiTokenAuthentication`, ``Authorization: Token …``; hashed
  at rest and expiring, :mod:`speciosa.api.tokens`). Such a
  class says so with ``satisfies_second_factor = True``. A request that one of these classes
  *actually authenticated* needs no second-factor step in its session.
- **The session cookie** of the web login (:class:`VerifiedSessionAuthentication`): refused
  for a user who needs a second factor (staff always, patients who turned it on) until that
  session has given it.

SMART on FHIR bearer tokens (:class:`speciosa.interop.smart.SmartBearerAuthentication`,
``Authorization: Bearer …``, issued by the OAuth server only after the whole login, second
factor included) are accepted on ``/fhir/`` only, where their scopes narrow what the role
reaches: they are listed in the FHIR views' ``authentication_classes``, not in
``REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]`` (the REST API knows nothing of scopes),
and :func:`token_user` asks them for ``/fhir/`` requests. A header that no class accepts
(``Bearer x``, ``Basic …``, junk) authenticates nothing, so it can never stand in for the
second factor.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.settings import api_settings

SECOND_FACTOR_MESSAGE = "Complete the second factor (authenticator code) first."


class ApiTokenAuthentication(KnoxTokenAuthentication):
    """``Authorization: Token <key>`` (django-rest-knox: the key is compared with a stored
    digest; an expired token is deleted and refused). Tokens are issued only after the second
    factor (:class:`speciosa.api.views.TokenView`), so a token-authenticated request needs none."""

    satisfies_second_factor = True

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        try:
            return super().authenticate(request)
        except UnicodeError:  # a key that is not text: as wrong as any other key
            raise exceptions.AuthenticationFailed("Invalid token.") from None


class VerifiedSessionAuthentication(SessionAuthentication):
    """DRF's session authentication (with its CSRF check), refusing a session whose user
    needs a second factor and has not given it in this session.

    ``is_verified`` is put on the user by django-otp's ``OTPMiddleware``; without it the
    session counts as unverified (fail closed).
    """

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        verified = getattr(user, "is_verified", None)
        if callable(verified) and verified():
            return result
        from speciosa.web import security

        if security.needs_second_factor(user):
            raise exceptions.PermissionDenied(SECOND_FACTOR_MESSAGE)
        return result


def bearer_classes() -> list[type]:
    """The configured DRF authentication classes that stand in for the second factor."""
    return [cls for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES
            if getattr(cls, "satisfies_second_factor", False)]


def token_user(request: HttpRequest) -> Any | None:
    """The user a bearer credential of ``request`` authenticates, or None.

    Only classes from :func:`bearer_classes` are asked; a header none of them accepts, or one
    they reject (a wrong token), gives None. DRF authenticates the request again in the view
    with the same classes in the same order, so both agree on who the caller is.
    """
    if not request.META.get("HTTP_AUTHORIZATION"):
        return None
    user = None
    drf_request = Request(request)
    classes = bearer_classes()
    if request.path.startswith("/fhir/"):
        from speciosa.interop.smart import SmartBearerAuthentication

        classes = [SmartBearerAuthentication, *classes]
    for cls in classes:
        try:
            result = cls().authenticate(drf_request)
        except exceptions.APIException:
            result = None
        if result is not None:
            user = result[0]
            break
    return user


class _ApiTokenScheme(OpenApiAuthenticationExtension):
    """In the OpenAPI document the token stays ``tokenAuth`` (``Authorization: Token …``)."""

    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization",
                                                   token_prefix="Token")


class _VerifiedSessionScheme(SessionScheme):
    """In the OpenAPI document the session login stays ``cookieAuth``, as for DRF's own class."""

    target_class = VerifiedSessionAuthentication
