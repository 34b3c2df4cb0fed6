"""Forms of the medication pages (issue 19): they parse what was typed; every check of a
medication (units, forms, routes, dates, duplicates, the drug table) is the service's
(:mod:`speciosa.clinic.medications`), whose messages are put beside these fields.

Units, forms, routes, statuses and prescribers are offered as lists, but the fields are
text: a value that is not on the list (a stale page, a crafted post) reaches the service and
gets its message ("Unknown unit 'mgs': choose one of ..."), not Django's generic one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy

from speciosa.clinic import medications
from speciosa.clinic.models import (
    EpisodeStatus,
    Medication,
    MedicationCategory,
    MedicationStatus,
    Prescriber,
    TreatmentDrug,
    TreatmentFormulation,
)

from .forms import PointDecimalField, TokenForm

#: Where a service's message about a medication key goes on the forms.
FIELD_OF = {"drug": "drug_name", "name": "drug_name", "rxnorm": "drug_name",
            "start": "start_date", "end": "end_date", "at": "at_date", "medication": None}


def _select(choices, label: str, required: bool = False, initial: str = "") -> forms.CharField:
    return forms.CharField(label=label, required=required, initial=initial,
                           widget=forms.Select(choices=choices))


def _amount(label: str) -> PointDecimalField:
    return PointDecimalField(label=label, required=False, max_digits=12, decimal_places=4)


def _date(label: str, required: bool = False) -> forms.DateField:
    return forms.DateField(label=label, required=required,
                           widget=forms.DateInput(attrs={"type": "date"}))


def _time(label: str) -> forms.TimeField:
    return forms.TimeField(label=label, required=False,
                           widget=forms.TimeInput(attrs={"type": "time"}))


def _blank(label: str, options) -> list[tuple[str, str]]:
    return [("", label), *options]


STRENGTH_UNIT_CHOICES = _blank(gettext_lazy("— unit —"),
                               [(u, u) for u in medications.STRENGTH_UNITS])
DOSE_UNIT_CHOICES = _blank(gettext_lazy("— unit —"), [(u, u) for u in medications.DOSE_UNITS])
FORM_CHOICES = _blank("—", list(medications.FORMS.items()))
ROUTE_CHOICES = _blank("—", list(medications.ROUTES.items()))
CATEGORY_CHOICES = _blank("—", list(MedicationCategory.choices))
PRESCRIBER_CHOICES = list(Prescriber.choices)
STATUS_CHOICES = [(v, label) for v, label in MedicationStatus.choices
                  if v != MedicationStatus.ENTERED_IN_ERROR]


def moment(day: dt.date | None, time: dt.time | None, patient) -> dt.date | dt.datetime | None:
    """A day, or the day and time in the site's time zone when a time was given."""
    if day is None:
        return None
    if time is None:
        return day
    return dt.datetime.combine(day, time, tzinfo=medications.site_time_zone(patient))


def put_errors(form: forms.Form, exc: ValidationError, **where: str) -> None:
    """A service's messages beside the form's fields (unknown keys above the form);
    ``where`` maps a service key to this form's field (``end="at_date"``)."""
    for key, messages in exc.message_dict.items():
        name = where.get(key) or FIELD_OF.get(key, key)
        if name not in form.fields and key in form.fields:
            name = key  # a form with the service's own field name (the episode's "drug")
        field = name if name in form.fields and name != "token" else None
        for message in messages:
            form.add_error(field, message)


def _split(value: dt.date | None, at: dt.datetime | None, patient) -> tuple[Any, Any]:
    if at is not None:
        local = at.astimezone(medications.site_time_zone(patient))
        return local.date(), local.time().replace(second=0, microsecond=0)
    return value, None


class HowTakenFields(forms.Form):
    """How a medicine is taken: its strength, form, dose, how often and by which route; the
    same fields on the add, correct and change forms."""

    strength = _amount(gettext_lazy("Strength"))
    strength_unit = _select(STRENGTH_UNIT_CHOICES, gettext_lazy("Strength unit"))
    form = _select(FORM_CHOICES, gettext_lazy("Form"))
    dose_amount = _amount(gettext_lazy("Dose"))
    dose_unit = _select(DOSE_UNIT_CHOICES, gettext_lazy("Dose unit"))
    frequency = forms.CharField(label=gettext_lazy("How often"), required=False, max_length=80)
    route = _select(ROUTE_CHOICES, gettext_lazy("Route"))

    HOW_TAKEN = ("strength", "strength_unit", "form", "dose_amount", "dose_unit", "frequency",
                 "route")


class MedicationForm(TokenForm, HowTakenFields):
    """Add (or correct) a medication: the drug from the table's names, or free text."""

    drug_name = forms.CharField(
        label=gettext_lazy("Medicine (generic or brand name)"), max_length=120,
        help_text=gettext_lazy(
            "Choose from the list to code it; anything else is stored as not coded."),
        widget=forms.TextInput(attrs={"list": "drug-table", "autocomplete": "off"}))
    category = _select(CATEGORY_CHOICES, gettext_lazy("Kind"))
    start_date = _date(gettext_lazy("Started on"), required=True)
    start_time = _time(gettext_lazy("at (time, optional)"))
    end_date = _date(gettext_lazy("Stopped on (if stopped)"))
    end_time = _time(gettext_lazy("at (time, optional)"))
    status = _select(STATUS_CHOICES, gettext_lazy("Status"), initial=MedicationStatus.ACTIVE)
    stop_reason = forms.CharField(label=gettext_lazy("Reason for stopping"), required=False,
                                  max_length=200)
    prescriber = _select(PRESCRIBER_CHOICES, gettext_lazy("Prescribed by"),
                         initial=Prescriber.CLINIC)
    prescriber_name = forms.CharField(label=gettext_lazy("Prescriber's name"), required=False,
                                      max_length=120)
    indication = forms.CharField(label=gettext_lazy("Reason for taking it"), required=False,
                                 max_length=200)
    notes = forms.CharField(label=gettext_lazy("Notes"), required=False, max_length=2000,
                            widget=forms.Textarea(attrs={"rows": 2}))

    field_order = ["token", "drug_name", "category", *HowTakenFields.HOW_TAKEN]

    def __init__(self, *args, patient, **kwargs):
        super().__init__(*args, **kwargs)
        self.patient = patient
        self.fields["start_date"].error_messages["required"] = (
            gettext_lazy("Give the date it was started (an estimate is fine; say so in the "
                         "notes)."))

    def medication_data(self) -> dict[str, Any]:
        """The service's fields (:data:`speciosa.clinic.medications.FIELDS`)."""
        c = self.cleaned_data
        drug, name = medications.resolve_drug_name(c["drug_name"])
        return {
            "drug": drug, "name": name, "category": c.get("category") or "",
            "strength": c.get("strength"), "strength_unit": c.get("strength_unit") or "",
            "form": c.get("form") or "", "dose_amount": c.get("dose_amount"),
            "dose_unit": c.get("dose_unit") or "", "frequency": c.get("frequency") or "",
            "route": c.get("route") or "",
            "start": moment(c.get("start_date"), c.get("start_time"), self.patient),
            "end": moment(c.get("end_date"), c.get("end_time"), self.patient),
            "status": c.get("status") or MedicationStatus.ACTIVE,
            "stop_reason": c.get("stop_reason") or "",
            "prescriber": c.get("prescriber") or Prescriber.UNKNOWN,
            "prescriber_name": c.get("prescriber_name") or "",
            "indication": c.get("indication") or "", "notes": c.get("notes") or "",
        }

    @staticmethod
    def initial_from(record: Medication) -> dict[str, Any]:
        start_date, start_time = _split(record.start, record.start_at, record.patient)
        end_date, end_time = _split(record.end, record.end_at, record.patient)
        return {"drug_name": record.name, "category": record.category,
                "strength": record.strength, "strength_unit": record.strength_unit,
                "form": record.form, "dose_amount": record.dose_amount,
                "dose_unit": record.dose_unit, "frequency": record.frequency,
                "route": record.route, "start_date": start_date, "start_time": start_time,
                "end_date": end_date, "end_time": end_time, "status": record.status,
                "stop_reason": record.stop_reason, "prescriber": record.prescriber,
                "prescriber_name": record.prescriber_name, "indication": record.indication,
                "notes": record.notes}


class MedicationCorrectForm(MedicationForm):
    """Correct a medication entered wrongly: the row is replaced, its history kept."""

    reason = forms.CharField(label=gettext_lazy("Reason for the correction"), max_length=500)
    retract = forms.BooleanField(label=gettext_lazy("Withdraw this entry (it was made in error)"),
                                 required=False)
    confirm = forms.BooleanField(
        label=gettext_lazy("…and confirm it: I went through it with the patient"),
                                 required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.data.get("retract"):  # withdrawing needs the reason only
            for name, field in self.fields.items():
                if name not in ("token", "reason", "retract"):
                    field.required = False

    def changes_for(self, record: Medication) -> dict[str, Any]:
        data = self.medication_data()
        # the RxCUI follows the drug: the table's for a coded drug, kept for unchanged free text
        data["rxnorm"] = "" if data["drug"] else (
            record.rxnorm if not record.drug and data["name"] == record.name else "")
        return data


class MedicationChangeForm(TokenForm, HowTakenFields):
    """Change the dose (or how often, the form, the route) from a moment on."""

    dose_amount = _amount(gettext_lazy("New dose"))
    at_date = _date(gettext_lazy("New dose from"), required=True)
    at_time = _time(gettext_lazy("at (time, optional)"))
    reason = forms.CharField(label=gettext_lazy("Reason for the change"), max_length=500)

    CHANGEABLE = HowTakenFields.HOW_TAKEN
    field_order = ["token", *CHANGEABLE]

    def changes(self) -> dict[str, Any]:
        c = self.cleaned_data
        return {k: (c.get(k) if c.get(k) is not None else "") if k not in (
            "strength", "dose_amount") else c.get(k) for k in self.CHANGEABLE}


class MedicationStopForm(TokenForm):
    at_date = _date(gettext_lazy("Stopped on"), required=True)
    at_time = _time(gettext_lazy("at (time, optional)"))
    stop_reason = forms.CharField(label=gettext_lazy("Reason for stopping"), max_length=200)
    status = _select([(MedicationStatus.STOPPED, gettext_lazy("stopped")),
                      (MedicationStatus.COMPLETED, gettext_lazy("course completed"))], "",
                     initial=MedicationStatus.STOPPED)


class MedicationReviewForm(TokenForm):
    note = forms.CharField(label=gettext_lazy("Note (optional)"), required=False, max_length=1000,
                           widget=forms.Textarea(attrs={"rows": 2}))


class ConfirmForm(TokenForm):
    """One button: confirm a medication the patient reported."""


class MyStopForm(TokenForm):
    """The patient says they stopped a medicine they added themselves."""

    at_date = _date(gettext_lazy("I stopped on"), required=True)
    stop_reason = forms.CharField(label=gettext_lazy("Why? (a few words)"), max_length=200)


class MyMedicineForm(TokenForm):
    """A patient adds what they take that the clinic did not prescribe (phone-first: few
    fields, the rest for the clinician to complete when confirming)."""

    drug_name = forms.CharField(
        label=gettext_lazy("What do you take?"), max_length=120,
        help_text=gettext_lazy("The name on the pack. Start typing to pick from the list."),
        widget=forms.TextInput(attrs={"list": "drug-table", "autocomplete": "off"}))
    category = forms.ChoiceField(
        label=gettext_lazy("What kind is it?"), widget=forms.RadioSelect, initial=MedicationCategory.SUPPLEMENT,
        choices=[(MedicationCategory.SUPPLEMENT, gettext_lazy("A supplement or herbal product")),
                 (MedicationCategory.OTC, gettext_lazy("Bought without a prescription")),
                 (MedicationCategory.PRESCRIPTION, gettext_lazy("Prescribed by another doctor"))])
    dose_amount = _amount(gettext_lazy("How much each time (optional)"))
    dose_unit = _select(DOSE_UNIT_CHOICES, gettext_lazy("Unit"))
    frequency = forms.CharField(label=gettext_lazy("How often (optional)"), required=False, max_length=80,
                                widget=forms.TextInput(attrs={"placeholder": gettext_lazy("e.g. once a day")}))
    start_date = _date(gettext_lazy("Since when? (a guess is fine)"), required=True)
    prescriber_name = forms.CharField(label=gettext_lazy("Who prescribed it? (optional)"), required=False,
                                      max_length=120)
    notes = forms.CharField(label=gettext_lazy("Anything else (optional)"), required=False, max_length=2000,
                            widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, patient, **kwargs):
        super().__init__(*args, **kwargs)
        self.patient = patient
        self.fields["start_date"].error_messages["required"] = (
            "Give the day you started, as best you know.")

    def medication_data(self) -> dict[str, Any]:
        c = self.cleaned_data
        drug, name = medications.resolve_drug_name(c["drug_name"])
        prescribed = c["category"] == MedicationCategory.PRESCRIPTION
        return {"drug": drug, "name": name, "category": c["category"],
                "dose_amount": c.get("dose_amount"), "dose_unit": c.get("dose_unit") or "",
                "frequency": c.get("frequency") or "", "start": c["start_date"],
                "status": MedicationStatus.ACTIVE,
                "prescriber": Prescriber.OUTSIDE if prescribed else Prescriber.NONE,
                "prescriber_name": c.get("prescriber_name") or "",
                "notes": c.get("notes") or ""}


# --------------------------------------------------------------------------- treatment episodes

DRUG_CHOICES = [("", "—"), *TreatmentDrug.choices]
FORMULATION_CHOICES = [("", "—"), *TreatmentFormulation.choices]


class EpisodeForm(TokenForm):
    """Start a treatment episode (buprenorphine, methadone, naltrexone)."""

    drug = _select(DRUG_CHOICES, gettext_lazy("Medication"), required=True)
    formulation = _select(FORMULATION_CHOICES, gettext_lazy("Formulation"), required=True)
    dose_mg = _amount(gettext_lazy("Dose in mg (a day; for an injection, each injection)"))
    dispensing_clinic = forms.CharField(label=gettext_lazy("Dispensing clinic (methadone)"),
                                        required=False,
                                        max_length=120)
    start_date = _date(gettext_lazy("Started on"), required=True)
    start_time = _time(gettext_lazy("at (time, optional)"))
    injection_date = _date(gettext_lazy("First injection given on (extended-release injection)"))
    notes = forms.CharField(label=gettext_lazy("Notes"), required=False, max_length=2000,
                            widget=forms.Textarea(attrs={"rows": 2}))
    confirmed_dose = forms.BooleanField(
        label=gettext_lazy("I have checked this methadone dose and it is right"), required=False)
    decision = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, patient, **kwargs):
        super().__init__(*args, **kwargs)
        self.patient = patient

    def episode_data(self) -> dict[str, Any]:
        c = self.cleaned_data
        injection = c.get("injection_date")
        return {"drug": c.get("drug") or "", "formulation": c.get("formulation") or "",
                "dose_mg": c.get("dose_mg"),
                "dispensing_clinic": c.get("dispensing_clinic") or "",
                "start": moment(c.get("start_date"), c.get("start_time"), self.patient),
                "injection_dates": [injection.isoformat()] if injection else [],
                "notes": c.get("notes") or "", "confirmed_dose": bool(c.get("confirmed_dose")),
                "decision": c.get("decision")}


class EpisodeChangeForm(TokenForm):
    formulation = _select(FORMULATION_CHOICES, gettext_lazy("Formulation"))
    dose_mg = _amount(gettext_lazy("New dose in mg (a day; for an injection, each injection)"))
    dispensing_clinic = forms.CharField(label=gettext_lazy("Dispensing clinic (methadone)"),
                                        required=False,
                                        max_length=120)
    at_date = _date(gettext_lazy("New dose from"), required=True)
    at_time = _time(gettext_lazy("at (time, optional)"))
    reason = forms.CharField(label=gettext_lazy("Reason for the change"), max_length=500)
    confirmed_dose = forms.BooleanField(
        label=gettext_lazy("I have checked this methadone dose and it is right"), required=False)

    def changes(self) -> dict[str, Any]:
        c = self.cleaned_data
        return {"formulation": c.get("formulation") or "", "dose_mg": c.get("dose_mg"),
                "dispensing_clinic": c.get("dispensing_clinic") or "",
                "confirmed_dose": bool(c.get("confirmed_dose"))}


class EpisodeStopForm(TokenForm):
    at_date = _date(gettext_lazy("Stopped on"), required=True)
    at_time = _time(gettext_lazy("at (time, optional)"))
    stop_reason = forms.CharField(label=gettext_lazy("Reason for stopping"), max_length=200)


class InjectionForm(TokenForm):
    day = _date(gettext_lazy("Injection given on"), required=True)


class EpisodeCorrectForm(EpisodeForm):
    """Correct an episode entered wrongly (the row is replaced, its history kept), or
    withdraw it."""

    injection_date = None
    injection_dates = forms.CharField(
        label=gettext_lazy("Injection dates (YYYY-MM-DD, separated by commas)"),
                                      required=False, max_length=4000)
    end_date = _date(gettext_lazy("Stopped on (if stopped)"))
    end_time = _time(gettext_lazy("at (time, optional)"))
    status = _select([(v, label) for v, label in EpisodeStatus.choices],
                     gettext_lazy("Status"),
                     initial=EpisodeStatus.ACTIVE)
    stop_reason = forms.CharField(label=gettext_lazy("Reason for stopping"), required=False,
                                  max_length=200)
    reason = forms.CharField(label=gettext_lazy("Reason for the correction"), max_length=500)
    retract = forms.BooleanField(
        label=gettext_lazy("Withdraw this episode (it was entered in error)"),
                                 required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.data.get("retract"):
            for name, field in self.fields.items():
                if name not in ("token", "reason", "retract"):
                    field.required = False

    def episode_data(self) -> dict[str, Any]:
        c = self.cleaned_data
        data = super().episode_data()
        data["injection_dates"] = [d for d in (c.get("injection_dates") or "").split(",")
                                   if d.strip()]
        data.update(end=moment(c.get("end_date"), c.get("end_time"), self.patient),
                    status=c.get("status") or EpisodeStatus.ACTIVE,
                    stop_reason=c.get("stop_reason") or "")
        return data

    @staticmethod
    def initial_from(record) -> dict[str, Any]:
        start_date, start_time = _split(record.start, record.start_at, record.patient)
        end_date, end_time = _split(record.end, record.end_at, record.patient)
        return {"drug": record.drug, "formulation": record.formulation, "dose_mg": record.dose_mg,
                "dispensing_clinic": record.dispensing_clinic, "start_date": start_date,
                "start_time": start_time, "end_date": end_date, "end_time": end_time,
                "status": record.status, "stop_reason": record.stop_reason,
                "injection_dates": ", ".join(record.injection_dates or []),
                "notes": record.notes, "confirmed_dose": record.confirmed_dose,
                "decision": record.decision_id}
