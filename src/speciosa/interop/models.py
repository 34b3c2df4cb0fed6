"""What was imported from another system, so that importing it again changes nothing."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class ImportedResource(models.Model):
    """One version of a FHIR resource imported from another system, keyed by its business
    identifier, with what the sender said that Speciosa's row does not hold.

    ``system``/``value`` are the resource's ``identifier`` in the source system (or, when it
    has none, ``urn:speciosa:source-id:<type>`` and its logical ``id``). ``digest`` is a
    SHA-256 of the resource's clinical content: the same identifier with the same digest is
    left alone on re-import; with a different digest it is an **update** (issue 14): a new
    ``version`` of this row pointing at a new version of the record (``replaces``), or, for
    ``entered-in-error``, at the same record withdrawn. ``model``/``object_id`` name the row.

    Kept as the sender gave them, and exported again: ``source_status`` (the resource's
    ``status``), ``recorded_at`` (``Observation.issued``,
    ``MedicationStatement.dateAsserted``), ``reported_by`` (``patient`` when the patient
    reported it: ``performer``, ``author``/``source``, ``informationSource`` or a
    ``patientspecified`` category naming the patient; ``practitioner`` or ``other``),
    ``author`` (the sender's reference of who reported it, its display and identifier only:
    a reference into the sender's server would name someone else here) and ``codings`` (the
    sender's codings of the resource's code that Speciosa's own do not repeat).
    """

    class ReportedBy(models.TextChoices):
        PATIENT = "patient", "the patient"
        PRACTITIONER = "practitioner", "a practitioner"
        OTHER = "other", "someone else (an organization, a device, a related person)"

    resource_type = models.CharField(max_length=40)
    system = models.CharField(max_length=255)
    value = models.CharField(max_length=255)
    version = models.PositiveIntegerField(default=1)
    digest = models.CharField(max_length=64)
    model = models.CharField(max_length=40)
    object_id = models.BigIntegerField()
    patient = models.ForeignKey("clinic.Patient", on_delete=models.PROTECT, related_name="+")
    file_name = models.CharField(max_length=255, blank=True)
    imported_at = models.DateTimeField(default=timezone.now)
    source_status = models.CharField(max_length=24, blank=True)
    recorded_at = models.DateTimeField(null=True, blank=True)
    reported_by = models.CharField(max_length=12, choices=ReportedBy.choices, blank=True)
    author = models.JSONField(null=True, blank=True)
    codings = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resource_type", "system", "value", "version"],
                                    name="imported_resource_one_row_per_version"),
        ]
        indexes = [models.Index(fields=["model", "object_id"], name="interop_imp_model_4b1f0e_idx")]

    def __str__(self) -> str:
        return (f"{self.resource_type} {self.system}|{self.value} v{self.version} -> "
                f"{self.model} {self.object_id}")


class TrustedIdentifierSystem(models.Model):
    """An identifier system whose values a site's medical record numbers are (issue 14).

    The FHIR import matches a patient only on an identifier's ``system`` **and** ``value``,
    and only for a system trusted at the patient's site: either the site's own MRN system
    (:func:`speciosa.interop.codes.mrn_system`, always trusted) or one listed here, e.g. the
    MRN system of the hospital whose laboratory results the site imports. Marking a system
    trusted says: a value of this system *is* the site's record number of the same person.
    An administrator adds or removes rows in the admin (audited, with the row before and
    after).
    """

    site = models.ForeignKey("clinic.Site", on_delete=models.PROTECT, related_name="+")
    system = models.CharField(
        max_length=255, help_text="the identifier system's URI, exactly as the sender writes it "
        "(e.g. urn:oid:2.16.840.1.113883.3.72.5.9.1 or https://hospital.example/fhir/sid/mrn)")
    note = models.CharField(max_length=300, blank=True,
                            help_text="whose numbers these are and who confirmed it")
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "system"], name="trusted_system_once_per_site"),
        ]
        verbose_name = "trusted identifier system"

    def __str__(self) -> str:
        return f"{self.system} (trusted at {self.site})"
