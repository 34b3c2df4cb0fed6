"""Reminder preferences, push devices and the delivery log (see :mod:`speciosa.reminders`)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from speciosa.clinic.models import Patient

CHANNELS = ("push", "email", "sms")
CHANNEL_LABELS = {"push": "Web Push", "email": "E-mail", "sms": "SMS"}


class Preference(models.Model):
    """A patient's reminder preferences (one row; none: reminders are off, never set up).

    ``time_zone`` blank: the site's (where the diary counts its days). Quiet hours run from
    ``quiet_start`` to ``quiet_end`` (across midnight when the end is earlier); both blank:
    none. ``stopped``: the patient stopped every reminder."""

    patient = models.OneToOneField(Patient, on_delete=models.PROTECT, related_name="+")
    time_of_day = models.TimeField()
    time_zone = models.CharField(max_length=64, blank=True)
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    push = models.BooleanField(default=False)
    email = models.BooleanField(default=False)
    sms = models.BooleanField(default=False)
    sms_number = models.CharField(max_length=20, blank=True)
    stopped = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Reminder preferences of patient {self.patient_id}"

    @property
    def channels(self) -> list[str]:
        return [c for c in CHANNELS if getattr(self, c)]


class PushDevice(models.Model):
    """One browser's Web Push subscription (the endpoint and its keys, from
    ``PushManager.subscribe``). Removed by the patient, or when the push service says the
    subscription is gone (404/410)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    endpoint = models.URLField(max_length=1000, unique=True)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)
    label = models.CharField(max_length=120, blank=True)  # "Chrome on Android", from the browser
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"Push device {self.pk} of patient {self.patient_id}"

    def subscription(self) -> dict:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


class Delivery(models.Model):
    """The delivery log: one row per delivery key ``(patient, item, due_at, channel)``.

    The row is claimed (``sending``) and committed before the reminder goes out; the unique
    constraint makes a second claim of the same key fail, so nothing is sent twice. A row held
    for quiet hours, for an opted-out patient or after a failure that may pass can be claimed
    again later (a conditional update: one claimer wins)."""

    class Status(models.TextChoices):
        SENDING = "sending", "sending (not confirmed)"
        SENT = "sent", "sent"
        FAILED = "failed", "failed"
        QUIET = "quiet", "skipped: quiet hours"
        OPTED_OUT = "opted-out", "skipped: opted out"

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    item = models.CharField(max_length=40)  # the plan line (instrument id, "diary")
    due_at = models.DateTimeField()  # the occurrence's start (local midnight of its due day)
    channel = models.CharField(max_length=8, choices=[(c, CHANNEL_LABELS[c]) for c in CHANNELS])
    status = models.CharField(max_length=12, choices=Status.choices)
    attempts = models.PositiveSmallIntegerField(default=0)
    detail = models.CharField(max_length=200, blank=True)  # why it failed (never content)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-updated_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "item", "due_at", "channel"],
                                    name="one_delivery_per_item_and_channel"),
        ]
        indexes = [models.Index(fields=["patient", "-updated_at"])]

    def __str__(self) -> str:
        return f"Reminder {self.channel} {self.status} for patient {self.patient_id}"
