"""The people and places of the demo clinic: two sites, four clinicians in four care teams,
a researcher, an administrator and the patients (their fixed characteristics, logins and
consents). The clinically interesting patients are set by index (``SPECIAL_*``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
from django.contrib.auth import get_user_model

from speciosa.clinic import consents
from speciosa.clinic.models import CareTeam, Consent, ConsentSignature, Patient, Profile, Role, Site

from .common import BATCH, local_time

if TYPE_CHECKING:
    from .builder import Builder

SITES = (
    # name, time zone, identifier prefix, prolactin unit, bilirubin unit
    ("Riverside Recovery Clinic", "America/New_York", "RRC", "ng/mL", "mg/dL"),
    ("Hillcrest Addiction Medicine", "America/Chicago", "HAM", "m[IU]/L", "umol/L"),
)
CLINICIANS = (
    # username, first, last, title, site index
    ("dr.okafor", "Adaeze", "Okafor", "Dr", 0),
    ("dr.lindqvist", "Maja", "Lindqvist", "Dr", 0),
    ("dr.haddad", "Karim", "Haddad", "Dr", 1),
    ("np.moreno", "Lucia", "Moreno", "NP", 1),
)
#: Care teams per site: (name, member usernames). Team A is shared by both clinicians of a
#: site; team B has one, so "a clinician sees only their teams' patients" is testable.
CARE_TEAMS = (
    (0, "Team A", ("dr.okafor", "dr.lindqvist")),
    (0, "Team B", ("dr.lindqvist",)),
    (1, "Team A", ("dr.haddad", "np.moreno")),
    (1, "Team B", ("np.moreno",)),
)
GIVEN_NAMES = {
    "female": ("Amara", "Beatrix", "Clio", "Dalia", "Esme", "Freya", "Gwen", "Hana", "Ines",
               "Juno", "Kaia", "Lena", "Mira", "Nell", "Oona", "Pia"),
    "male": ("Arlo", "Bram", "Cass", "Dario", "Ezra", "Felix", "Gideon", "Hugo", "Ivo",
             "Jonah", "Kit", "Lars", "Milo", "Nico", "Otto", "Rafe"),
}
FAMILY_NAMES = ("Ashgrove", "Brightwater", "Coldbrook", "Dunmore", "Elderfield", "Fernhill",
                "Glenholt", "Hartwell", "Ivybridge", "Juniper", "Kestrel", "Larkspur",
                "Marchbank", "Northcote", "Oakhurst", "Pennywhistle", "Quillfeather",
                "Rowanby", "Stonecroft", "Thistlewood")

TRAJECTORIES = ("taper", "stable", "escalation", "relapse", "irregular")

# The clinically interesting patients, by index (only those below n_patients are built).
SPECIAL_PROLACTIN_40_60 = 0     # prolactin 42-58 ng/mL and reduced sex drive
SPECIAL_MALE_BREAST = 1         # man with breast tenderness
SPECIAL_PROLACTIN_OVER_100 = 2  # prolactin > 100 ng/mL (not typical of a drug)
SPECIAL_LIVER = 3               # ALT > 3x ULN with dark urine after a dose increase
SPECIAL_PREGNANT = 4            # pregnant woman using kratom
SPECIAL_PHQ9_ITEM9 = 5          # PHQ-9 item 9 > 0 recently
SPECIAL_BIG_ESCALATION = 6      # escalating a lot
SPECIAL_COWS_13 = 7             # COWS >= 13 recently
SPECIAL_CYP3A = 8               # on a CYP3A-sensitive medication (quetiapine)
SPECIAL_TRAJECTORY = {0: "stable", 1: "escalation", 2: "relapse", 3: "escalation", 4: "taper",
                      5: "irregular", 6: "escalation", 7: "taper", 8: "relapse"}
SPECIAL_SEX = {1: "male", 2: "female", 3: "male", 4: "female"}


def usernames_in_db() -> list[str]:
    """The demo's usernames that are taken in this database."""
    User = get_user_model()
    fixed = ["admin", "researcher", *(c[0] for c in CLINICIANS)]
    return list(User.objects.filter(username__in=fixed).values_list("username", flat=True)) + list(
        User.objects.filter(username__regex=r"^patient[0-9]+$").values_list("username", flat=True))


def add_people(b: Builder) -> tuple[list[Patient], list[Any]]:
    """Store the sites, staff, care teams and patients with their logins; the patients and
    their users, in patient order."""
    User = get_user_model()
    sites = [Site(name=name, time_zone=tz) for name, tz, *_ in SITES]
    Site.objects.bulk_create(sites)
    for site in sites:  # bulk_create skips Site.save, which gives a new site its documents
        consents.ensure_documents(site)
    b.documents = {(d.site_id, d.kind): d for d in
                   (consents.latest_document(site, kind) for site in sites for kind in ("care", "research"))}
    b.sites = sites
    b.tz = [ZoneInfo(s.time_zone) for s in sites]
    s = b.summary
    s.sites = len(sites)

    width = max(2, len(str(b.n)))
    staff = [User(username="admin", first_name="Demo", last_name="Administrator",
                  email="admin@example.invalid", is_staff=True, is_superuser=True,
                  password=b.password_hash)]
    staff += [User(username=u, first_name=f, last_name=la, email=f"{u}@example.invalid",
                   password=b.password_hash) for u, f, la, _t, _s in CLINICIANS]
    staff.append(User(username="researcher", first_name="Demo", last_name="Researcher",
                      email="researcher@example.invalid", password=b.password_hash))
    patient_users = [User(username=f"patient{i + 1:0{width}d}", password=b.password_hash)
                     for i in range(b.n)]
    User.objects.bulk_create(staff + patient_users, batch_size=BATCH)
    by_name = {u.username: u for u in staff}
    b.users = by_name
    profiles = [Profile(user=by_name["admin"], role=Role.ADMIN)]
    profiles += [Profile(user=by_name[u], role=Role.CLINICIAN, site=sites[si])
                 for u, _f, _l, _t, si in CLINICIANS]
    profiles.append(Profile(user=by_name["researcher"], role=Role.RESEARCHER))
    Profile.objects.bulk_create(profiles)  # before the teams: only clinicians are members
    profiles = []
    s.logins.append(("admin", "admin", "Administrator (superuser): sites, users, care teams"))

    teams = []
    for si, name, members in CARE_TEAMS:
        team = CareTeam.objects.create(site=sites[si], name=name)
        team.members.set([by_name[m] for m in members])
        teams.append(team)
    b.teams = teams
    s.care_teams = len(teams)
    for u, f, la, title, si in CLINICIANS:
        in_teams = [t.name for t in teams if u in CARE_TEAMS[teams.index(t)][2]]
        s.logins.append((u, "clinician", f"{title} {f} {la}, {sites[si].name} "
                                         f"({', '.join(in_teams)})"))
    s.clinicians = len(CLINICIANS)
    s.logins.append(("researcher", "researcher", "Researcher (de-identified data only)"))

    patients = []
    b.plans = []
    for i in range(b.n):
        plan = plan_patient(b, i)
        b.plans.append(plan)
        patients.append(Patient(
            site=sites[plan["site"]], care_team=teams[plan["team"]], user=patient_users[i],
            identifier=plan["identifier"], given_name=plan["given"], family_name=plan["family"],
            birth_date=plan["birth_date"], sex=plan["sex"], pregnant=plan["pregnant"],
            pregnant_since=plan["in_care_since"] if plan["pregnant"] else None,
            in_care_since=plan["in_care_since"]))
        profiles.append(Profile(user=patient_users[i], role=Role.PATIENT, site=sites[plan["site"]]))
        patient_users[i].first_name = plan["given"]
        patient_users[i].last_name = plan["family"]
        s.logins.append((patient_users[i].username, "patient",
                         f"{plan['given']} {plan['family']} ({plan['identifier']}, "
                         f"{plan['sex']}, {plan['trajectory']}{plan['special_label']})"))
    User.objects.bulk_update(patient_users, ["first_name", "last_name"], batch_size=BATCH)
    Profile.objects.bulk_create(profiles, batch_size=BATCH)
    Patient.objects.bulk_create(patients, batch_size=BATCH)
    s.patients = len(patients)
    s.planted_exceptions = [plan["identifier"] for i, plan in enumerate(b.plans)
                            if i in (SPECIAL_PROLACTIN_40_60, SPECIAL_PROLACTIN_OVER_100,
                                     SPECIAL_PREGNANT)]
    return patients, patient_users


def add_consents(b: Builder, patient: Patient, plan: dict[str, Any], clinician,
                 rng: np.random.Generator, tz: ZoneInfo) -> None:
    """Consent to care (everyone) and to research (about four in five), each given one
    recorded as signed on paper (the demo keeps no signed copies)."""
    consent_at = local_time(max(plan["in_care_since"], b.first_day - dt.timedelta(days=60)),
                            10 * 60, tz)
    research = bool(rng.random() < 0.8)
    for kind, given in ((Consent.Kind.CARE, True), (Consent.Kind.RESEARCH, research)):
        sig = None
        if given:
            sig = ConsentSignature(patient=patient, document=b.documents[(patient.site_id, kind)],
                                   source="paper", typed_name=patient.name,
                                   signed_on=consent_at.astimezone(tz).date(), signed_at=consent_at,
                                   recorded_by=clinician, note="synthetic demo: no signed copy kept")
            b.rows[ConsentSignature].append(sig)
        b.rows[Consent].append(Consent(patient=patient, kind=kind, given=given, at=consent_at,
                                       recorded_by=clinician, signature=sig))


def plan_patient(b: Builder, i: int) -> dict[str, Any]:
    """The patient's fixed characteristics."""
    rng = np.random.default_rng([b.seed, i, 0])
    site = i % 2
    # alternate on i // 2, not i: every other patient goes to the other site, so alternating
    # on i gave one site only women and the other only men (issue 15)
    sex = SPECIAL_SEX.get(i, "female" if (i // 2) % 2 == 0 else "male")
    team = site * 2 + (0 if rng.random() < 0.6 else 1)
    age = int(rng.integers(24, 39)) if i == SPECIAL_PREGNANT else int(rng.integers(19, 71))
    birth = b.today - dt.timedelta(days=int(age * 365.25) + int(rng.integers(1, 360)))
    trajectory = SPECIAL_TRAJECTORY.get(i) or TRAJECTORIES[(i - len(SPECIAL_TRAJECTORY)) % 5]
    labels = {SPECIAL_PROLACTIN_40_60: "prolactin 40-60, reduced sex drive",
              SPECIAL_MALE_BREAST: "breast tenderness", SPECIAL_PROLACTIN_OVER_100: "prolactin >100",
              SPECIAL_LIVER: "ALT >3x ULN, dark urine", SPECIAL_PREGNANT: "pregnant",
              SPECIAL_PHQ9_ITEM9: "PHQ-9 item 9 positive", SPECIAL_BIG_ESCALATION: "marked escalation",
              SPECIAL_COWS_13: "COWS >= 13", SPECIAL_CYP3A: "quetiapine (CYP3A)"}
    return {
        "sex": sex, "site": site, "team": team,
        "identifier": f"{SITES[site][2]}-{100000 + 211 * i + 17:06d}",
        "given": GIVEN_NAMES[sex][(i // 2) % 16],
        "family": FAMILY_NAMES[(7 * i) % 20],
        "birth_date": birth,
        "pregnant": i == SPECIAL_PREGNANT,
        "in_care_since": b.first_day - dt.timedelta(days=int(rng.integers(0, 60))),
        "trajectory": trajectory,
        "special_label": f"; {labels[i]}" if i in labels else "",
    }
