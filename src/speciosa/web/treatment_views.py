"""Treatment episode pages (issue 19): start, change, stop and record an injection of an
episode of buprenorphine, methadone or naltrexone, through :mod:`speciosa.clinic.treatment`.
The episodes are listed on the patient page (:func:`treatment_context`)."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from speciosa.clinic import access, rule_settings, selectors, services, treatment
from speciosa.clinic.models import EpisodeStatus, Role, TreatmentEpisode

from . import medication_forms as mforms
from .forms import submission_key

_role_required = access.role_required


def _episode(patient, episode_id) -> TreatmentEpisode:
    try:
        return treatment.episode_for(patient, episode_id)
    except ValidationError:
        raise Http404("No such treatment episode in this patient's record") from None


def _back(patient) -> str:
    return reverse("patient_detail", args=[patient.pk]) + "#treatment"


def _number(value) -> str:
    return "" if value is None else format(value.normalize(), "f")


def describe_episode(e: TreatmentEpisode) -> tuple[str, str]:
    """An episode as a title and a detail line (the history page)."""
    return selectors.describe_episode(e)


#: How each formulation is taken, in plain words (the patient's "My medicines").
_HOW_TAKEN = {
    "sublingual": "a tablet that melts under your tongue",
    "buccal-film": "a film that melts inside your cheek or under your tongue",
    "xr-injection": "a slow-release injection given by your care team",
    "oral-liquid": "a liquid you drink",
    "oral-tablet": "a tablet you swallow",
}


def in_plain_words(e: TreatmentEpisode) -> dict:
    """A current treatment episode as the patient reads it on their phone: what, how much,
    how it is taken, since when, where from (methadone), the last injection."""
    name = e.get_drug_display().capitalize()
    amount = _number(e.dose_mg)
    if amount:
        dose = f"{amount} mg each injection" if e.is_injection else f"{amount} mg a day"
    else:
        dose = ""
    lines = [f"Taken as {_HOW_TAKEN.get(e.formulation, e.get_formulation_display())}."]
    if e.dispensing_clinic:
        lines.append(f"You get it from {e.dispensing_clinic}.")
    injections = sorted(e.injection_dates or [])
    last = dt.date.fromisoformat(injections[-1]) if injections else None
    return {"name": name, "dose": dose, "lines": lines, "since": e.start_at or e.start,
            "last_injection": last, "drug": e.drug}


def my_treatment(patient) -> list[dict]:
    """The patient's ongoing treatment episodes, in plain words (newest first)."""
    return [in_plain_words(e) for e in treatment.current_episodes(patient)
            if e.status == EpisodeStatus.ACTIVE]


def treatment_context(patient) -> dict:
    """The patient page's treatment section: ongoing and past episodes."""
    rows = list(treatment.current_episodes(patient))
    for e in rows:
        e.dose_text = _number(e.dose_mg)
    return {"ongoing": [e for e in rows if e.status == EpisodeStatus.ACTIVE],
            "past": [e for e in rows if e.status != EpisodeStatus.ACTIVE],
            "decision": _decision_to_start(patient, rows)}


def _decision_to_start(patient, rows):
    """The latest shared decision, when it chose buprenorphine, methadone or naltrexone and
    no episode carries it out yet (the section offers to start one from it)."""
    from speciosa.education.models import Decision

    latest = Decision.objects.filter(patient=patient).order_by("-decided_at", "-pk").first()
    if latest is None or latest.choice not in treatment.DECISION_DRUGS:
        return None
    if any(e.decision_id == latest.pk for e in rows) or TreatmentEpisode.objects.filter(
            patient=patient, decision=latest).exists():
        return None
    return latest


def _from_decision(patient, raw) -> dict:
    """The episode form's first values from a decision of this patient (else none)."""
    from speciosa.education.models import Decision

    try:
        decision = Decision.objects.get(pk=int(raw), patient=patient)
    except (Decision.DoesNotExist, TypeError, ValueError):
        return {}
    drug = treatment.DECISION_DRUGS.get(decision.choice)
    if drug is None:
        return {}
    initial = {"drug": drug, "decision": decision.pk}
    if decision.choice == "xr-naltrexone":
        initial["formulation"] = "xr-injection"
    return initial


def _limit() -> str:
    value = rule_settings.in_force()["methadone_confirm_above_mg"]
    return f"{value:g}"


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def episode_new(request, patient_id):
    patient = access.patient_for(request.user, patient_id)
    initial = {"drug": request.GET.get("drug", ""), **_from_decision(patient,
                                                                     request.GET.get("decision"))}
    form = mforms.EpisodeForm(request.POST or None, patient=patient, initial=initial)
    needs_confirmation = False
    if request.method == "POST" and form.is_valid():
        try:
            treatment.record_episode(request.user, patient, form.episode_data(),
                                     token=submission_key(request, form))
            return redirect(_back(patient))
        except services.NeedsConfirmation as exc:
            needs_confirmation = True
            mforms.put_errors(form, exc, start="start_date", injection_dates="injection_date")
        except ValidationError as exc:
            mforms.put_errors(form, exc, start="start_date", injection_dates="injection_date")
    decision = None
    if initial.get("decision") or (form.is_bound and form.data.get("decision")):
        from speciosa.education.models import Decision

        pk = form.data.get("decision") if form.is_bound else initial.get("decision")
        decision = Decision.objects.filter(pk=pk if str(pk).isdigit() else 0,
                                           patient=patient).first()
    return render(request, "web/episode_form.html", {
        "patient": patient, "form": form, "needs_confirmation": needs_confirmation,
        "limit": _limit(), "decision": decision})


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def episode_change(request, patient_id, episode_id):
    patient = access.patient_for(request.user, patient_id)
    record = _episode(patient, episode_id)
    form = mforms.EpisodeChangeForm(request.POST or None, initial={
        "formulation": record.formulation, "dose_mg": record.dose_mg,
        "dispensing_clinic": record.dispensing_clinic})
    needs_confirmation = False
    if request.method == "POST" and form.is_valid():
        c = form.cleaned_data
        try:
            treatment.change_episode(
                request.user, patient, record, form.changes(), reason=c["reason"],
                at=mforms.moment(c["at_date"], c.get("at_time"), patient),
                token=submission_key(request, form))
            return redirect(_back(patient))
        except services.NeedsConfirmation as exc:
            needs_confirmation = True
            mforms.put_errors(form, exc, start="at_date")
        except ValidationError as exc:
            mforms.put_errors(form, exc, start="at_date")
    return render(request, "web/episode_change.html", {
        "patient": patient, "form": form, "record": record,
        "needs_confirmation": needs_confirmation, "limit": _limit()})


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def episode_stop(request, patient_id, episode_id):
    patient = access.patient_for(request.user, patient_id)
    record = _episode(patient, episode_id)
    form = mforms.EpisodeStopForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        c = form.cleaned_data
        try:
            treatment.stop_episode(request.user, patient, record, reason=c["stop_reason"],
                                   at=mforms.moment(c["at_date"], c.get("at_time"), patient),
                                   token=submission_key(request, form))
            return redirect(_back(patient))
        except ValidationError as exc:
            mforms.put_errors(form, exc, end="at_date")
    return render(request, "web/episode_stop.html", {"patient": patient, "form": form,
                                                     "record": record})


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def episode_injection(request, patient_id, episode_id):
    patient = access.patient_for(request.user, patient_id)
    record = _episode(patient, episode_id)
    form = mforms.InjectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            treatment.add_injection(request.user, patient, record, form.cleaned_data["day"],
                                    token=submission_key(request, form))
            return redirect(_back(patient))
        except ValidationError as exc:
            mforms.put_errors(form, exc, injection_dates="day")
    return render(request, "web/episode_injection.html", {"patient": patient, "form": form,
                                                          "record": record})


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def episode_correct(request, patient_id, episode_id):
    patient = access.patient_for(request.user, patient_id)
    record = _episode(patient, episode_id)
    if record.superseded or record.retracted:
        return redirect(reverse("record_history", args=[patient.pk, "episode", record.pk]))
    form = mforms.EpisodeCorrectForm(request.POST or None, patient=patient,
                                     initial=mforms.EpisodeCorrectForm.initial_from(record))
    needs_confirmation = False
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if data.get("retract"):
                services.retract_record(request.user, record, data["reason"])
            else:
                services.correct_record(request.user, record, form.episode_data(),
                                        data["reason"], token=submission_key(request, form))
            return redirect(_back(patient))
        except services.NeedsConfirmation as exc:
            needs_confirmation = True
            mforms.put_errors(form, exc, start="start_date", end="end_date")
        except ValidationError as exc:
            mforms.put_errors(form, exc, start="start_date", end="end_date")
    services.record_view(request.user, patient, "correct:episode", record)
    return render(request, "web/episode_correct.html", {
        "patient": patient, "form": form, "record": record,
        "needs_confirmation": needs_confirmation or record.confirmed_dose, "limit": _limit()})
