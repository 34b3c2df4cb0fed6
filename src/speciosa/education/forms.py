"""Forms for assigning reading and for the decision aid. They parse what was typed; the
rules (known option, reason required, name confirmed) live in :mod:`.services`."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from speciosa.web.forms import TokenForm

from . import content
from .services import PRIORITIES


class AssignForm(TokenForm):
    """Assign one education page to a patient."""

    page_id = forms.ChoiceField(label="Page", choices=())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["page_id"].choices = [(p.id, p.title) for p in content.all_pages()]
        self.fields["page_id"].error_messages["invalid_choice"] = "Choose one of the education pages."


class DecisionForm(TokenForm):
    """The option grid filled in together by a clinician and a patient."""

    options_considered = forms.MultipleChoiceField(
        label="Options discussed", required=False, widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Tick only options from the grid."})
    choice = forms.ChoiceField(
        label="Option chosen", required=False, widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose one of the options in the grid."})
    choice_detail = forms.CharField(label="If something else, what?", required=False, max_length=300)
    priorities = forms.MultipleChoiceField(
        label="What matters most to the patient", required=False, widget=forms.CheckboxSelectMultiple,
        choices=list(PRIORITIES.items()),
        error_messages={"invalid_choice": "Tick only the priorities listed."})
    priorities_note = forms.CharField(label="Anything else that matters (patient's words)", required=False,
                                      widget=forms.Textarea(attrs={"rows": 2}))
    reason = forms.CharField(label="Reason for the choice", required=False,
                             widget=forms.Textarea(attrs={"rows": 3}))
    patient_agreed_name = forms.CharField(label="Patient's name, as the patient confirms it", required=False,
                                          max_length=170, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    decided_at = forms.DateTimeField(label="Decided on", required=False,
                                     widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                                format="%Y-%m-%dT%H:%M"),
                                     input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(o.id, o.label) for o in content.all_options()]
        self.fields["options_considered"].choices = choices
        self.fields["choice"].choices = choices
        if not self.is_bound:
            self.initial.setdefault("decided_at", timezone.localtime().replace(second=0, microsecond=0))

    def service_data(self) -> dict:
        """The cleaned values in the shape :func:`services.record_decision` takes."""
        c = self.cleaned_data
        return {
            "options_considered": c.get("options_considered") or [],
            "choice": c.get("choice") or "",
            "choice_detail": c.get("choice_detail") or "",
            "priorities": c.get("priorities") or [],
            "priorities_note": c.get("priorities_note") or "",
            "reason": c.get("reason") or "",
            "patient_agreed_name": c.get("patient_agreed_name") or "",
            "decided_at": c.get("decided_at"),
        }
