"""Changes to a login's credentials that someone other than its owner makes (the admin).

An administrator never sees or mints a credential: the Django admin shows no API token, TOTP
secret or recovery code (:mod:`speciosa.web.admin`). What an administrator may do to another
user's login is here, and each of these

- is one :class:`~speciosa.clinic.models.AuditEntry` (action ``credentials``; the admin as its
  user, the login changed as ``model="User"``/``object_id``, ``after.what`` saying what), and
- leaves a :class:`~speciosa.web.models.CredentialNotice` that the user sees on every page
  until they dismiss it (what and when; no patient, no record),

in one transaction: the change, its audit entry and the notice are stored together or not at all.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from speciosa.clinic import writes

from .models import CredentialNotice

WHAT = {
    "second-factor-reset": "reset your second factor (authenticator and recovery codes; your API "
    "and app tokens were revoked)",
    "tokens-revoked": "revoked your API tokens (apps and scripts must log in again)",
    "unlocked": "cleared the failed logins that were slowing down your login",
    "password-set": "set a new password for your login (your API tokens were revoked)",
    "password-disabled": "turned off password login for your account (your API tokens were "
    "revoked)",
}


def _record(admin, user, what: str, **after) -> None:
    when = timezone.localtime()
    writes.audit(
        admin,
        writes.Action.CREDENTIALS,
        user,
        model="User",
        after={"what": what, "user": user.pk, **after},
    )
    CredentialNotice.objects.create(
        user=user,
        at=when,
        text=f"On {when:%Y-%m-%d at %H:%M} an administrator {WHAT[what]}. "
        "If you did not ask for this, tell your clinic.",
    )


def reset_second_factor(admin, user) -> int:
    """Delete the user's authenticators and recovery codes; they enrol again at next login.

    The user's API and SMART tokens are revoked too: a reset is what is done when the phone
    with the authenticator is lost, and the apps on that phone must not keep their access."""
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from speciosa.api import tokens

    with transaction.atomic():
        removed = 0
        for model in (TOTPDevice, StaticDevice):
            devices = model.objects.filter(user=user)
            removed += devices.count()
            devices.delete()
        revoked = tokens.revoke_all(user)
        _record(admin, user, "second-factor-reset", devices=removed, tokens=revoked)
    return removed


def revoke_tokens(admin, user) -> int:
    """Revoke every API token of the user."""
    from speciosa.api import tokens

    with transaction.atomic():
        revoked = tokens.revoke_all(user)
        _record(admin, user, "tokens-revoked", tokens=revoked)
    return revoked


def unlock(admin, user) -> int:
    """Clear the failed logins django-axes holds for the user's username (every address)."""
    from axes.models import AccessAttempt
    from axes.utils import reset

    with transaction.atomic():
        # axes' count includes the records' expiry rows; the audit says how many attempts
        cleared = AccessAttempt.objects.filter(username=user.get_username()).count()
        reset(username=user.get_username())
        _record(admin, user, "unlocked", attempts=cleared)
    return cleared


def password_set(admin, user) -> None:
    """An administrator gave the user a new password, or turned password login off (the
    admin's password form). A new password revokes the tokens by itself
    (:class:`speciosa.api.tokens.RevokeTokensOnPasswordChange`); turning it off does not, so
    they are revoked here as well."""
    from speciosa.api import tokens

    with transaction.atomic():
        revoked = tokens.revoke_all(user)
        what = "password-set" if user.has_usable_password() else "password-disabled"
        _record(admin, user, what, tokens=revoked)


def owner_revoked_token(user, count: int) -> None:
    """The owner revoked one of their own tokens on the Security page (audited, no notice)."""
    writes.audit(
        user,
        writes.Action.CREDENTIALS,
        user,
        model="User",
        after={"what": "token-revoked-by-owner", "user": user.pk, "tokens": count},
    )


def unseen_notices(user) -> list[CredentialNotice]:
    return list(CredentialNotice.objects.filter(user=user, seen_at=None).order_by("at")[:10])


def dismiss_notices(user) -> int:
    return CredentialNotice.objects.filter(user=user, seen_at=None).update(seen_at=timezone.now())
