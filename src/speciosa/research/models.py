"""A research export asked for on the research page: who asked, for what purpose, its state
and its zip file's life (:mod:`speciosa.research.exports`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ResearchExport(models.Model):
    """One de-identified research export made on the task queue for the researcher who asked.

    Only that researcher downloads its zip (anyone else: 404), until ``expires``."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=300)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires = models.DateTimeField()
    patients = models.PositiveIntegerField(null=True, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=~models.Q(purpose=""),
                                              name="research_export_has_purpose")]

    def __str__(self) -> str:
        return f"research export {self.pk} ({self.status})"
