"""Forms of the taper plan pages (issue 19): they parse what the clinician typed; every check
(dates, units, plausibility, overlaps, whose episode) is the service's
(:mod:`speciosa.clinic.taper`), whose messages are put beside these fields.

The schedule starts empty: no amount, no unit and no number of doses is filled in for the
clinician (Speciosa never proposes a dose). The step fields are text, so a value that is not
on a list (a stale page, a crafted post) reaches the service and gets its message.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy

from speciosa.clinic import taper
from speciosa.clinic.models import TaperKind

from .forms import TokenForm

UNIT_CHOICES = [("", "— unit —"), *((u, taper.unit_words(u)) for u in
                                   ("g", "capsule", "glass", "mg_extract", "mg_mitragynine",
                                    "mg_7oh"))]
KIND_CHOICES = [("", "—"), *TaperKind.choices]
#: Empty step rows on a new plan's form (a four-week plan of weekly steps fits).
NEW_ROWS = 4


def _text(label: str, *, mode: str = "decimal", size: int = 6) -> forms.CharField:
    return forms.CharField(label=label, required=False, max_length=20,
                           widget=forms.TextInput(attrs={"inputmode": mode, "size": size,
                                                         "autocomplete": "off"}))


class StepForm(forms.Form):
    """One step: from, to, amount per dose, unit, doses a day (and what the unit needs)."""

    start = forms.CharField(label=gettext_lazy("From"), required=False, max_length=20,
                            widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.CharField(label=gettext_lazy("To (included)"), required=False, max_length=20,
                          widget=forms.DateInput(attrs={"type": "date"}))
    amount = _text(gettext_lazy("Amount per dose"))
    unit = forms.CharField(label=gettext_lazy("Unit"), required=False, max_length=20,
                           widget=forms.Select(choices=UNIT_CHOICES))
    doses_per_day = _text(gettext_lazy("Doses a day"), mode="numeric", size=3)
    grams_per_capsule = _text(gettext_lazy("g per capsule (capsules)"))
    mitragynine_percent = _text(gettext_lazy("Mitragynine % (label)"))

    def is_blank(self) -> bool:
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        return not any(str(data.get(k) or "").strip() for k in self.fields)

    def step(self) -> dict[str, Any]:
        c = self.cleaned_data
        return {k: (str(c.get(k) or "").strip() or None) for k in taper.STEP_FIELDS}


class _Steps(forms.BaseFormSet):
    default_error_messages = {
        "too_many_forms": format_lazy(gettext_lazy(
            "A plan holds at most {n} steps; nothing was saved."), n=taper.MAX_STEPS),
        "missing_management_form": gettext_lazy(
            "The form was incomplete; nothing was saved. Reload the page and try again."),
    }


StepFormSet = forms.formset_factory(StepForm, formset=_Steps, extra=0, max_num=taper.MAX_STEPS,
                                    validate_max=True, absolute_max=taper.MAX_STEPS)


def step_formset(data=None, *, initial=None, add_row: bool = False, rows: int = NEW_ROWS):
    """The schedule's rows: ``rows`` empty ones on a new plan (or the plan's own steps as
    ``initial``); as posted otherwise, with one more when "Add a step" was pressed."""
    if data is not None and add_row:
        data = data.copy()
        try:
            total = int(data.get("steps-TOTAL_FORMS", "0"))
        except ValueError:
            total = 0
        data["steps-TOTAL_FORMS"] = str(max(0, min(total, taper.MAX_STEPS - 1)) + 1)
    if data is None and not initial:
        return forms.formset_factory(StepForm, formset=_Steps, extra=rows,
                                     max_num=taper.MAX_STEPS, absolute_max=taper.MAX_STEPS)(
            prefix="steps")
    return StepFormSet(data, prefix="steps", initial=initial)


class PlanForm(TokenForm):
    """What the plan is for and why; the steps are a formset beside it."""

    kind = forms.CharField(label=gettext_lazy("The plan is"), required=False, max_length=20,
                           widget=forms.Select(choices=KIND_CHOICES))
    reason = forms.CharField(label=gettext_lazy("Why this plan (what was agreed with the patient)"),
                             required=False, max_length=2000,
                             widget=forms.Textarea(attrs={"rows": 2}))
    episode = forms.CharField(label=gettext_lazy("Goes with the treatment episode (optional)"), required=False,
                              max_length=20, widget=forms.Select())
    decision = forms.CharField(label=gettext_lazy("Carries out the shared decision (optional)"),
                               required=False, max_length=20, widget=forms.Select())

    def __init__(self, *args, patient, reason_label: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        from speciosa.clinic import treatment
        from speciosa.education.models import Decision

        self.fields["episode"].widget.choices = [("", "—")] + [
            (str(e.pk), f"{e.get_drug_display()} {e.get_formulation_display()} from "
                        f"{e.start:%d %b %Y}") for e in treatment.current_episodes(patient)]
        self.fields["decision"].widget.choices = [("", "—")] + [
            (str(d.pk), f"{d.decided_at:%d %b %Y}: {d.choice_label}")
            for d in Decision.objects.filter(patient=patient).order_by("-decided_at")]
        if reason_label:  # a correction or a replacement says why
            self.fields["change_reason"] = forms.CharField(label=reason_label, max_length=500)

    def plan_data(self, steps: list[dict[str, Any]]) -> dict[str, Any]:
        c = self.cleaned_data
        return {"kind": c.get("kind") or "", "reason": c.get("reason") or "", "steps": steps,
                "episode": c.get("episode") or None, "decision": c.get("decision") or None}


class StopForm(TokenForm):
    stopped_on = forms.DateField(label=gettext_lazy("Stopped on"), required=True,
                                 widget=forms.DateInput(attrs={"type": "date"}))
    stop_reason = forms.CharField(label=gettext_lazy("Why it stops"), max_length=200)
