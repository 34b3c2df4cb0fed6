"""What was imported from another system, so that importing it again changes nothing."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class ImportedResource(models.Model):
    """One FHIR resource imported from another system, keyed by its business identifier.

    ``system``/``value`` are the resource's ``identifier`` in the source system (or, when it
    has none, ``urn:fhir:id:<source>`` and its logical ``id``). ``digest`` is a SHA-256 of
    the resource's clinical content: the same identifier with the same digest is skipped on
    re-import; with a different digest the file is refused (a correction by import is not
    supported). ``model``/``object_id`` name the row it created.
    """

    resource_type = models.CharField(max_length=40)
    system = models.CharField(max_length=255)
    value = models.CharField(max_length=255)
    digest = models.CharField(max_length=64)
    model = models.CharField(max_length=40)
    object_id = models.BigIntegerField()
    patient = models.ForeignKey("clinic.Patient", on_delete=models.PROTECT, related_name="+")
    file_name = models.CharField(max_length=255, blank=True)
    imported_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resource_type", "system", "value"],
                                    name="imported_resource_unique_identifier"),
        ]
        indexes = [models.Index(fields=["model", "object_id"], name="interop_imp_model_4b1f0e_idx")]

    def __str__(self) -> str:
        return f"{self.resource_type} {self.system}|{self.value} -> {self.model} {self.object_id}"
