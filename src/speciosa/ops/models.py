"""What the operations side remembers: which urgent alerts the care team was told about."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class UrgentAlertNotice(models.Model):
    """One row per urgent alert whose care team was e-mailed (so each is e-mailed once).

    The row is created, the e-mail sent and ``sent_at`` set in one transaction
    (:func:`speciosa.ops.notify.notify`): a crash before the commit leaves no row and the next
    run sends again (at least once; a rare second e-mail beats a missed one).
    """

    alert = models.OneToOneField("clinic.Alert", on_delete=models.CASCADE, related_name="+")
    claimed_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    recipients = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"notice for alert {self.alert_id}"
