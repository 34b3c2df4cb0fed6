"""Urine drug test panel pages (issue 19): record a panel and read it against what is
expected, correct it as a whole or withdraw it as entered in error (history kept), through
:mod:`speciosa.clinic.urine`. The patient page lists the recent panels
(:func:`urine_context`)."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from speciosa.clinic import access, medications, services, urine
from speciosa.clinic.models import Role, UrinePanel
from speciosa.knowledge import drug_panels
from speciosa.knowledge import labs as klabs

from .forms import TokenForm, submission_key

_role_required = access.role_required

_YES_NO = [("", gettext_lazy("not recorded")), ("yes", gettext_lazy("yes")),
           ("no", gettext_lazy("no"))]
_RESULTS = [("", "—"), ("positive", gettext_lazy("positive")),
            ("negative", gettext_lazy("negative")),
            ("indeterminate", gettext_lazy("indeterminate"))]


def urine_context(patient) -> dict:
    """The patient page's section: the five latest panels, each with its reading."""
    panels = list(UrinePanel.objects.current().filter(patient=patient)
                  .order_by("-collected_at", "-pk")[:5])
    for p in panels:
        p.reading, _ = urine.read(p)
    return {"panels": panels}


class PanelForm(TokenForm):
    collected_date = forms.DateField(label=gettext_lazy("Collected on"), widget=forms.DateInput(attrs={"type": "date"}))
    collected_time = forms.TimeField(label=gettext_lazy("at"), widget=forms.TimeInput(attrs={"type": "time"}))
    panels = forms.MultipleChoiceField(
        label=gettext_lazy("Panels tested"), widget=forms.CheckboxSelectMultiple,
        choices=[(p.id, p.name) for p in drug_panels.PANELS])
    method = forms.ChoiceField(label=gettext_lazy("Method"), choices=[
        ("screen", gettext_lazy("screening immunoassay")),
        ("confirmation", gettext_lazy("confirmation (e.g. LC-MS/MS)"))])
    method_detail = forms.CharField(label=gettext_lazy("Method detail (optional)"), required=False, max_length=60)
    creatinine_mg_dl = forms.CharField(label=gettext_lazy("Creatinine (mg/dL)"), required=False, max_length=20)
    ph = forms.CharField(label=gettext_lazy("pH"), required=False, max_length=20)
    specific_gravity = forms.CharField(label=gettext_lazy("Specific gravity"), required=False, max_length=20)
    temperature_in_range = forms.ChoiceField(label=gettext_lazy("Temperature 32–38 °C within 4 minutes"),
                                             choices=_YES_NO, required=False)
    observed = forms.ChoiceField(label=gettext_lazy("Collection observed"), choices=_YES_NO, required=False)
    note = forms.CharField(label=gettext_lazy("Note"), required=False, max_length=500,
                           widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, patient, **kwargs):
        super().__init__(*args, **kwargs)
        self.patient = patient
        self.analyte_codes = list(dict.fromkeys(a for p in drug_panels.PANELS for a in p.analytes))
        for code in self.analyte_codes:
            name = klabs.get_lab(code).name
            self.fields[f"r_{code}"] = forms.ChoiceField(label=name, choices=_RESULTS,
                                                         required=False)
            self.fields[f"v_{code}"] = forms.CharField(label=gettext_lazy("or value"), required=False, max_length=20)
            self.fields[f"c_{code}"] = forms.CharField(label=gettext_lazy("cut-off"), required=False, max_length=20)
            self.fields[f"u_{code}"] = forms.CharField(label=gettext_lazy("unit"), required=False, max_length=16,
                                                       initial="ng/mL")

    def analyte_rows(self):
        return [(self[f"r_{c}"], self[f"v_{c}"], self[f"c_{c}"], self[f"u_{c}"], c)
                for c in self.analyte_codes]

    def panel_data(self) -> dict:
        c = self.cleaned_data
        at = dt.datetime.combine(c["collected_date"], c["collected_time"],
                                 tzinfo=medications.site_time_zone(self.patient))
        analytes = {}
        for code in self.analyte_codes:
            value = (c.get(f"v_{code}") or "").strip()
            result = c.get(f"r_{code}") or ""
            if value:
                analytes[code] = {"value": value, "cutoff": c.get(f"c_{code}") or "",
                                  "unit": c.get(f"u_{code}") or ""}
            elif result:
                analytes[code] = result
        yes = {"yes": True, "no": False}
        return {"collected_at": at, "panels": c.get("panels") or [], "method": c.get("method"),
                "method_detail": c.get("method_detail") or "",
                "creatinine_mg_dl": c.get("creatinine_mg_dl"), "ph": c.get("ph"),
                "specific_gravity": c.get("specific_gravity"),
                "temperature_in_range": yes.get(c.get("temperature_in_range") or ""),
                "observed": yes.get(c.get("observed") or ""), "note": c.get("note") or "",
                "analytes": analytes}


class PanelCorrectForm(PanelForm):
    reason = forms.CharField(label=gettext_lazy("Why is it corrected?"), max_length=500)

    @staticmethod
    def initial_from(panel: UrinePanel) -> dict:
        """The form's fields from the panel as it stands (the correction starts from it)."""
        data = urine.panel_data(panel)
        local = panel.collected_at.astimezone(medications.site_time_zone(panel.patient))
        yes = {True: "yes", False: "no", None: ""}
        initial = {"collected_date": local.date(), "collected_time": local.time(),
                   "panels": data["panels"], "method": data["method"],
                   "method_detail": data["method_detail"],
                   "creatinine_mg_dl": _plain(data["creatinine_mg_dl"]),
                   "ph": _plain(data["ph"]), "specific_gravity": _plain(data["specific_gravity"]),
                   "temperature_in_range": yes[data["temperature_in_range"]],
                   "observed": yes[data["observed"]], "note": data["note"]}
        for code, entry in data["analytes"].items():
            if "value" in entry:
                initial.update({f"v_{code}": _plain(entry["value"]),
                                f"c_{code}": _plain(entry["cutoff"]), f"u_{code}": entry["unit"]})
            else:
                initial[f"r_{code}"] = entry["result"]
        return initial


def _plain(value) -> str:
    return "" if value is None else format(value.normalize(), "f")


class PanelWithdrawForm(TokenForm):
    reason = forms.CharField(label=gettext_lazy("Why is it withdrawn?"), max_length=500,
                             widget=forms.Textarea(attrs={"rows": 2}))


def _put_errors(form, exc: ValidationError) -> None:
    for key, messages in exc.message_dict.items():
        field = None
        if key.startswith("analytes."):
            field = f"r_{key.split('.', 1)[1]}"
        elif key == "collected_at":
            field = "collected_date"
        elif key in form.fields:
            field = key
        for m in messages:
            form.add_error(field if field in form.fields else None, m)


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def panel_new(request, patient_id):
    patient = access.patient_for(request.user, patient_id)
    form = PanelForm(request.POST or None, patient=patient)
    if request.method == "POST" and form.is_valid():
        try:
            panel = urine.record_panel(request.user, patient, form.panel_data(),
                                       token=submission_key(request, form))
            return redirect(reverse("urine_panel", args=[patient.pk, panel.pk]))
        except ValidationError as exc:
            _put_errors(form, exc)
    return render(request, "web/urine_panel_form.html", {
        "patient": patient, "form": form, "catalogue": drug_panels.PANELS})


def _panel(patient, panel_id) -> UrinePanel:
    try:
        return urine.panel_for(patient, panel_id)
    except ValidationError:
        raise Http404("No such urine panel in this patient's record") from None


def _versions(panel: UrinePanel) -> list[UrinePanel]:
    """Every version of the panel's record, oldest first."""
    first = panel
    while first.replaces_id:
        first = first.replaces
    out = [first]
    while (nxt := UrinePanel.objects.filter(replaces=out[-1]).first()) is not None:
        out.append(nxt)
    return out


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET"])
def panel_detail(request, patient_id, panel_id):
    patient = access.patient_for(request.user, patient_id)
    panel = _panel(patient, panel_id)
    services.record_view(request.user, patient, "urine-panel", panel)
    versions = _versions(panel)
    current = versions[-1] if not versions[-1].retracted else None
    if panel.superseded or panel.retracted:  # as it was: no reading against today's record
        reading, expected = None, {}
        analytes = [{"reading": None, "name": klabs.get_lab(r.lab).name, "row": r,
                     "because": ""} for r in panel.analytes.order_by("pk")]
    else:
        reading, expected = urine.read(panel)
        rows = {r.lab: r for r in panel.analytes.current()}
        analytes = [{"reading": a, "name": klabs.get_lab(a.lab).name, "row": rows.get(a.lab),
                     "because": expected.get(a.lab, "")} for a in reading.analytes]
    return render(request, "web/urine_panel.html", {
        "patient": patient, "panel": panel, "reading": reading, "analytes": analytes,
        "versions": versions if len(versions) > 1 or panel.retracted else [],
        "current": current,
        "panel_names": [drug_panels.get_panel(p).name for p in panel.panels]})


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def panel_correct(request, patient_id, panel_id):
    """Correct a panel as a whole: the form holds the panel as it stands; saving stores its
    next version (the old one is kept) and reads it again."""
    patient = access.patient_for(request.user, patient_id)
    panel = _panel(patient, panel_id)
    if panel.superseded or panel.retracted:
        return redirect(reverse("urine_panel", args=[patient.pk, panel.pk]))
    form = PanelCorrectForm(request.POST or None, patient=patient,
                            initial=PanelCorrectForm.initial_from(panel))
    if request.method == "POST" and form.is_valid():
        try:
            new = urine.correct_panel(request.user, patient, panel, form.panel_data(),
                                      reason=form.cleaned_data["reason"],
                                      token=submission_key(request, form))
            return redirect(reverse("urine_panel", args=[patient.pk, new.pk]))
        except ValidationError as exc:
            _put_errors(form, exc)
    services.record_view(request.user, patient, "correct:urine-panel", panel)
    return render(request, "web/urine_panel_form.html", {
        "patient": patient, "form": form, "catalogue": drug_panels.PANELS, "panel": panel})


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def panel_withdraw(request, patient_id, panel_id):
    """Withdraw a panel entered in error (kept, marked withdrawn, no longer read)."""
    patient = access.patient_for(request.user, patient_id)
    panel = _panel(patient, panel_id)
    if panel.superseded or panel.retracted:
        return redirect(reverse("urine_panel", args=[patient.pk, panel.pk]))
    form = PanelWithdrawForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            urine.withdraw_panel(request.user, patient, panel, reason=form.cleaned_data["reason"],
                                 token=submission_key(request, form))
            return redirect(reverse("urine_panel", args=[patient.pk, panel.pk]))
        except ValidationError as exc:
            _put_errors(form, exc)
    return render(request, "web/urine_panel_withdraw.html", {
        "patient": patient, "form": form, "panel": panel,
        "panel_names": [drug_panels.get_panel(p).name for p in panel.panels]})
