"""The builder: one transaction that stores the demo clinic, part by part.

The demo is a bulk import. Each part (:mod:`~speciosa.demo.people`, :mod:`~speciosa.demo.diary`,
:mod:`~speciosa.demo.assessments`, :mod:`~speciosa.demo.labs`, :mod:`~speciosa.demo.notes`,
:mod:`~speciosa.demo.medications`) generates its rows into :attr:`Builder.rows`; the builder
writes them with ``bulk_create`` and adds one audit entry for the whole import through the
write kernel (:func:`speciosa.clinic.writes.audit`): one entry per row would make the build
minutes long and say nothing more. The scored responses are mapped by the kernel's
:func:`~speciosa.clinic.writes.assessment_fields` and the lab flags come from
:func:`speciosa.clinic.services.lab_flag`, as for a record typed in.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from speciosa.clinic import writes
from speciosa.clinic.models import (
    Assessment,
    AuditEntry,
    CareTeam,
    Consent,
    ConsentDocument,
    ConsentRevocation,
    ConsentSignature,
    DiaryDay,
    Dose,
    LabResult,
    Medication,
    Note,
    Patient,
    Profile,
    Site,
    SubstanceUse,
)
from speciosa.knowledge import instruments as kinstruments
from speciosa.knowledge import labs as klabs

from . import assessments, diary, labs, medications, people
from .common import BATCH
from .people import CARE_TEAMS, SITES
from .planted import planted_model


class DemoClinicExists(RuntimeError):
    """The database already holds patients; the demo loads only into an empty clinic."""


@dataclass
class DemoSummary:
    """What :func:`build_demo_clinic` created.

    ``logins`` lists ``(username, role, who)``; every demo login shares the password given.
    ``planted_exceptions`` lists the identifiers of patients whose prolactin does not follow
    the planted formula (see the module docstring).
    """

    seed: int
    today: dt.date
    sites: int = 0
    clinicians: int = 0
    care_teams: int = 0
    patients: int = 0
    consents: int = 0
    diary_days: int = 0
    doses: int = 0
    assessments: int = 0
    lab_results: int = 0
    substance_uses: int = 0
    medications: int = 0
    notes: int = 0
    plans: int = 0
    seconds: float = 0.0
    logins: list[tuple[str, str, str]] = field(default_factory=list)
    planted_exceptions: list[str] = field(default_factory=list)
    planted_model: dict[str, Any] = field(default_factory=dict)



def build_demo_clinic(*, seed: int = 20261125, n_patients: int = 64, days: int = 200,
                      today: dt.date | None = None, password: str = "speciosa-demo",
                      reset: bool = False) -> DemoSummary:
    """Generate the synthetic demo clinic into the database, in one transaction.

    Parameters
    ----------
    seed : int
        Seed of :func:`numpy.random.default_rng`; each patient draws from its own stream
        ``default_rng([seed, index])``, so patient 3 is the same whatever ``n_patients``.
    n_patients : int
        Number of patients (at least 1). The clinically interesting patients are indices
        0-8 (see ``SPECIAL_*``); a build with fewer patients has only the first of them.
    days : int
        Days of history per patient (at least 28); the record runs through ``today - 1``.
    today : datetime.date, optional
        The clinic's "today"; defaults to the current local date.
    password : str
        The password of every demo login (hashed once).
    reset : bool
        When patients already exist: delete the clinical data first instead of refusing.
        Refused anyway when audit entries refer to patients (the audit trail is append-only).

    Returns
    -------
    DemoSummary

    Raises
    ------
    DemoClinicExists
        If the database already holds patients (and ``reset`` is false), or demo usernames
        are taken.
    ValueError
        For ``n_patients < 1`` or ``days < 28``.
    """

    if n_patients < 1:
        raise ValueError("n_patients must be at least 1.")
    if days < 28:
        raise ValueError("days must be at least 28 (labs are drawn every 4-8 weeks).")
    today = today or timezone.localdate()
    started = time.perf_counter()
    with transaction.atomic():
        existing = Patient.objects.count()
        if existing:
            if not reset:
                raise DemoClinicExists(
                    f"The database already holds {existing} patient(s); the demo clinic loads only "
                    "into an empty clinic. Use a fresh database (for SQLite: remove "
                    "var/speciosa.sqlite3, run 'speciosa migrate', then 'speciosa demo'), or pass "
                    "reset=True to delete the clinical data first.")
            _reset()
        summary = Builder(seed=seed, n_patients=n_patients, days=days, today=today,
                          password=password).build()
    summary.seconds = time.perf_counter() - started
    return summary



def _reset() -> None:
    """Delete clinical data and demo logins. The audit trail stays (append-only), so this is
    refused when audit entries refer to patients or to the users it would delete."""
    User = get_user_model()
    if AuditEntry.objects.filter(patient__isnull=False).exists():
        raise DemoClinicExists(
            "Cannot reset: the append-only audit trail refers to existing patients. "
            "Load the demo into a fresh database instead.")
    usernames = people.usernames_in_db()
    if AuditEntry.objects.filter(user__username__in=usernames).exists():
        raise DemoClinicExists(
            "Cannot reset: the append-only audit trail refers to demo users. "
            "Load the demo into a fresh database instead.")
    from django.apps import apps

    alert = next((m for m in apps.get_app_config("clinic").get_models() if m.__name__ == "Alert"), None)
    if alert is not None:  # safety alerts computed from the old data
        alert.objects.all().delete()
    from speciosa.schedules.models import Draft, PatientPlan

    Draft.objects.all().delete()
    for model in (PatientPlan, Dose, Assessment, SubstanceUse, LabResult, Medication, Note):
        model.objects.exclude(replaces=None).update(replaces=None)
        model.objects.all().delete()
    DiaryDay.objects.all().delete()
    Consent.objects.all().delete_for_demo_reset()  # consents are append-only, except here
    ConsentRevocation.objects.all().delete_for_demo_reset()
    ConsentSignature.objects.all().delete_for_demo_reset()
    ConsentDocument.objects.filter(site__name__in=[s[0] for s in SITES]).delete()
    Patient.objects.all().delete()
    CareTeam.objects.all().delete()
    Profile.objects.filter(user__username__in=usernames).delete()
    User.objects.filter(username__in=usernames).delete()
    Site.objects.filter(name__in=[s[0] for s in SITES], patients=None, profile=None).delete()



class Builder:
    """The state every part of the build shares: the days, the clinic's sites and staff, the
    instrument and lab definitions, and the generated rows by model."""

    def __init__(self, *, seed: int, n_patients: int, days: int, today: dt.date, password: str):
        self.seed = seed
        self.n = n_patients
        self.days = days
        self.today = today
        self.first_day = today - dt.timedelta(days=days)  # day index 0; index days-1 = yesterday
        self.password_hash = make_password(password)
        self.inst = {i: kinstruments.get_instrument(i) for i in assessments.INSTRUMENTS}
        self.summary = DemoSummary(seed=seed, today=today)
        self.rows: dict[type, list] = {m: [] for m in (ConsentSignature, Consent, DiaryDay, Dose, Assessment, LabResult,
                                                       SubstanceUse, Medication, Note)}
        self.lab_meta = {code: klabs.get_lab(code) for code in labs.LABS}
        # set by people.add_people
        self.sites: list[Site] = []
        self.documents: dict[tuple[int, str], Any] = {}
        self.tz: list[Any] = []
        self.users: dict[str, Any] = {}
        self.teams: list[CareTeam] = []
        self.plans: list[dict[str, Any]] = []

    def build(self) -> DemoSummary:
        taken = people.usernames_in_db()
        if taken:
            raise DemoClinicExists(
                f"Demo usernames already exist ({', '.join(sorted(taken)[:5])}); load the demo "
                "into a fresh database.")
        patients, patient_users = people.add_people(self)
        for i, (patient, plan) in enumerate(zip(patients, self.plans, strict=True)):
            self.patient(i, patient, plan, patient_users[i])
        s = self.summary
        DiaryDay.objects.bulk_create(self.rows[DiaryDay], batch_size=BATCH)
        ConsentSignature.objects.bulk_create(self.rows[ConsentSignature], batch_size=BATCH)
        for model in (Consent, Dose, Assessment, LabResult, SubstanceUse, Medication, Note):
            model.objects.bulk_create(self.rows[model], batch_size=BATCH)
        s.consents = len(self.rows[Consent])
        s.diary_days = len(self.rows[DiaryDay])
        s.doses = len(self.rows[Dose])
        s.assessments = len(self.rows[Assessment])
        s.lab_results = len(self.rows[LabResult])
        s.substance_uses = len(self.rows[SubstanceUse])
        s.medications = len(self.rows[Medication])
        s.notes = len(self.rows[Note])
        s.planted_model = planted_model()
        s.plans = self.add_plans(patients)
        writes.audit(
            None, writes.Action.CREATE, model="DemoClinic",
            reason="synthetic demo clinic loaded",
            after={"bulk_import": True, "seed": self.seed, "today": self.today.isoformat(),
                   "days": self.days, "patients": s.patients, "diary_days": s.diary_days,
                   "doses": s.doses, "assessments": s.assessments, "lab_results": s.lab_results,
                   "notes": s.notes, "plans": s.plans, "planted_model": s.planted_model,
                   "note": "One entry for the whole bulk import, not one per row."})
        return s

    def add_plans(self, patients: list[Patient]) -> int:
        """Every patient on the shipped standard plan (speciosa.schedules) from six weeks ago:
        their diary days and the clinic's PHQ-9 and GAD-7 count towards it."""
        from speciosa.schedules import defaults as sdefaults
        from speciosa.schedules.models import PatientPlan, PlanTemplate

        sdefaults.ensure()
        template = PlanTemplate.objects.get(site__isnull=True, name=sdefaults.DEFAULTS[0][0])
        start = max(self.first_day, self.today - dt.timedelta(days=42)).isoformat()
        lines = [{"instrument": r["instrument"], "every_days": r["every_days"], "start": start,
                  "end": None} for r in template.items]
        PatientPlan.objects.bulk_create([
            PatientPlan(patient=p, entered_by=None, source="clinician", template=template,
                        name=template.name, items=lines) for p in patients], batch_size=BATCH)
        return len(patients)

    def patient(self, i: int, patient: Patient, plan: dict[str, Any], user) -> None:
        """One patient's record, every part drawing from the patient's own random stream (in
        this order, so that the same seed gives the same record)."""
        rng = np.random.default_rng([self.seed, i, 1])
        tz = self.tz[plan["site"]]
        team_members = CARE_TEAMS[plan["team"]][2]
        clinician = self.users[team_members[int(rng.integers(len(team_members)))]]
        people.add_consents(self, patient, plan, clinician, rng, tz)
        habits = diary.record(self, i, patient, plan, user, rng, tz)
        assessments.clinic_visits(self, i, patient, plan, clinician, rng, tz, habits.withdrawal,
                                  habits.depression, habits.drinking)
        labs.draws(self, i, patient, plan, clinician, rng, tz, habits.day_mg)
        medications.add(self, i, patient, plan, clinician, rng)

    def day(self, d: int) -> dt.date:
        """The date of day index ``d`` (0 is the first day of the record)."""
        return self.first_day + dt.timedelta(days=d)

    def weekday(self, d: int) -> int:
        """The clinic day nearest ``d`` (Monday-Friday), within the record."""
        for shift in (0, 1, -1, 2, -2):
            dd = d + shift
            if 0 <= dd < self.days and self.day(dd).weekday() < 5:
                return dd
        return min(max(d, 0), self.days - 1)
