"""Shown on every page: urgent alerts not yet acknowledged (clinicians), and what an
administrator changed about the user's login (everyone, until dismissed)."""

from speciosa.clinic import access
from speciosa.clinic.models import Alert, Role


def urgent_alerts(request):
    user = getattr(request, "user", None)
    if not access.has_role(user, Role.CLINICIAN):
        return {}
    if hasattr(user, "is_verified") and not user.is_verified():
        return {}  # nothing about patients before the second factor
    urgent = list(Alert.objects.filter(patient__in=access.visible_patients(user), severity="urgent",
                                       status=Alert.Status.OPEN).select_related("patient")
                  .order_by("first_seen_at")[:5])
    return {"urgent_alerts": urgent}


def credential_notices(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from .credentials import unseen_notices

    return {"credential_notices": unseen_notices(user)}


def staff_role(request):
    """``is_site_admin``: the staff navigation offers an administrator the pages they can
    open (administration, registering a patient, adding a clinician, the rule settings),
    not the clinician's patient list and worklist, which are closed to them."""
    user = getattr(request, "user", None)
    return {"is_site_admin": access.has_role(user, Role.ADMIN)}


def unread_messages(request):
    """``unread_messages``: how many messages wait for the user (patients and clinicians,
    after the second factor), for the navigation's "Messages (n)"."""
    user = getattr(request, "user", None)
    if not (access.has_role(user, Role.PATIENT) or access.has_role(user, Role.CLINICIAN)):
        return {}
    if hasattr(user, "is_verified") and access.has_role(user, Role.CLINICIAN) \
            and not user.is_verified():
        return {}
    from speciosa.messaging import services

    return {"unread_messages": services.unread(user).count()}


def offline_app(request):
    """``offline_app``: this is one of the patient's own pages (under ``/me/``), which carry the
    web app manifest, the service worker and the "waiting to send" line (docs/offline.md).
    Staff pages never do: they stay online-only."""
    user = getattr(request, "user", None)
    return {"offline_app": request.path.startswith("/me/") and access.has_role(user, Role.PATIENT)}


def translation_status(request):
    """``translation_draft``: the page is in a language whose translation is still a draft
    (``settings.TRANSLATIONS_REVIEWED`` does not name it), so its footer says so
    (docs/translation.md: draft until reviewed)."""
    from django.conf import settings
    from django.utils import translation

    language = translation.get_language() or "en"
    return {"translation_draft": not language.startswith("en")
            and language not in settings.TRANSLATIONS_REVIEWED}
