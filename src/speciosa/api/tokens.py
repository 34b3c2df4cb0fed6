"""API tokens: django-rest-knox 5.1.0, hashed at rest, expiring, several per user.

- A token is 64 random hex characters (256 bits); the database keeps only its SHA-512 digest
  and its first 15 characters (to find the row), so neither a database dump nor the admin can
  hand one out again (docs/security.md, "API tokens").
- Each token expires: :func:`lifetime` (``SPECIOSA_STAFF_TOKEN_HOURS``, default 8 h, for staff;
  ``SPECIOSA_PATIENT_TOKEN_DAYS``, default 30 days, for patients).
- Tokens are revoked on a password change (:class:`RevokeTokensOnPasswordChange`), on *log out
  everywhere*, when the second factor is turned on or off or reset by an administrator, one
  by one from the owner's Security page, and all at once by an administrator
  (an audited action the user is told about).

Only :func:`issue` makes tokens, and only the token endpoint calls it, after the password and
the second factor (:class:`speciosa.api.views.TokenView`).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from knox.models import AuthToken

__all__ = ["RevokeTokensOnPasswordChange", "issue", "lifetime", "revoke", "revoke_all", "tokens_of"]


def lifetime(user) -> dt.timedelta:
    """How long a new token of ``user`` lives: a working shift for staff, a month for patients."""
    from speciosa.web import security

    if security.is_staff_login(user):
        return dt.timedelta(hours=settings.STAFF_TOKEN_HOURS)
    return dt.timedelta(days=settings.PATIENT_TOKEN_DAYS)


def issue(user) -> tuple[AuthToken, str]:
    """A new token of ``user``: the stored row (digest only) and the key, shown this once."""
    return AuthToken.objects.create(user=user, expiry=lifetime(user))


def tokens_of(user) -> QuerySet[AuthToken]:
    """The user's tokens that still work, oldest first."""
    return AuthToken.objects.filter(user=user, expiry__gt=timezone.now()).order_by("created")


def revoke(user, digest: str) -> int:
    """Revoke one token of ``user`` by its digest (another user's digest revokes nothing)."""
    deleted, _ = AuthToken.objects.filter(user=user, digest=str(digest)[:128]).delete()
    return deleted


def revoke_all(user) -> int:
    """Revoke every token of ``user``: the API tokens and the SMART on FHIR OAuth tokens
    (access, refresh and ID tokens, and authorization codes not yet traded; a backend client's
    tokens when ``user`` is its service login), so that whatever ends a login's API tokens (a
    new password, the second factor changed or reset, log out everywhere, an administrator)
    ends an app's access too. How many API and access tokens there were."""
    from django.db import transaction
    from django.db.models import Q
    from oauth2_provider.models import AccessToken, Grant, IDToken, RefreshToken

    mine = Q(user=user) | Q(user__isnull=True, application__user=user)
    with transaction.atomic():
        deleted, _ = AuthToken.objects.filter(user=user).delete()
        smart = AccessToken.objects.filter(mine).count()
        RefreshToken.objects.filter(mine).delete()
        AccessToken.objects.filter(mine).delete()
        IDToken.objects.filter(mine).delete()
        Grant.objects.filter(user=user).delete()
    return deleted + smart


class RevokeTokensOnPasswordChange:
    """Listed in ``AUTH_PASSWORD_VALIDATORS`` for its ``password_changed`` hook, not as a rule:
    Django calls it after a new password is saved, whichever way (the password page, the
    admin, ``speciosa manage changepassword``), and every API token of the user stops working.
    (A hash upgrade at login keeps the password and does not call it.)"""

    def validate(self, password: str, user=None) -> None:
        return None

    def password_changed(self, password: str, user=None) -> None:
        if user is not None and user.pk is not None:
            revoke_all(user)

    def get_help_text(self) -> str:
        return "A new password ends your API tokens (apps and scripts log in again)."
