"""Onboarding without Django's admin (issue 15): registering a patient, with their consents.

:func:`register_patient` is the one way the registration page and the API store a new
patient: the caller may register (an administrator, or a clinician of the chosen care team),
the patient row keeps every rule of :mod:`speciosa.clinic.integrity` (the model's
``full_clean``: fields, uniqueness, constraints, and the cross-table rules), the patient and
the consents are stored in one transaction with their audit entries, once per submission
token. Nothing is saved when anything is wrong.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from . import access, integrity, services, writes
from .models import CareTeam, Consent, Patient, Role, Site

#: The fields of a registration, as the page and the API send them.
PATIENT_FIELDS = ("identifier", "given_name", "family_name", "birth_date", "sex", "pregnant",
                  "breastfeeding", "in_care_since")


def teams_for(user):
    """The care teams ``user`` may register a patient into: every team for an administrator,
    a clinician's own teams; each with its site (two teams named "Team A" are told apart)."""
    teams = CareTeam.objects.select_related("site").order_by("site__name", "name")
    if access.has_role(user, Role.ADMIN):
        return teams
    if access.has_role(user, Role.CLINICIAN):
        return teams.filter(members=user)
    return teams.none()


def may_register(user) -> bool:
    return access.has_role(user, Role.ADMIN, Role.CLINICIAN)


def _lookup(model, raw: Any, field: str, what: str):
    try:
        if isinstance(raw, bool) or int(raw) != raw and str(int(raw)) != str(raw).strip():
            raise ValueError(raw)
        return model.objects.get(pk=int(raw))
    except (model.DoesNotExist, TypeError, ValueError, OverflowError):
        raise ValidationError({field: f"Choose {what} from the list."}) from None


def register_patient(user, data: Mapping[str, Any], *, token=None) -> Patient:
    """Store a new patient with consent to care and (if asked) to research.

    Parameters
    ----------
    user : User
        An administrator, or a clinician who is a member of the chosen care team.
    data : mapping
        ``site`` and ``care_team`` (ids), the :data:`PATIENT_FIELDS` (dates as
        ``datetime.date``), ``consent_care`` and ``consent_research`` (booleans).
    token : submission token, optional
        A retry with the same token returns the first patient.

    Raises
    ------
    AccessDenied
        The user may not register into that care team.
    ValidationError
        With a message per field saying what to fix; nothing is stored.
    """
    writes.require(may_register(user), "Only clinic staff can register a patient.")
    earlier = writes.replayed(user, token, model=Patient, kind="register-patient")
    if earlier is not None:
        return earlier
    site = _lookup(Site, data.get("site"), "site", "the patient's site")
    team = _lookup(CareTeam, data.get("care_team"), "care_team", "a care team")
    writes.require(teams_for(user).filter(pk=team.pk).exists(),
                   "You can register a patient only into a care team you belong to.")
    if not data.get("consent_care"):
        raise ValidationError({"consent_care": "Registering a patient for supervised care needs "
                                               "their consent to care: ask them, then tick it."})
    values = {f: data.get(f) for f in PATIENT_FIELDS}
    values["pregnant"] = bool(values["pregnant"])
    values["breastfeeding"] = bool(values["breastfeeding"])
    values["in_care_since"] = values["in_care_since"] or integrity.site_today(site)
    patient = Patient(site=site, care_team=team, **values)
    patient.full_clean()

    def create() -> Patient:
        patient.save()
        writes.audit(user, writes.Action.CREATE, patient, patient=patient,
                     after=writes.snapshot(patient), reason="patient registered")
        now = timezone.now()
        services.record_consent(user, patient, Consent.Kind.CARE, True, at=now)
        services.record_consent(user, patient, Consent.Kind.RESEARCH,
                                bool(data.get("consent_research")), at=now)
        return patient

    with transaction.atomic():
        obj, _created = writes.once(user, token, "register-patient", create, model=Patient)
    return obj


def as_date(raw: Any, field: str) -> dt.date | None:
    """A date from a form or JSON (``YYYY-MM-DD``), or None when blank."""
    if raw in (None, ""):
        return None
    if isinstance(raw, dt.date):
        return raw
    try:
        return dt.date.fromisoformat(str(raw))
    except ValueError:
        raise ValidationError({field: "Give the date as YYYY-MM-DD."}) from None


# --------------------------------------------------------------------------- set-up links

class SetupTokens:
    """One-time set-up links for a new login (a patient's first password).

    Django's reset tokens (:class:`~django.contrib.auth.tokens.PasswordResetTokenGenerator`)
    with their own salt, so a set-up token is no reset token: it hashes the login's password
    and last login, so it stops working once used (single use), and it expires after
    ``SPECIOSA_SETUP_LINK_HOURS`` (default 72)."""

    def __init__(self):
        from django.contrib.auth.tokens import PasswordResetTokenGenerator

        class _Generator(PasswordResetTokenGenerator):
            key_salt = "speciosa.clinic.onboarding.SetupTokens"

        self._generator = _Generator()

    def make(self, login) -> str:
        return self._generator.make_token(login)

    def check(self, login, token: str) -> bool:
        from django.conf import settings
        from django.utils.http import base36_to_int

        if not token or not self._generator.check_token(login, token):
            return False
        try:
            issued = base36_to_int(token.split("-")[0])
        except ValueError:
            return False
        age = self._generator._num_seconds(self._generator._now()) - issued
        return age <= settings.SETUP_LINK_HOURS * 3600


SETUP_TOKENS = SetupTokens()


def _username_for(patient: Patient) -> str:
    from django.contrib.auth import get_user_model

    base = re.sub(r"[^a-z0-9]+", "", f"{patient.given_name[:1]}{patient.family_name}".lower())[:20]
    base = base or "patient"
    User = get_user_model()
    name, n = base, 1
    while User.objects.filter(username=name).exists():
        n += 1
        name = f"{base}{n}"
    return name


def issue_setup_link(user, patient: Patient) -> tuple[Any, str]:
    """A login for ``patient`` (made when they have none: role Patient at their site, no
    password yet) and a new one-time set-up token for it. Audited (``credentials``).

    Returns ``(login, token)``; the page builds the link from the login's id and the token."""
    from django.contrib.auth import get_user_model

    from .models import Profile

    writes.require(access.has_role(user, Role.ADMIN) or access.can_write_clinical(user, patient),
                   "Only an administrator or the patient's care team can hand out a set-up link.")
    with transaction.atomic():
        login = patient.user
        if login is None:
            login = get_user_model().objects.create_user(
                username=_username_for(patient), first_name=patient.given_name,
                last_name=patient.family_name)
            login.set_unusable_password()
            login.save()
            Profile.objects.create(user=login, role=Role.PATIENT, site=patient.site)
            patient.user = login
            patient.save()
        writes.require(login.has_usable_password() is False,
                       "This patient has set up their login already: they use "
                       "'Forgot your password?' on the login page.")
        # a new link is handed out because the last one was lost: that one stops working
        # (the tokens hash the stored password, and a new unusable one is a new hash)
        login.set_unusable_password()
        login.save(update_fields=["password"])
        writes.audit(user, writes.Action.CREDENTIALS, login, patient=patient, model="User",
                     after={"what": "setup-link-issued", "user": login.pk})
    return login, SETUP_TOKENS.make(login)


def complete_setup(login, token: str, password: str) -> None:
    """Set the first password of ``login`` with a set-up token (checked again here)."""
    writes.require(SETUP_TOKENS.check(login, token), "This set-up link does not work any more.")
    login.set_password(password)
    login.save()
    patient = Patient.objects.filter(user=login).first()
    writes.audit(login, writes.Action.CREDENTIALS, login, patient=patient, model="User",
                 after={"what": "setup-completed", "user": login.pk})


# --------------------------------------------------------------------------- staff

def add_clinician(user, data: Mapping[str, Any]):
    """An administrator adds a clinician: a login (no password yet: it gets a set-up link),
    the clinician role at ``site``, and membership of ``teams`` (care teams of that site).
    Audited; nothing is stored when anything is wrong."""
    from django.contrib.auth import get_user_model

    from .models import Profile

    writes.require(access.has_role(user, Role.ADMIN), "Only an administrator adds clinicians.")
    site = _lookup(Site, data.get("site"), "site", "the clinician's site")
    teams = list(CareTeam.objects.filter(pk__in=data.get("teams") or []).select_related("site"))
    elsewhere = [t for t in teams if t.site_id != site.pk]
    if elsewhere:
        raise ValidationError({"teams": "Choose care teams of " + site.name + " only ("
                               + ", ".join(str(t) for t in elsewhere) + " is not)."})
    User = get_user_model()
    username = (data.get("username") or "").strip()
    if not username:
        raise ValidationError({"username": "Give the login name."})
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": "This login name is taken: choose another."})
    with transaction.atomic():
        login = User.objects.create_user(username=username, email=data.get("email") or "",
                                         first_name=data.get("given_name") or "",
                                         last_name=data.get("family_name") or "")
        login.set_unusable_password()
        login.save()
        profile = Profile(user=login, role=Role.CLINICIAN, site=site)
        profile.save()
        for team in teams:
            team.members.add(login)
        writes.audit(user, writes.Action.CREATE, profile, after={
            **writes.snapshot(profile), "teams": sorted(t.pk for t in teams)},
            reason="clinician added")
        writes.audit(user, writes.Action.CREDENTIALS, login, model="User",
                     after={"what": "setup-link-issued", "user": login.pk})
    return login, SETUP_TOKENS.make(login)
