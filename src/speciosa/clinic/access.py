"""Who may see what: the one place access is decided.

- An administrator (superuser, or a profile with role ``admin``) manages the clinic through
  Django's admin; in the clinical pages an administrator sees no patient records.
- A clinician sees the patients of the care teams they belong to, and nobody else.
- A patient sees their own record, and nobody else's.
- A researcher sees no identifiable record: only the de-identified, k-anonymous data of the
  patients who consented to research (``speciosa.research``), on the research page and in
  exports made for them (:func:`can_receive_research_export`), never a patient's page.

Views and the API ask :func:`visible_patients` or :func:`patient_for`; a patient outside
the user's reach is a 404, so ids of other people's records reveal nothing.
"""

from __future__ import annotations

import functools

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models.fields.related_descriptors import ReverseOneToOneDescriptor
from django.http import Http404
from django.utils.functional import LazyObject, empty

from .models import Patient, Profile, Role


def _related_once(user, name: str, queryset):
    """``user.<name>`` (the reverse one-to-one ``profile`` or ``patient``), read with one
    query per user object that also joins what every page then reads from it (the site, the
    care team), or ``None`` when there is none. Django keeps it on the user object, which
    lives for one request: the middleware, the role checks and the view share one read."""
    target = user
    while isinstance(target, LazyObject):  # request.user (django-otp wraps it once more)
        if target._wrapped is empty:
            target._setup()
        target = target._wrapped
    descriptor = getattr(type(target), name, None)
    if isinstance(descriptor, ReverseOneToOneDescriptor) and not descriptor.is_cached(target):
        descriptor.related.set_cached_value(target, queryset.filter(user=target).first())
    return getattr(target, name, None)


def profile_of(user):
    """The user's profile with its site (one query per request), or ``None``."""
    if not user or not user.is_authenticated:
        return None
    return _related_once(user, "profile", Profile.objects.select_related("site"))


def linked_patient(user) -> Patient | None:
    """The patient record linked to a login, with its site and care team (one query per
    request), or ``None``."""
    if not user or not user.is_authenticated:
        return None
    return _related_once(user, "patient", Patient.objects.select_related("site", "care_team"))


def role_of(user) -> str | None:
    if not user or not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    profile = profile_of(user)
    return profile.role if profile else None


def has_role(user, *roles: str) -> bool:
    """Whether ``user`` acts in one of ``roles``: the one role check behind
    :func:`role_required` (web, education, research pages), :func:`require_role` (the
    reports) and the API's permission classes."""
    return role_of(user) in roles


def require_role(user, *roles: str) -> None:
    """Raise ``PermissionDenied`` (a 403) unless ``user`` acts in one of ``roles``."""
    if not has_role(user, *roles):
        raise PermissionDenied("This page is not part of your role.")


def own_patient(user) -> Patient:
    """The patient record of a patient's own login (with its site), for the pages and
    endpoints that name no patient (``/me/...``). Any other login, and a patient login with
    no record linked to it, is a 404: a clinician has no "own" patient."""
    if not has_role(user, Role.PATIENT):
        raise Http404("No patient record is linked to this login")
    patient = linked_patient(user)
    if patient is None:
        raise Http404("No patient record is linked to this login")
    return patient


def visible_patients(user):
    """Patients whose identifiable record ``user`` may open."""
    role = role_of(user)
    if role == Role.CLINICIAN:
        return Patient.objects.filter(care_team__members=user)
    if role == Role.PATIENT:
        return Patient.objects.filter(user=user)
    return Patient.objects.none()


def can_view_patient(user, patient: Patient) -> bool:
    return visible_patients(user).filter(pk=patient.pk).exists()


def can_write_clinical(user, patient: Patient) -> bool:
    """Clinician-entered records (assessments, labs, notes, corrections)."""
    return role_of(user) == Role.CLINICIAN and can_view_patient(user, patient)


def can_write_diary(user, patient: Patient) -> bool:
    return role_of(user) == Role.PATIENT and patient.user_id == user.pk


def can_receive_research_export(user) -> bool:
    """A de-identified research export is made for an active account with the researcher
    role, which the audit trail names (a clinician or an administrator is not a recipient:
    the export would then sit outside any researcher's data use agreement)."""
    return bool(user and user.is_active and role_of(user) == Role.RESEARCHER)


def patient_for(user, patient_id) -> Patient:
    """The patient with ``patient_id`` if ``user`` may see them; otherwise 404."""
    try:
        return visible_patients(user).select_related("site", "care_team").get(pk=patient_id)
    except (Patient.DoesNotExist, ValueError, TypeError):
        raise Http404("No such patient") from None


def role_required(*roles):
    """View decorator: log in first, then only these roles (others get 403)."""

    def deco(view):
        @login_required
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            require_role(request.user, *roles)
            return view(request, *args, **kwargs)

        return wrapped

    return deco


def display_name(user) -> str:
    """How a user is named to anyone else (API, FHIR): the full name, or ``Staff member <id>``
    when there is none; never the login name, which is half of a credential (issue #11, item 9)."""
    return user.get_full_name() or f"Staff member {user.pk}"
