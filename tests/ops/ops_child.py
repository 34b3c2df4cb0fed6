"""A child process for the operations tests (run as ``python ops_child.py COMMAND ...``).

``--pause-after-writes K`` makes the process stop for good right after its K-th INSERT,
UPDATE or DELETE (printing ``PAUSED <in a transaction?>`` on stdout), so that the test can
SIGKILL it at a known point in the middle of a transaction. The application code runs
unchanged: the pause is a Django ``execute_wrapper`` around the real command.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "speciosa.settings")


def _setup() -> None:
    from speciosa.commands.server import setup_django

    setup_django()


@contextlib.contextmanager
def _pause_after(k: int | None):
    from django.db import connection

    if not k:
        yield
        return
    seen = 0

    def wrapper(execute, sql, params, many, context):
        nonlocal seen
        result = execute(sql, params, many, context)
        if sql.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            seen += 1
            if seen == k:
                print(f"PAUSED {connection.in_atomic_block}", flush=True)
                time.sleep(600)
        return result

    with connection.execute_wrapper(wrapper):
        yield


def counts() -> dict[str, int]:
    from speciosa.clinic import models as cmodels
    from speciosa.interop.models import ImportedResource

    out = {m.__name__: m._base_manager.count() for m in (
        cmodels.Patient, cmodels.DiaryDay, cmodels.Dose, cmodels.Assessment, cmodels.LabResult,
        cmodels.Note, cmodels.AuditEntry, cmodels.Submission, cmodels.Alert, ImportedResource)}
    out["AuditEntryDose"] = cmodels.AuditEntry.objects.filter(model="Dose").count()
    out["AuditEntryLabResult"] = cmodels.AuditEntry.objects.filter(model="LabResult").count()
    return out


def setup_patient() -> None:
    from django.contrib.auth import get_user_model

    from speciosa.clinic.models import CareTeam, Patient, Profile, Site

    site = Site.objects.create(name="Crash Site")
    team = CareTeam.objects.create(site=site, name="Crash Team")
    user = get_user_model().objects.create_user("crash_patient", password="crash-patient-password")
    Profile.objects.create(user=user, role="patient")
    Patient.objects.create(site=site, care_team=team, user=user, identifier="CRASH-1", given_name="Kit",
                           family_name="Crashley", birth_date=dt.date(1980, 1, 2), sex="female")


def diary(n_doses: int, token: str) -> None:
    from django.utils import timezone

    from speciosa.clinic import services
    from speciosa.clinic.models import Patient

    patient = Patient.objects.select_related("user").get(identifier="CRASH-1")
    start = timezone.now() - dt.timedelta(hours=2)
    doses = [{"taken_at": start + dt.timedelta(seconds=i), "amount": "1.5", "unit": "g"}
             for i in range(n_doses)]
    day = timezone.localtime(start).date()
    services.record_diary(patient.user, patient, services.DiaryInput(day=day, doses=doses, craving=3),
                          token=token)


def write_notes(seconds: float) -> None:
    """Keep writing notes (each in its own transaction) for ``seconds``."""
    from speciosa.clinic import services
    from speciosa.clinic.models import Patient

    patient = Patient.objects.order_by("pk").first()
    clinician = patient.care_team.members.first()
    end = time.monotonic() + seconds
    n = 0
    print("WRITING", flush=True)
    while time.monotonic() < end:
        services.record_note(clinician, patient, f"note {n}", token=f"writer-{n}")
        n += 1
    print(n, flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["counts", "setup-patient", "demo", "diary", "cli", "write-notes"])
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    parser.add_argument("--pause-after-writes", type=int)
    parser.add_argument("--doses", type=int, default=200)
    parser.add_argument("--token", default="crash-diary")
    parser.add_argument("--seconds", type=float, default=3)
    args = parser.parse_args(argv)
    _setup()
    with _pause_after(args.pause_after_writes):
        if args.command == "counts":
            print(json.dumps(counts()))
        elif args.command == "setup-patient":
            setup_patient()
        elif args.command == "demo":
            from speciosa import demo
            from speciosa.clinic import alerts

            demo.build_demo_clinic(seed=7, n_patients=6, days=40, today=dt.date(2026, 3, 1))
            alerts.sweep(as_of=dt.datetime(2026, 3, 1, 18, tzinfo=dt.UTC))
        elif args.command == "diary":
            diary(args.doses, args.token)
        elif args.command == "write-notes":
            write_notes(args.seconds)
        elif args.command == "cli":
            from speciosa.cli import main as cli_main

            return cli_main([a for a in args.rest if a != "--"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
