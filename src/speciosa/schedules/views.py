"""Schedule pages: the clinician sets a patient's plan; the patient sees what is due and
answers their questionnaires, one question a screen.

One question a screen (not one page): each answer is a POST that the server keeps in the
patient's draft at once, so a patient who is interrupted loses nothing and goes on later on
any device; at 360 px a screen holds the question and its four to six answers as large
buttons with no scrolling, and the progress ("Question 3 of 9") is exact. The last screen
lists every answer (each can be changed) and sends them; the form's one-time token makes a
double tap store one assessment.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.views.decorators.http import require_http_methods

from speciosa.clinic import access, crisis, writes
from speciosa.clinic import services as cservices
from speciosa.clinic.models import Role
from speciosa.knowledge import instruments as kinstruments
from speciosa.web import views as wviews
from speciosa.web.forms import TokenForm, apply_service_errors, submission_key

from . import pages, services

_role_required = access.role_required


# --------------------------------------------------------------------------- clinician

class TemplateForm(TokenForm):
    template = forms.ChoiceField(label="Start from")
    start = forms.DateField(label="Starting on", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, patient, **kwargs):
        super().__init__(*args, **kwargs)
        self.templates = services.templates_for(patient.site)
        self.fields["template"].choices = [(str(t.pk), t.name) for t in self.templates]
        self.fields["start"].initial = timezone.localdate(timezone=services.time_zone(patient))


class LinesForm(TokenForm):
    """The plan's lines as rows ``instrument-N``, ``every_days-N``, ``start-N``, ``end-N``,
    ``remove-N`` (one blank row more to add a line), a name and a reason."""

    name = forms.CharField(label="Plan name", max_length=120, required=False)
    reason = forms.CharField(label="Why it changes (kept in the history)", max_length=500,
                             required=False)

    def __init__(self, *args, lines=(), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "—")] + list(services.plan_instruments().items())
        count = len(lines) + 1
        if self.is_bound:
            try:
                count = max(count, min(int(self.data.get("rows", count)), 31))
            except ValueError:
                pass
        self.count = count
        for i in range(count):
            line = lines[i] if i < len(lines) else None
            self.fields[f"instrument-{i}"] = forms.ChoiceField(
                label="Complete", choices=choices, required=False,
                initial=line["instrument"] if line else "")
            self.fields[f"every_days-{i}"] = forms.CharField(
                label="every (days)", required=False, max_length=4,
                initial=line["every_days"] if line else "",
                widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 4}))
            self.fields[f"start-{i}"] = forms.CharField(
                label="from", required=False, initial=line["start"] if line else "",
                widget=forms.DateInput(attrs={"type": "date"}))
            self.fields[f"end-{i}"] = forms.CharField(
                label="until (optional)", required=False, initial=(line or {}).get("end") or "",
                widget=forms.DateInput(attrs={"type": "date"}))
            self.fields[f"remove-{i}"] = forms.BooleanField(label="remove", required=False)

    def rows(self):
        return [(self[f"instrument-{i}"], self[f"every_days-{i}"], self[f"start-{i}"], self[f"end-{i}"],
                 self[f"remove-{i}"]) for i in range(self.count)]

    def lines(self) -> tuple[list[dict], list[int]]:
        """The rows kept (not removed, not blank), and the form row of each."""
        c = self.cleaned_data
        out, where = [], []
        for i in range(self.count):
            values = [c.get(f"{f}-{i}") or "" for f in ("instrument", "every_days", "start", "end")]
            if c.get(f"remove-{i}") or not any(str(v).strip() for v in values):
                continue
            out.append({"instrument": values[0], "every_days": str(values[1]).strip(),
                        "start": str(values[2]).strip(), "end": str(values[3]).strip() or None})
            where.append(i)
        return out, where


def _put_line_errors(form: LinesForm, exc: ValidationError, where: list[int]) -> None:
    for location, messages in writes.error_locations(exc):
        field = None
        if len(location) == 3 and location[0] == "items" and isinstance(location[1], int):
            row = where[location[1]] if location[1] < len(where) else None
            if row is not None:
                field = f"{location[2]}-{row}"
        for m in messages:
            form.add_error(field if field in form.fields else None, m)


class StopForm(TokenForm):
    reason = forms.CharField(label="Why the plan stops", max_length=500)


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def plan(request, patient_id):
    """Set the patient's plan: from a template, or line by line; the history below."""
    patient = access.patient_for(request.user, patient_id)
    current = services.current_plan(patient)
    lines = list(current.items) if current else []
    action = request.POST.get("action") if request.method == "POST" else None
    tform = TemplateForm(request.POST if action == "template" else None, patient=patient)
    lform = LinesForm(request.POST if action == "lines" else None, lines=lines,
                      initial={"name": current.name if current else ""})
    if action == "template" and tform.is_valid():
        try:
            template = services.template_for(patient.site, tform.cleaned_data["template"])
            services.save_plan(request.user, patient,
                               services.lines_from_template(template, tform.cleaned_data["start"]),
                               template=template, reason=f"from the template {template.name}",
                               token=submission_key(request, tform))
            return redirect(reverse("patient_plan", args=[patient.pk]) + "?saved=1")
        except ValidationError as exc:
            apply_service_errors(tform, exc)
    elif action == "lines" and lform.is_valid():
        kept, where = lform.lines()
        try:
            services.save_plan(request.user, patient, kept, name=lform.cleaned_data.get("name") or "",
                               template=current.template if current else None,
                               reason=lform.cleaned_data.get("reason") or "",
                               token=submission_key(request, lform))
            return redirect(reverse("patient_plan", args=[patient.pk]) + "?saved=1")
        except ValidationError as exc:
            _put_line_errors(lform, exc, where)
    cservices.record_view(request.user, patient, "plan")
    return render(request, "schedules/plan.html", {
        "patient": patient, "tform": tform, "lform": lform, "stop_form": StopForm(),
        "history": services.plan_history(patient), "schedule": pages.plan_context(patient)})


@_role_required(Role.CLINICIAN)
@require_http_methods(["POST"])
def plan_stop(request, patient_id):
    patient = access.patient_for(request.user, patient_id)
    form = StopForm(request.POST)
    if form.is_valid():
        try:
            services.stop_plan(request.user, patient, form.cleaned_data["reason"],
                               token=submission_key(request, form))
            return redirect(reverse("patient_plan", args=[patient.pk]) + "?stopped=1")
        except ValidationError as exc:
            apply_service_errors(form, exc)
    current = services.current_plan(patient)
    return render(request, "schedules/plan.html", {
        "patient": patient, "tform": TemplateForm(patient=patient),
        "lform": LinesForm(lines=list(current.items) if current else []), "stop_form": form,
        "history": services.plan_history(patient), "schedule": pages.plan_context(patient)}, status=400)


# --------------------------------------------------------------------------- patient

class AnswerForm(forms.Form):
    value = forms.IntegerField()


class SubmitForm(TokenForm):
    pass


def _question_index(request, inst, answers) -> int:
    """The screen to show: ``?q=N`` (1-based), else the first required unanswered question,
    else the review (``len(items) + 1``)."""
    n = len(inst.items)
    raw = request.GET.get("q")
    if raw is not None:
        try:
            return max(1, min(int(raw), n + 1))
        except ValueError:
            pass
    for i, item in enumerate(inst.items, 1):
        if item.id not in answers and item.required:
            return i
    return n + 1


@_role_required(Role.PATIENT)
@require_http_methods(["GET", "POST"])
def questionnaire(request, instrument_id):
    patient = access.own_patient(request.user)
    inst = services.questionnaire(patient, instrument_id)
    draft = services.open_draft(patient, inst.id)
    answers = dict(draft.answers) if draft else {}
    error = None
    submit_form = SubmitForm()
    if request.method == "POST" and "answer" in request.POST:
        item_id = request.POST.get("item", "")
        try:
            services.save_answers(request.user, patient, inst.id, {item_id: request.POST.get("answer")})
            position = next((i for i, it in enumerate(inst.items, 1) if it.id == item_id), 0)
            nxt = position + 1 if request.POST.get("back") != "review" else len(inst.items) + 1
            return redirect(reverse("questionnaire", args=[inst.id]) + f"?q={nxt}")
        except ValidationError as exc:
            error = " ".join(sum(exc.message_dict.values(), []))
    elif request.method == "POST":
        submit_form = SubmitForm(request.POST)
        if submit_form.is_valid():
            try:
                assessment = services.submit(request.user, patient, inst.id,
                                             token=submission_key(request, submit_form))
                reasons = crisis.urgent_reasons(
                    phq9_items=assessment.items if assessment.instrument == "phq9" else None)
                if reasons:  # help at once on the next page, as after a diary (nothing in the URL)
                    request.session[wviews.URGENT_HELP_KEY] = reasons
                return redirect(reverse("me") + f"?completed={inst.id}")
            except ValidationError as exc:
                error = " ".join(sum(exc.message_dict.values(), []))
        else:
            error = " ".join(submit_form.non_field_errors())
    index = _question_index(request, inst, answers)
    n = len(inst.items)
    item = inst.items[index - 1] if index <= n else None
    missing = [it for it in inst.items if it.required and it.id not in answers]
    # help at once, before the questionnaire is sent (as the diary does for an entry not
    # saved yet): item 9 of a PHQ-9 answered above 0 in the draft
    unsent = crisis.urgent_reasons(phq9_items=answers if inst.id == "phq9" else None)
    # the questions in the patient's language when a translation is loaded (a validated one
    # for a validated instrument); otherwise the English short labels, with a note
    shown = kinstruments.localized(inst, get_language())
    words = shown.instrument
    return render(request, "schedules/questionnaire.html", {
        "patient": patient, "inst": words, "shown": shown, "item": words.items[index - 1] if item else None,
        "index": index, "count": n,
        "answered": sum(1 for it in inst.items if it.id in answers),
        "answers": answers, "error": error, "submit_form": submit_form,
        "review": [(i, it, answers.get(it.id), it.anchor(answers[it.id]) if it.id in answers else "")
                   for i, it in enumerate(words.items, 1)],
        "missing": missing, "short_labels": any(it.text is None for it in inst.items),
        "from_review": request.GET.get("from") == "review",
        "chosen": answers.get(item.id) if item else None, "numbers": crisis.numbers_for(patient.site, get_language()),
        "urgent_help": crisis.describe(unsent, get_language()) if unsent else None, "help_unsaved": True,
    }, status=400 if error else 200)
