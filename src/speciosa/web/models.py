"""What a user is told about changes to their login that someone else made."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class CredentialNotice(models.Model):
    """"An administrator reset your second factor on …": shown on every page the user opens
    until they dismiss it (and listed on their Security page). It names what changed and
    when, never a patient or a record (speciosa.web.credentials)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="credential_notices")
    at = models.DateTimeField(default=timezone.now)
    text = models.CharField(max_length=300)
    seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.text}"
