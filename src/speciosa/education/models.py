"""Reading assignments and shared decisions.

- :class:`EducationAssignment`: a clinician assigns an education page to a patient; the
  patient's first opening of the page records ``read_at``. An assignment is never deleted;
  assigning a page again after it was read opens a new assignment.
- :class:`Decision`: the outcome of the decision aid, filled in by a clinician and a patient
  together: the options considered (with the evidence strength shown at the time), the
  patient's priorities, the choice, the reason, the clinician (login) and the patient's
  name as the patient confirmed it, and when it was decided. Decisions are append-only:
  a changed decision is a new row. The visit report (``speciosa.reports``) reads these
  field names.

Writes go through :mod:`speciosa.education.services` (one transaction + audit entry).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from speciosa.clinic.models import Patient


class EducationAssignment(models.Model):
    """An education page assigned to a patient; ``read_at`` is set when the patient opens it."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="education_assignments")
    page_id = models.CharField(max_length=60)
    assigned_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    assigned_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-assigned_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "page_id"], condition=models.Q(read_at__isnull=True),
                                    name="one_open_assignment_per_page"),
        ]
        indexes = [models.Index(fields=["patient", "page_id"])]

    def __str__(self) -> str:
        return f"{self.page_id} for patient {self.patient_id}{' (read)' if self.read_at else ''}"


class Decision(models.Model):
    """A shared decision recorded from the option grid.

    Attributes
    ----------
    options_considered : list of dict
        ``[{"id": "buprenorphine", "label": "Buprenorphine", "evidence": "guideline; ..."}]``,
        the options discussed, with the evidence strength in words as shown then.
    priorities : dict
        ``{"selected": ["avoid-withdrawal", ...], "labels": [...], "note": "free text"}``.
    choice : str
        An option id (see ``content/options.toml``).
    choice_detail : str
        What "something else" means, when ``choice == "other"``; otherwise empty.
    reason : str
        Why this choice, in the patient's and clinician's words.
    clinician : User
        Who recorded it (a clinician of the patient's care team).
    patient_agreed_name : str
        The patient's name as the patient confirmed it.
    decided_at, entered_at : datetime
        When it was decided; when it was entered.
    """

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="decisions")
    options_considered = models.JSONField(default=list)
    priorities = models.JSONField(default=dict)
    choice = models.CharField(max_length=40)
    choice_detail = models.CharField(max_length=300, blank=True)
    reason = models.TextField(max_length=2000)
    clinician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    patient_agreed_name = models.CharField(max_length=170)
    decided_at = models.DateTimeField()
    entered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-decided_at", "-id"]
        indexes = [models.Index(fields=["patient", "decided_at"])]

    def __str__(self) -> str:
        return f"Decision {self.choice} for patient {self.patient_id} on {self.decided_at:%Y-%m-%d}"

    @property
    def choice_label(self) -> str:
        """The chosen option's label (with the detail for "something else"), in the active
        language when the decision aid is translated into it (the id is what is stored)."""
        from django.utils.translation import get_language

        from .content import all_options, get_option, translate_options

        try:
            get_option(self.choice)
        except KeyError:
            label = self.choice
        else:
            shown, _priorities, _how = translate_options(all_options(), get_language())
            label = next(o.label for o in shown if o.id == self.choice)
        return f"{label}: {self.choice_detail}" if self.choice_detail else label

    @property
    def clinician_name(self) -> str:
        """The recording clinician's full name, or their username."""
        return self.clinician.get_full_name() or self.clinician.get_username()
