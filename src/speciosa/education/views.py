"""Views: education pages for patients and clinicians, reading assignments, the decision aid.

Access is decided in :mod:`speciosa.clinic.access` (another team's patient is a 404);
writes go through :mod:`.services`, whose refusal (:class:`speciosa.clinic.writes.AccessDenied`,
a Django ``PermissionDenied``) Django answers with 403."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.views.decorators.http import require_http_methods, require_POST

from speciosa.clinic import access
from speciosa.clinic import services as cservices
from speciosa.clinic.models import Role
from speciosa.knowledge import translations
from speciosa.web.forms import apply_service_errors, submission_key
from speciosa.web.offline_views import offline_copy

from . import content, services
from .forms import AssignForm, DecisionForm

_role_required = access.role_required

#: The languages the decision aid's content can be shown in, each named in itself.
CONTENT_LANGUAGES = (("en", "English"), ("es", "Español"), ("th", "ไทย"))



@_role_required(Role.PATIENT, Role.CLINICIAN)
@offline_copy
def learn_index(request):
    """The list of pages; for a patient, assigned pages first and read ones marked."""
    role = access.role_of(request.user)
    if role == Role.PATIENT:
        rows = services.reading_list(access.own_patient(request.user))
    else:
        rows = [{"page": p, "assigned": False, "read": False} for p in content.all_pages()]
    language = translation.get_language()
    for row in rows:  # each title and summary in the reader's language when translated
        row["page"], row["shown"] = content.translate_page(row["page"], language)
    return render(request, "education/learn_index.html", {"rows": rows, "is_patient": role == Role.PATIENT})


@_role_required(Role.PATIENT, Role.CLINICIAN)
@offline_copy
def learn_page(request, page_id):
    """One page. Opened by the patient, it records reading of an open assignment."""
    try:
        page = content.get_page(page_id)
    except KeyError:
        raise Http404("No such page") from None
    role = access.role_of(request.user)
    just_read = []
    if role == Role.PATIENT:
        just_read = services.mark_read(request.user, access.own_patient(request.user), page.id)
    # the page in the reader's language (or, asked for with ?original=1, the English it was
    # translated from); the note says when that is a draft or when there is no translation
    original = request.GET.get("original") == "1"
    shown_page, shown = content.translate_page(page, "en" if original else translation.get_language())
    return render(request, "education/learn_page.html", {
        "page": shown_page, "is_patient": role == Role.PATIENT, "just_read": bool(just_read),
        "shown": shown, "original": original, "reader_language": translation.get_language(),
    })


@_role_required(Role.CLINICIAN)
@require_POST
def assign(request, patient_id):
    """Assign a page to the patient (POST from the patient page)."""
    patient = access.patient_for(request.user, patient_id)
    form = AssignForm(request.POST)
    back = reverse("patient_detail", args=[patient.pk]) + "#education"
    if not form.is_valid():
        return render(request, "education/assign_error.html",
                      {"patient": patient, "form": form, "back": back}, status=400)
    services.assign_page(request.user, patient, form.cleaned_data["page_id"],
                         token=submission_key(request, form))
    return redirect(back)


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def decision_new(request, patient_id):
    """The option grid: options, evidence strength, monitoring, side effects; record the choice."""
    patient = access.patient_for(request.user, patient_id)
    form = DecisionForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.record_decision(request.user, patient, form.service_data(),
                                         token=submission_key(request, form))
                return redirect(reverse("decision_list", args=[patient.pk]) + "?saved=1")
            except ValidationError as exc:
                apply_service_errors(form, exc)
        status = 400
    # the options in the clinician's language, or (?language=, on the form's links) in the
    # patient's: the patient reads them too; the record stores ids and English labels
    language = request.GET.get("language")
    if language not in ("en", *translations.LANGUAGES):
        language = translation.get_language()
    options, priorities, shown = content.translate_options(
        content.all_options(), language, services.PRIORITIES)
    return render(request, "education/decision_form.html", {
        "patient": patient, "form": form, "options": options, "shown": shown,
        "content_languages": CONTENT_LANGUAGES,
        "priorities": priorities,
        "considered": set(form["options_considered"].value() or []),
        "chosen": form["choice"].value() or "",
        "chosen_priorities": set(form["priorities"].value() or []),
    }, status=status)


@_role_required(Role.CLINICIAN)
def decision_list(request, patient_id):
    """Every decision recorded for the patient, newest first."""
    patient = access.patient_for(request.user, patient_id)
    cservices.record_view(request.user, patient, "decisions")
    decisions = patient.decisions.select_related("clinician").all()
    return render(request, "education/decision_list.html", {"patient": patient, "decisions": decisions})
