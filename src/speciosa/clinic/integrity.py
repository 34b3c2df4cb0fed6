"""Rules the clinic's own tables keep, whichever way a row is written (issue 15, item 1).

Django's admin, the onboarding pages, the API, an import and a service all end in the
models' ``clean()`` and ``save()``, and both ask this module; so do the many-to-many changes
of a care team's members (``m2m_changed``, connected in :mod:`speciosa.clinic.apps`). What a
single row can state is also a database constraint (``Patient.Meta`` and ``Profile.Meta``):

- a patient's care team belongs to the patient's site (otherwise that site's clinicians see
  another site's patient);
- the birth date lies within :data:`OLDEST_YEARS` years up to today, and entry into care from
  birth to today (constraint: ``in_care_since >= birth_date``);
- pregnancy is recorded only for a patient whose sex is female (constraint);
- a patient's login is a patient account (role Patient, not staff, not a superuser), of the
  patient's site when its profile names one;
- a login has one role: a superuser is an administrator, a login linked to a patient is a
  patient, and only clinicians are members of care teams, of their own site's teams.

Each function returns ``{field: message}`` (empty when the row is fine); the message says
what to change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.utils import timezone

#: A birth date further back than this many years is a typing error.
OLDEST_YEARS = 130


def oldest_birth_date(today: dt.date | None = None) -> dt.date:
    today = today or timezone.localdate()
    return today.replace(year=today.year - OLDEST_YEARS, day=min(today.day, 28))


def _role(user) -> str | None:
    from . import access

    return access.role_of(user)


def _role_label(role: str | None) -> str:
    from .models import Role

    return dict(Role.choices).get(role, "no role") if role else "no role"


def _who(user) -> str:
    return user.get_full_name() or user.get_username()


def zone_named(name: str | None) -> dt.tzinfo | None:
    """The time zone a site names (``Site.time_zone``); ``None`` for none or an unknown one."""
    import zoneinfo

    if name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return None


def site_zone(site) -> dt.tzinfo:
    """The time zone of ``site`` (UTC when it names none or an unknown one)."""
    return zone_named(getattr(site, "time_zone", None) if site is not None else None) or dt.UTC


def site_today(site) -> dt.date:
    """Today at ``site`` (its ``time_zone``): at 23:30 UTC it is already tomorrow in
    Auckland and still today in Los Angeles, whatever zone the server or the request is in.
    Without a site (or with an unknown zone), the active zone's date."""
    zone = zone_named(getattr(site, "time_zone", None) if site is not None else None)
    return timezone.localdate(timezone=zone) if zone else timezone.localdate()


def patient_problems(patient) -> dict[str, str]:
    """What is wrong with a :class:`~speciosa.clinic.models.Patient` row."""
    from .models import Sex

    errors: dict[str, str] = {}
    today = site_today(patient.site if patient.site_id else None)
    oldest = oldest_birth_date(today)
    birth = patient.birth_date
    if birth is not None and not oldest <= birth <= today:
        errors["birth_date"] = (f"Give a birth date from {oldest.isoformat()} to today; "
                                "check the year.")
    since = patient.in_care_since
    if since is not None:
        first = birth if "birth_date" not in errors and birth else oldest
        if not first <= since <= today:
            errors["in_care_since"] = (f"Give a date from {first.isoformat()} (birth) to "
                                       "today; check the year.")
    if patient.pregnant and patient.sex != Sex.FEMALE:
        errors["pregnant"] = ("Pregnancy is recorded only when the sex is female: check the "
                              "sex, or untick pregnant.")
    for flag, key, what in ((patient.pregnant, "pregnant_since", "pregnancy"),
                            (patient.breastfeeding, "breastfeeding_since", "breastfeeding")):
        day = getattr(patient, key, None)
        if flag and day is not None and not ((birth or oldest) <= day <= today):
            errors[key] = (f"Give the day the {what} was known, from the birth date to today; "
                           "check the year.")
    if patient.site_id and patient.care_team_id:
        team = patient.care_team
        if team.site_id != patient.site_id:
            errors["care_team"] = (f"{team.name} is a care team of {team.site}, not of "
                                   f"{patient.site}: choose one of {patient.site}'s teams "
                                   "(or change the site).")
    if patient.user_id:
        user = patient.user
        role = _role(user)
        profile = getattr(user, "profile", None)
        if role != "patient" or user.is_staff:
            errors["user"] = (f"This login is {'a staff' if user.is_staff else 'an'} account "
                              f"with the role {_role_label(role)}, not a patient account: "
                              "link a patient's own login, or leave it empty.")
        elif profile.site_id and patient.site_id and profile.site_id != patient.site_id:
            errors["user"] = (f"This patient login belongs to {profile.site}, not to "
                              f"{patient.site}: link a login of this site.")
    return errors


def profile_problems(profile, *, require_site: bool = False) -> dict[str, str]:
    """What is wrong with a :class:`~speciosa.clinic.models.Profile` (a login's role).
    ``require_site``: a clinician's or patient's login must name its site (the forms ask;
    rows made in code may leave it blank)."""
    from .models import CareTeam, Patient, Role

    errors: dict[str, str] = {}
    if profile.role not in Role.values:
        return {"role": "Choose one of the roles."}
    if require_site and profile.role in (Role.CLINICIAN, Role.PATIENT) and not profile.site_id:
        errors["site"] = f"A {_role_label(profile.role).lower()}'s login belongs to a site: choose it."
    if not profile.user_id:
        return errors
    user = profile.user
    if user.is_superuser and profile.role != Role.ADMIN:
        errors["role"] = "This login is a superuser, so an administrator: its role is Administrator."
    patient = Patient.objects.filter(user_id=user.pk).select_related("site").first()
    if patient is not None:
        if profile.role != Role.PATIENT:
            errors["role"] = (f"This login is patient {patient.identifier}'s: its role stays "
                              "Patient (unlink it from the patient first).")
        elif profile.site_id and profile.site_id != patient.site_id:
            errors["site"] = f"This login's patient is at {patient.site}: give that site."
    teams = list(CareTeam.objects.filter(members=user.pk).select_related("site"))
    if teams and profile.role != Role.CLINICIAN:
        errors["role"] = ("This login is a member of " + ", ".join(str(t) for t in teams)
                          + "; only clinicians are: remove it from the team first.")
    elif teams and profile.site_id:
        elsewhere = [t for t in teams if t.site_id != profile.site_id]
        if elsewhere:
            errors["site"] = ("This clinician is in " + ", ".join(str(t) for t in elsewhere)
                              + ": a clinician's teams are of their own site.")
    return errors


def member_problems(team, users: Iterable) -> list[str]:
    """Why some of ``users`` cannot be members of care team ``team`` (empty: all can)."""
    out = []
    for user in users:
        role = _role(user)
        profile = getattr(user, "profile", None)
        if role != "clinician":
            out.append(f"{_who(user)} is not a clinician ({_role_label(role)}): only clinicians "
                       "are members of a care team.")
        elif profile.site_id and profile.site_id != team.site_id:
            out.append(f"{_who(user)} works at {profile.site}, not at {team.site}: a care team's "
                       "members are clinicians of its site.")
    return out


def care_team_problems(team) -> dict[str, str]:
    """A care team that changes site would take its patients and members with it."""
    if not team.pk or not team.site_id:
        return {}
    from .models import Patient

    elsewhere = Patient.objects.filter(care_team_id=team.pk).exclude(site_id=team.site_id).count()
    if elsewhere:
        return {"site": f"{elsewhere} patient(s) of this team are at another site: move them "
                        "first, or make a new team at this site."}
    problems = member_problems(team, team.members.select_related("profile__site"))
    return {"site": " ".join(problems)} if problems else {}


def superuser_problems(user) -> dict[str, str]:
    """A superuser is an administrator, so it is neither a patient's login nor another role;
    and a patient's login is never staff (``is_staff`` opens Django's admin)."""
    from .models import Patient, Profile, Role

    if not user.pk or not (user.is_superuser or user.is_staff):
        return {}
    if not user.is_superuser:  # staff only
        if Patient.objects.filter(user_id=user.pk).exists():
            return {"is_staff": "This login is a patient's: a patient account is never staff."}
        return {}
    if Patient.objects.filter(user_id=user.pk).exists():
        return {"is_superuser": "This login is a patient's: a patient account is never a superuser."}
    profile = Profile.objects.filter(user_id=user.pk).first()
    if profile is not None and profile.role != Role.ADMIN:
        return {"is_superuser": (f"This login has the role {_role_label(profile.role)}: a "
                                 "superuser is an administrator (change the role first).")}
    return {}


def check(problems: dict[str, str]) -> None:
    """Raise the problems as one ``ValidationError`` (nothing when there are none)."""
    if problems:
        raise ValidationError(problems)


def members_changed(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    """``m2m_changed`` of ``CareTeam.members``: refuse a member that is not a clinician of the
    team's site, from either side (``team.members.add(user)``, ``user.care_teams.add(team)``)."""
    if action != "pre_add" or not pk_set:
        return
    from django.contrib.auth import get_user_model

    from .models import CareTeam

    if not reverse:
        users = get_user_model().objects.filter(pk__in=pk_set).select_related("profile__site")
        problems = member_problems(instance, users)
    else:
        problems = [p for team in CareTeam.objects.filter(pk__in=pk_set).select_related("site")
                    for p in member_problems(team, [instance])]
    if problems:
        raise ValidationError({"members": problems})


def user_saved(sender, instance, **kwargs) -> None:
    """``pre_save`` of the user model: a superuser is an administrator."""
    check(superuser_problems(instance))
