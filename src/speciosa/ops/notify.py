"""E-mail the care team when an urgent alert opens (42 CFR Part 2: no patient data in it).

The message says only that an urgent alert needs attention, with a link to it behind the
login: no name, no record number, no finding. Who is told: the members of the patient's
care team who have an e-mail address and an active login.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import IntegrityError, transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from speciosa.clinic.models import Alert

from .models import UrgentAlertNotice

log = logging.getLogger(__name__)
SUBJECT = "Speciosa: an urgent alert needs your attention"


def alert_link(alert: Alert) -> str:
    """The absolute link to the alert's patient page (internal ids only)."""
    try:
        path = reverse("patient_detail", args=[alert.patient_id])
    except NoReverseMatch:
        path = "/"
    return f"{settings.SPECIOSA_BASE_URL}{path}#alert-{alert.pk}"


def message_for(alert: Alert) -> str:
    return (f"An urgent alert needs your attention: {alert_link(alert)}\n\n"
            "Sign in to Speciosa to see it. This message holds no patient information.\n")


def unnotified_urgent(patient_id: int | None = None):
    """Open urgent alerts whose care team has not been e-mailed yet."""
    qs = Alert.objects.filter(severity="urgent", status=Alert.Status.OPEN).exclude(
        pk__in=UrgentAlertNotice.objects.filter(sent_at__isnull=False).values("alert_id"))
    if patient_id is not None:
        qs = qs.filter(patient_id=patient_id)
    return qs.order_by("pk")


def notify(alert_id: int) -> int:
    """E-mail the care team about one urgent alert, once. Returns the number of recipients.

    Idempotent: a second call for the same alert (a retried or redelivered task) sends nothing.
    """
    alert = (Alert.objects.select_related("patient__care_team").filter(pk=alert_id).first())
    if alert is None or alert.severity != "urgent":
        return 0
    members = alert.patient.care_team.members.filter(is_active=True).exclude(email="")
    addresses = sorted(set(members.values_list("email", flat=True)))
    try:
        # The notice row is locked while the e-mail goes out: a concurrent run waits, then
        # sees it sent. A crash before the commit leaves no notice, and the next run sends.
        with transaction.atomic():
            notice, _ = UrgentAlertNotice.objects.select_for_update().get_or_create(alert=alert)
            if notice.sent_at is not None:
                return 0
            if addresses:
                body = message_for(alert)
                # one message per person, so that no one sees the others' addresses
                send_mass_mail([(SUBJECT, body, settings.DEFAULT_FROM_EMAIL, [a]) for a in addresses],
                               fail_silently=False)
            notice.sent_at, notice.recipients = timezone.now(), len(addresses)
            notice.save(update_fields=["sent_at", "recipients"])
    except IntegrityError:  # another run created the notice at the same moment and sent it
        return 0
    log.info("urgent alert e-mailed to the care team",
             extra={"alert_id": alert.pk, "recipients": len(addresses)})
    return len(addresses)
