"""``speciosa check-deploy`` and ``speciosa demo-code`` (see docs/security.md).

- ``check-deploy`` runs Django's ``check --deploy`` at warning level against the settings
  of the current environment: run it with the production environment variables.
- ``demo-code`` prints the current authenticator code of the *public* demo secret, so a person
  trying ``speciosa demo`` can log in as a clinician without an authenticator app. It knows no
  other secret and reads no database.
"""

from __future__ import annotations

import argparse
import base64
import binascii
from typing import Any

DEMO_TOTP_SECRET = "SPECIOSADEMOTOTP"  # base32, published in the README: demo only


def demo_code() -> str:
    """The current 6-digit TOTP code of :data:`DEMO_TOTP_SECRET` (30 s steps, SHA-1)."""
    from django_otp.oath import totp

    return f"{totp(base64.b32decode(DEMO_TOTP_SECRET)):06d}"


def give_demo_staff_authenticators() -> list[str]:
    """Every demo clinician, researcher and administrator gets a confirmed authenticator with
    the public demo secret (so the demo can be tried); returns their usernames."""
    from django.contrib.auth import get_user_model
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from speciosa.web import security

    key = binascii.hexlify(base64.b32decode(DEMO_TOTP_SECRET)).decode("ascii")
    names = []
    for user in get_user_model().objects.select_related("profile").order_by("username"):
        if not security.is_staff_login(user):
            continue
        TOTPDevice.objects.update_or_create(user=user, name="demo authenticator",
                                            defaults={"key": key, "confirmed": True})
        names.append(user.username)
    return names


def demo_second_factor_hint() -> str:
    return (f"\nClinicians, the researcher and the admin also enter an authenticator code. The demo's\n"
            f"secret is {DEMO_TOTP_SECRET} (add it to any authenticator app), or run\n"
            f"`speciosa demo-code` for the current code (now: {demo_code()}).")


def cmd_demo_code(args: argparse.Namespace) -> int:
    print(demo_code())
    return 0


def cmd_check_deploy(args: argparse.Namespace) -> int:
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    from .server import setup_django

    setup_django()
    try:
        call_command("check", deploy=True, fail_level="WARNING")
    except SystemCheckError as exc:
        print(exc)
        print("speciosa check-deploy: fix the settings above (docs/security.md).")
        return 1
    print("Deployment checks passed.")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("check-deploy", help="Django's deployment checks (warnings fail) with these settings")
    p.set_defaults(func=cmd_check_deploy)
    p = subparsers.add_parser("demo-code", help="the current authenticator code of the public demo secret")
    p.set_defaults(func=cmd_demo_code)
