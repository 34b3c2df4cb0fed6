"""Plan templates, patient plans and self-report drafts (see :mod:`speciosa.schedules`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from speciosa.clinic.models import Assessment, ClinicalRecord, Patient, Site


class PlanTemplate(models.Model):
    """A starting point for a patient's plan. ``site`` None: the shipped default set, offered
    at every site; a site's own templates are offered at that site only. ``items`` holds
    ``{"instrument", "every_days", "for_days"}`` lines (``for_days``: the line ends that many
    days after its start; None: no end). Managed in the admin; checked by
    :func:`speciosa.schedules.services.template_problems`."""

    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="plan_templates",
                             help_text="blank: offered at every site")
    name = models.CharField(max_length=120)
    description = models.CharField(max_length=500, blank=True)
    items = models.JSONField(default=list,
                             help_text='lines like {"instrument": "phq9", "every_days": 14, '
                                       '"for_days": null}; "diary" is the daily diary')
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="plan_template_unique_name"),
            models.UniqueConstraint(fields=["name"], condition=models.Q(site__isnull=True),
                                    name="plan_template_unique_default_name"),
        ]

    def __str__(self) -> str:
        return self.name if self.site_id is None else f"{self.name} ({self.site})"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from . import services

        problems = services.template_problems(self.items)
        if problems:
            raise ValidationError({"items": problems})


class PatientPlan(ClinicalRecord):
    """What a patient is asked to complete, and how often: ``items`` holds
    ``{"instrument", "every_days", "start", "end"}`` lines (ISO dates on the patient's
    calendar; ``end`` None: no end), one per instrument.

    A versioned record: a change stores the next version (``replaces`` the last, which is
    ``superseded``), stopping the plan retracts it; the history stays. One current plan per
    patient."""

    template = models.ForeignKey(PlanTemplate, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")
    name = models.CharField(max_length=120)
    items = models.JSONField(default=list)

    class Meta:
        ordering = ["entered_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["patient"],
                                    condition=models.Q(superseded=False, retracted=False),
                                    name="one_current_plan_per_patient"),
        ]

    def __str__(self) -> str:
        return f"Plan {self.pk} of patient {self.patient_id}"


class Draft(models.Model):
    """A patient's answers to a questionnaire so far, kept on the server so they can stop and
    go on later (another device too). Not an assessment: nothing reads it but the patient's
    own questionnaire page; submitting stores the assessment and links it here, once."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    instrument = models.CharField(max_length=40)
    instrument_version = models.CharField(max_length=40)
    answers = models.JSONField(default=dict)
    started_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="+")
    assessment = models.OneToOneField(Assessment, null=True, blank=True,
                                      on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "instrument"],
                                    condition=models.Q(assessment__isnull=True),
                                    name="one_open_draft_per_instrument"),
        ]

    def __str__(self) -> str:
        return f"Draft {self.instrument} of patient {self.patient_id}"
