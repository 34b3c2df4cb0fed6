"""Threads, messages and read receipts (see :mod:`speciosa.messaging`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from speciosa.clinic.models import Patient


class Thread(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="threads")
    subject = models.CharField(max_length=120)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_message_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_message_at", "-id"]
        indexes = [models.Index(fields=["patient", "last_message_at"])]

    def __str__(self) -> str:
        return f"Thread {self.pk} of patient {self.patient_id}"


class Message(models.Model):
    """One message; ``from_patient`` says which side wrote it. Never edited: a message is
    part of the record."""

    thread = models.ForeignKey(Thread, on_delete=models.PROTECT, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="+")
    from_patient = models.BooleanField()
    body = models.TextField(max_length=4000)
    sent_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)  # the notice e-mail, sent once

    class Meta:
        ordering = ["sent_at", "id"]

    def __str__(self) -> str:
        return f"Message {self.pk} in thread {self.thread_id}"


class MessageRead(models.Model):
    """A read receipt: ``user`` opened the thread holding ``message`` at ``read_at``."""

    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="reads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    read_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="one_read_per_user")]
