"""Medication pages (issue 19): the clinician's list on the patient page, add, change dose,
stop, correct, confirm and review; the patient's "My medicines" on their phone.

Every write goes through :mod:`speciosa.clinic.medications` (or
:func:`speciosa.clinic.services.correct_record`), with the form's one-time token: a retried
post stores one record. A medication id of another patient is a 404, like an unknown one.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from speciosa.clinic import access, medications, services, writes
from speciosa.clinic.models import Medication, MedicationStatus, Role, Source

from . import medication_forms as mforms
from .forms import submission_key

_role_required = access.role_required


def _medication(patient, medication_id) -> Medication:
    try:
        return medications.medication_for(patient, medication_id)
    except ValidationError:
        raise Http404("No such medication in this patient's record") from None


def _back(patient) -> str:
    return reverse("patient_detail", args=[patient.pk]) + "#medications"


def _number(value) -> str:
    """A stored amount as written: ``100``, ``0.5`` (never ``1E+2`` or ``0.5000``)."""
    return "" if value is None else format(value.normalize(), "f")


def _labelled(rows) -> list[Medication]:
    """The rows with their form and route as people read them (``sublingual tablet``)."""
    rows = list(rows)
    for m in rows:
        m.strength_text = _number(m.strength)
        m.dose_text = _number(m.dose_amount)
        m.form_label = medications.FORMS.get(m.form, m.form)
        m.route_label = medications.ROUTES.get(m.route, m.route)
    return rows


def medication_context(patient) -> dict:
    """The patient page's medication section: current and stopped entries, the ones waiting
    for confirmation, and the latest review."""
    rows = _labelled(medications.current_medications(patient)
                     .exclude(status=MedicationStatus.NOT_TAKEN))
    current = [m for m in rows if m.status in (MedicationStatus.ACTIVE, MedicationStatus.UNKNOWN,
                                               MedicationStatus.ON_HOLD,
                                               MedicationStatus.INTENDED)]
    stopped = [m for m in rows if m not in current]
    return {"current": current, "stopped": stopped,
            "unconfirmed": [m for m in rows if m.needs_confirmation],
            "review": medications.latest_review(patient), "confirm_form": mforms.ConfirmForm()}


def _drug_names():
    return medications.drug_names()


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def medication_new(request, patient_id):
    patient = access.patient_for(request.user, patient_id)
    form = mforms.MedicationForm(request.POST or None, patient=patient)
    if request.method == "POST" and form.is_valid():
        try:
            medications.record_medication(request.user, patient, form.medication_data(),
                                          token=submission_key(request, form))
            return redirect(_back(patient))
        except ValidationError as exc:
            mforms.put_errors(form, exc)
    return render(request, "web/medication_form.html", {
        "patient": patient, "form": form, "drug_names": _drug_names(),
        "title": gettext("Add a medication"), "submit": gettext("Save medication")})


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def medication_correct(request, patient_id, medication_id):
    patient = access.patient_for(request.user, patient_id)
    record = _medication(patient, medication_id)
    if record.superseded or record.retracted:
        return redirect(reverse("record_history", args=[patient.pk, "medication", record.pk]))
    form = mforms.MedicationCorrectForm(request.POST or None, patient=patient,
                                        initial=mforms.MedicationForm.initial_from(record))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        key = submission_key(request, form)
        try:
            if data.get("retract"):
                services.retract_record(request.user, record, data["reason"])
            else:
                new = services.correct_record(request.user, record, form.changes_for(record),
                                              data["reason"], token=key)
                if data.get("confirm") and new.needs_confirmation:
                    medications.confirm_medication(
                        request.user, patient, new,
                        token=writes.SubmissionKey("web", f"{key.value}:confirm", key.endpoint))
            return redirect(_back(patient))
        except ValidationError as exc:
            mforms.put_errors(form, exc)
    services.record_view(request.user, patient, "correct:medication", record)
    return render(request, "web/medication_form.html", {
        "patient": patient, "form": form, "record": record, "drug_names": _drug_names(),
        "title": gettext("Correct %(name)s") % {"name": record.name},
        "submit": gettext("Save correction"), "correcting": True})


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def medication_change(request, patient_id, medication_id):
    patient = access.patient_for(request.user, patient_id)
    record = _medication(patient, medication_id)
    initial = {k: getattr(record, k) for k in mforms.MedicationChangeForm.CHANGEABLE}
    form = mforms.MedicationChangeForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        c = form.cleaned_data
        try:
            medications.change_medication(
                request.user, patient, record, form.changes(), reason=c["reason"],
                at=mforms.moment(c["at_date"], c.get("at_time"), patient),
                token=submission_key(request, form))
            return redirect(_back(patient))
        except ValidationError as exc:
            mforms.put_errors(form, exc, start="at_date")
    return render(request, "web/medication_change.html", {
        "patient": patient, "form": form, "record": record})


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def medication_stop(request, patient_id, medication_id):
    patient = access.patient_for(request.user, patient_id)
    record = _medication(patient, medication_id)
    form = mforms.MedicationStopForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        c = form.cleaned_data
        try:
            medications.stop_medication(
                request.user, patient, record, reason=c["stop_reason"],
                at=mforms.moment(c["at_date"], c.get("at_time"), patient),
                status=c.get("status") or MedicationStatus.STOPPED,
                token=submission_key(request, form))
            return redirect(_back(patient))
        except ValidationError as exc:
            mforms.put_errors(form, exc, end="at_date")
    return render(request, "web/medication_stop.html", {
        "patient": patient, "form": form, "record": record})


@_role_required(Role.CLINICIAN)
@require_http_methods(["POST"])
def medication_confirm(request, patient_id, medication_id):
    patient = access.patient_for(request.user, patient_id)
    record = _medication(patient, medication_id)
    form = mforms.ConfirmForm(request.POST)
    errors = []
    if form.is_valid():
        try:
            medications.confirm_medication(request.user, patient, record,
                                           token=submission_key(request, form))
            return redirect(_back(patient))
        except ValidationError as exc:
            errors = [m for ms in exc.message_dict.values() for m in ms]
    else:
        errors = list(form.non_field_errors())
    return render(request, "web/medication_confirm.html", {
        "patient": patient, "record": record, "errors": errors,
        "confirm_form": mforms.ConfirmForm()}, status=400)


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def medication_review(request, patient_id):
    patient = access.patient_for(request.user, patient_id)
    form = mforms.MedicationReviewForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            medications.record_medication_review(request.user, patient,
                                                 note=form.cleaned_data.get("note") or "",
                                                 token=submission_key(request, form))
            return redirect(_back(patient))
        except ValidationError as exc:
            mforms.put_errors(form, exc)
    services.record_view(request.user, patient, "medication-review")
    return render(request, "web/medication_review.html", {
        "patient": patient, "form": form, **medication_context(patient)})


# --------------------------------------------------------------------------- patient


@_role_required(Role.PATIENT)
@require_http_methods(["GET", "POST"])
def my_medicines(request):
    patient = access.own_patient(request.user)
    form = mforms.MyMedicineForm(request.POST or None, patient=patient)
    if request.method == "POST" and form.is_valid():
        try:
            medications.record_medication(request.user, patient, form.medication_data(),
                                          token=submission_key(request, form))
            return redirect(reverse("my_medicines") + "?saved=1")
        except ValidationError as exc:
            mforms.put_errors(form, exc)
    rows = _labelled(medications.current_medications(patient)
                     .exclude(status=MedicationStatus.NOT_TAKEN))
    taking = [m for m in rows if m.status not in (MedicationStatus.STOPPED,
                                                  MedicationStatus.COMPLETED)]
    from .treatment_views import my_treatment

    return render(request, "web/my_medicines.html", {
        "patient": patient, "form": form, "taking": taking, "stop_form": mforms.MyStopForm(),
        "treatment": my_treatment(patient),
        "stopped": [m for m in rows if m not in taking], "drug_names": _drug_names(),
        "patient_source": Source.PATIENT, "open_form": request.method == "POST"})


@_role_required(Role.PATIENT)
@require_http_methods(["GET", "POST"])
def my_medicine_stop(request, medication_id):
    """The patient stops a medicine they added (the clinic's prescriptions are the clinic's
    to stop: the page says to talk to the prescriber)."""
    patient = access.own_patient(request.user)
    record = _medication(patient, medication_id)
    if record.source != Source.PATIENT or not record.is_current_status:
        raise Http404("Only a medicine you added and still take can be stopped here")
    form = mforms.MyStopForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            medications.stop_medication(request.user, patient, record,
                                        reason=form.cleaned_data["stop_reason"],
                                        at=form.cleaned_data["at_date"],
                                        token=submission_key(request, form))
            return redirect(reverse("my_medicines") + "?stopped=1")
        except ValidationError as exc:
            mforms.put_errors(form, exc, end="at_date")
    return render(request, "web/my_medicine_stop.html", {"patient": patient, "form": form,
                                                         "record": record})
