"""Taper plan pages (issue 19): a clinician enters, corrects, replaces and stops a patient's
taper plan through :mod:`speciosa.clinic.taper` and sees the predicted exposure under it
(:mod:`speciosa.reports.taper`) and the plan against the diary, day by day; the patient sees
"Your plan" on their phone. The schedule is the clinician's: the new plan's form starts
without any amount."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from speciosa.clinic import access, integrity, selectors, services, taper, writes
from speciosa.clinic.models import Role, TaperPlan, TaperStatus

from . import taper_forms as tforms
from .forms import submission_key

_role_required = access.role_required


def _plan(patient, plan_id) -> TaperPlan:
    try:
        return taper.plan_for(patient, plan_id)
    except ValidationError:
        raise Http404("No such taper plan in this patient's record") from None


def taper_context(patient) -> dict:
    """The patient page's taper plan section: the active plan and the earlier ones."""
    plans = list(taper.current_plans(patient))
    active = next((p for p in plans if p.status == TaperStatus.ACTIVE), None)
    if active is not None:
        active.step_text = " · ".join(
            f"{st.start:%-d %b}–{st.end:%-d %b}: {taper.number(st.amount)} × {st.doses_per_day} "
            f"= {taper.number(st.per_day)} {taper.unit_words(st.unit)} a day"
            for st in taper.steps_of(active))
    return {"active": active, "past": [p for p in plans if p is not active], "all": plans}


def _rows(steps) -> tuple[list[dict], list[int]]:
    """The filled-in step rows and their places in the formset."""
    rows, index = [], []
    for i, f in enumerate(steps.forms):
        if f.is_blank():
            continue
        rows.append(f.step())
        index.append(i)
    return rows, index


def _errors(exc: ValidationError, form, steps, index: list[int]) -> None:
    """The service's messages beside their fields: ``("steps", i, field)`` on the i-th row
    sent, anything else on the plan's form (or above it)."""
    for location, messages in writes.error_locations(exc):
        if (location[:1] == ("steps",) and len(location) == 3 and isinstance(location[1], int)
                and location[1] < len(index)):
            target = steps.forms[index[location[1]]]
            name = location[2] if location[2] in target.fields else None
        else:
            target = form
            name = writes.location_key(location)
            name = name if name in form.fields and name != "token" else None
        for message in messages:
            target.add_error(name, message)


def _initial_steps(plan: TaperPlan) -> list[dict]:
    return [{k: (s.get(k) if s.get(k) is not None else "") for k in taper.STEP_FIELDS}
            for s in plan.steps or []]


def _initial_plan(plan: TaperPlan) -> dict:
    return {"kind": plan.kind, "reason": plan.reason, "episode": plan.episode_id or "",
            "decision": plan.decision_id or ""}


def _edit(request, patient, *, plan: TaperPlan | None, mode: str):
    """The plan form: a new plan (``new``), a correction (``correct``) or a replacement
    (``replace``) of ``plan``."""
    posted = request.POST if request.method == "POST" else None
    add_row = posted is not None and "add_step" in posted
    label = {"correct": gettext("Reason for the correction"),
             "replace": gettext("Why the plan changes")}.get(mode, "")
    initial = _initial_plan(plan) if plan is not None and mode == "correct" else {
        "episode": request.GET.get("episode", ""), "decision": request.GET.get("decision", "")}
    if plan is not None and mode == "replace":
        initial = {**_initial_plan(plan), "reason": ""}
    form = tforms.PlanForm(posted, patient=patient, reason_label=label, initial=initial)
    steps = tforms.step_formset(posted, add_row=add_row,
                                initial=_initial_steps(plan) if plan is not None else None)
    if posted is not None and not add_row:
        form_ok, steps_ok = form.is_valid(), steps.is_valid()
        if form_ok and steps_ok:
            rows, index = _rows(steps)
            try:
                key = submission_key(request, form, extra=rows)
                data = form.plan_data(rows)
                if mode == "new":
                    saved = taper.record_plan(request.user, patient, data, token=key)
                elif mode == "correct":
                    saved = taper.correct_plan(request.user, patient, plan, data,
                                               reason=form.cleaned_data["change_reason"],
                                               token=key)
                else:
                    saved = taper.replace_plan(request.user, patient, plan, data,
                                               reason=form.cleaned_data["change_reason"],
                                               token=key)
                return redirect(reverse("taper_plan", args=[patient.pk, saved.pk]) + "?saved=1")
            except ValidationError as exc:
                _errors(exc, form, steps, index)
    return render(request, "web/taper_form.html", {
        "patient": patient, "form": form, "steps": steps, "plan": plan, "mode": mode,
        "max_steps": taper.MAX_STEPS, "max_doses": taper.MAX_DOSES_PER_DAY})


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def plan_new(request, patient_id):
    patient = access.patient_for(request.user, patient_id)
    return _edit(request, patient, plan=None, mode="new")


def _current_or_redirect(request, patient, plan, name):
    if plan.superseded or plan.retracted:
        current = selectors.record_history(plan)[0]
        return redirect(reverse(name, args=[patient.pk, current.pk]))
    return None


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def plan_correct(request, patient_id, plan_id):
    patient = access.patient_for(request.user, patient_id)
    plan = _plan(patient, plan_id)
    if request.method == "GET":
        moved = _current_or_redirect(request, patient, plan, "taper_plan_correct")
        if moved:
            return moved
    services.record_view(request.user, patient, "correct:taper-plan", plan)
    return _edit(request, patient, plan=plan, mode="correct")


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def plan_replace(request, patient_id, plan_id):
    patient = access.patient_for(request.user, patient_id)
    plan = _plan(patient, plan_id)
    if request.method == "GET":
        moved = _current_or_redirect(request, patient, plan, "taper_plan_replace")
        if moved:
            return moved
    services.record_view(request.user, patient, "replace:taper-plan", plan)
    return _edit(request, patient, plan=plan, mode="replace")


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def plan_stop(request, patient_id, plan_id):
    patient = access.patient_for(request.user, patient_id)
    plan = _plan(patient, plan_id)
    form = tforms.StopForm(request.POST or None,
                           initial={"stopped_on": integrity.site_today(patient.site)})
    if request.method == "POST" and form.is_valid():
        c = form.cleaned_data
        try:
            taper.stop_plan(request.user, patient, plan, reason=c["stop_reason"],
                            on=c["stopped_on"], token=submission_key(request, form))
            return redirect(reverse("taper_plan", args=[patient.pk, plan.pk]))
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                for m in messages:
                    form.add_error(key if key in form.fields and key != "token" else None, m)
    return render(request, "web/taper_stop.html", {"patient": patient, "plan": plan,
                                                   "form": form})


def _describe(plan: TaperPlan) -> list[dict]:
    out = []
    for s in taper.steps_of(plan):
        out.append({"step": s, "amount": taper.number(s.amount), "unit": taper.unit_words(s.unit),
                    "per_day": taper.number(s.per_day),
                    "gpc": taper.number(s.grams_per_capsule) if s.grams_per_capsule else "",
                    "pct": taper.number(s.mitragynine_percent) if s.mitragynine_percent else ""})
    return out


def _comparison(plan: TaperPlan) -> list[dict]:
    rows = []
    for r in reversed(taper.planned_vs_taken(plan)):
        rows.append({"r": r, "planned": taper.number(r.planned),
                     "taken": "—" if not r.recorded else taper.number(r.taken)
                     if r.taken is not None else "not in this unit",
                     "difference": "" if r.difference is None else
                     ("+" if r.difference > 0 else "") + taper.number(r.difference),
                     "planned_mg": "—" if r.planned_mg is None else f"{r.planned_mg:.0f}",
                     "taken_mg": "—" if r.taken_mg is None else f"{r.taken_mg:.0f}",
                     "unit": taper.unit_words(r.unit)})
    return rows


@_role_required(Role.CLINICIAN)
def plan_detail(request, patient_id, plan_id):
    from speciosa.knowledge import evidence
    from speciosa.reports import taper as rtaper

    patient = access.patient_for(request.user, patient_id)
    plan = _plan(patient, plan_id)
    services.record_view(request.user, patient, "taper-plan", plan)
    pv = rtaper.preview(plan)
    versions = selectors.record_history(plan)
    current = versions[0]
    return render(request, "web/taper_plan.html", {
        "patient": patient, "plan": plan, "current": current, "steps": _describe(plan),
        "versions": versions, "preview": pv, "summary": rtaper.summary_rows(pv),
        "label": rtaper.LABEL, "citations": evidence.citations_of(pv.citations),
        "comparison": _comparison(plan), "follows": plan.follows,
        "followed_by": list(TaperPlan.objects.filter(follows__in=versions, patient=patient))})


# --------------------------------------------------------------------------- the patient

def _my_page(request, patient, plan):
    plans = list(taper.current_plans(patient))
    rows = _comparison(plan) if plan is not None else []
    today = rows[0] if rows and rows[0]["r"].day == integrity.site_today(patient.site) else None
    return render(request, "web/my_plan.html", {
        "patient": patient, "plan": plan, "steps": _describe(plan) if plan else [],
        "rows": rows[:60], "today": today, "others": [p for p in plans if p != plan]})


@_role_required(Role.PATIENT)
def my_plan(request):
    """The patient's own plan ("Your plan"): the active one, else the latest."""
    patient = access.own_patient(request.user)
    plan = taper.active_plan(patient) or taper.current_plans(patient).first()
    return _my_page(request, patient, plan)


@_role_required(Role.PATIENT)
def my_plan_version(request, plan_id):
    """One of the patient's own plans (an earlier one); anyone else's is a 404."""
    patient = access.own_patient(request.user)
    plan = _plan(patient, plan_id)
    return _my_page(request, patient, plan)
