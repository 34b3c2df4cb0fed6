"""``speciosa migrate``, ``speciosa demo``, ``speciosa serve`` and ``speciosa manage``."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from typing import Any


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "speciosa.settings")
    import django
    from django.conf import settings

    django.setup()
    if "sqlite3" in settings.DATABASES["default"]["ENGINE"]:
        os.makedirs(os.path.dirname(str(settings.DATABASES["default"]["NAME"])), exist_ok=True)


def cmd_migrate(args: argparse.Namespace) -> int:
    setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1 if args.verbose else 0)
    print("Database is up to date.")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    os.environ.setdefault("SPECIOSA_DEBUG", "1")  # the demo is a development setup
    setup_django()
    from django.core.management import call_command

    from speciosa import demo
    from speciosa.clinic.models import Patient

    call_command("migrate", interactive=False, verbosity=0)
    if Patient.objects.exists():
        print("The database already holds patients; the demo clinic is not loaded again.")
        print("(Delete var/speciosa.sqlite3 to start afresh.)")
        summary = None
    else:
        today = dt.date.fromisoformat(args.today) if args.today else None
        summary = demo.build_demo_clinic(seed=args.seed, today=today, password=args.password)
        print(f"Loaded the synthetic demo clinic in {summary.seconds:.1f} s.")
        from speciosa.clinic import alerts

        swept = alerts.sweep()
        print(f"Safety rules: {swept.findings} findings, {swept.created} alerts for the care teams.")
    from django.conf import settings

    from speciosa.commands import security
    from speciosa.research import deid

    if not os.environ.get(deid.KEY_ENV_DEFAULT) and deid.write_demo_key(settings.RESEARCH_KEY_FILE):
        print(f"Wrote a random research key for the demo to {settings.RESEARCH_KEY_FILE} "
              "(research exports read it when SPECIOSA_RESEARCH_KEY is unset).")
    staff = security.give_demo_staff_authenticators()
    print(f"\nDemo logins (password for all: {args.password}):")
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.select_related("profile").order_by("username")
    shown_patients = 0
    for user in users:
        role = "admin" if user.is_superuser else getattr(getattr(user, "profile", None), "role", "")
        if role == "patient":
            shown_patients += 1
            if shown_patients > 3:
                continue
        print(f"  {user.username:<16} {role}")
    if shown_patients > 3:
        print(f"  … and {shown_patients - 3} more patients (patient04 … patient{shown_patients:02d})")
    if staff:
        print(security.demo_second_factor_hint())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    os.environ.setdefault("SPECIOSA_DEBUG", "1")
    os.environ.setdefault("SPECIOSA_RESEARCH_ANALYSIS_BACKGROUND", "1")  # one process: a thread
    setup_django()
    from django.core.management import call_command

    from speciosa.research import cached

    try:  # warm the research page's analysis off the first request
        cached.schedule()
    except Exception:  # noqa: BLE001 - no tables yet ('speciosa migrate'): the page says so
        pass

    print(f"Serving Speciosa at http://{args.host}:{args.port}/  (Ctrl-C stops it)")
    call_command("runserver", f"{args.host}:{args.port}", use_reloader=False)
    return 0


def cmd_manage(args: argparse.Namespace) -> int:
    setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["speciosa manage", *args.rest])
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("migrate", help="create or update the database tables")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_migrate)

    p = subparsers.add_parser("demo", help="load the synthetic demo clinic (seeded, reproducible)")
    p.add_argument("--seed", type=int, default=20261125)
    p.add_argument("--today", help="the demo's last day (YYYY-MM-DD); default today")
    p.add_argument("--password", default="speciosa-demo")
    p.set_defaults(func=cmd_demo)

    p = subparsers.add_parser("serve", help="serve the web app (development server, embedded demo)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_serve)

    p = subparsers.add_parser("manage", help="run a Django management command")
    p.add_argument("rest", nargs="*")
    p.set_defaults(func=cmd_manage)

