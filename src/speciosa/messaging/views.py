"""Message pages: the patient's (``/me/messages/``), the clinician's inbox across patients
(``/messages/``), a conversation (``/me/messages/<id>/``, ``/messages/<id>/``) and a new
conversation with a patient (``/patients/<id>/messages/new/``)."""

from __future__ import annotations

from django import forms as dforms
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from speciosa.clinic import access, crisis
from speciosa.clinic.models import Role
from speciosa.web import forms

from . import services


# The services say what is wrong (empty, too long); the form fields only carry the text.
class NewThreadForm(forms.TokenForm):
    subject = dforms.CharField(label=gettext_lazy("Subject"), required=False)
    body = dforms.CharField(label=gettext_lazy("Message"), required=False,
                            widget=dforms.Textarea(attrs={"rows": 5}))


class ReplyForm(forms.TokenForm):
    body = dforms.CharField(label=gettext_lazy("Your reply"), required=False,
                            widget=dforms.Textarea(attrs={"rows": 4}))


def _numbers(patient):
    return crisis.numbers_for(patient.site)


@access.role_required(Role.PATIENT)
@require_http_methods(["GET", "POST"])
def my_messages(request):
    patient = access.own_patient(request.user)
    form = NewThreadForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            thread = services.start_thread(request.user, patient, form.cleaned_data["subject"],
                                           form.cleaned_data["body"],
                                           token=forms.submission_key(request, form))
            return redirect("my_thread", thread_id=thread.pk)
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
    return render(request, "messaging/inbox.html", {
        "patient": patient, "threads": services.inbox(request.user), "form": form,
        "numbers": _numbers(patient), "is_patient": True})


def _thread_page(request, thread, url_name):
    form = ReplyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.reply(request.user, thread, form.cleaned_data["body"],
                           token=forms.submission_key(request, form))
            return redirect(url_name, thread_id=thread.pk)
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
    services.mark_read(request.user, thread)
    receipts = services.receipts(thread)
    return render(request, "messaging/thread.html", {
        "thread": thread, "patient": thread.patient, "form": form,
        "messages_list": [(m, receipts.get(m.pk)) for m in
                          thread.messages.select_related("author").all()],
        "numbers": _numbers(thread.patient),
        "is_patient": access.has_role(request.user, Role.PATIENT)})


@access.role_required(Role.PATIENT)
@require_http_methods(["GET", "POST"])
def my_thread(request, thread_id):
    return _thread_page(request, services.thread_for(request.user, thread_id), "my_thread")


@access.role_required(Role.CLINICIAN)
def clinician_inbox(request):
    return render(request, "messaging/inbox.html", {
        "threads": services.inbox(request.user), "is_patient": False})


@access.role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def clinician_thread(request, thread_id):
    return _thread_page(request, services.thread_for(request.user, thread_id), "clinician_thread")


@access.role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def thread_new(request, patient_id):
    patient = access.patient_for(request.user, patient_id)
    form = NewThreadForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            thread = services.start_thread(request.user, patient, form.cleaned_data["subject"],
                                           form.cleaned_data["body"],
                                           token=forms.submission_key(request, form))
            return redirect("clinician_thread", thread_id=thread.pk)
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
    return render(request, "messaging/thread_new.html", {"patient": patient, "form": form})
