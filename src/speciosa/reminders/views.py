"""Reminder pages: the patient's preferences, devices and delivery log (``/me/reminders/``),
the browser's push subscription (``/me/reminders/push/``, JSON from reminders.js) and the
removal of a device (``/me/reminders/devices/<id>/remove/``). The clinician reads the
preferences and the log on the patient page (:func:`speciosa.reminders.pages.patient_context`)."""

from __future__ import annotations

import json
import zoneinfo

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from speciosa.clinic import access
from speciosa.clinic.models import Role
from speciosa.web.forms import TokenForm, apply_service_errors, submission_key

from . import services

_ZONES = sorted(z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))


def _time_input():
    return forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


class PreferencesForm(TokenForm):
    """The fields only carry the values: :func:`services.clean_preferences` says what is wrong."""

    time_of_day = forms.CharField(label=gettext_lazy("Remind me at"), required=False, widget=_time_input())
    time_zone = forms.ChoiceField(label=gettext_lazy("My time zone"), required=False)
    quiet_start = forms.CharField(label=gettext_lazy("Quiet from"), required=False, widget=_time_input())
    quiet_end = forms.CharField(label=gettext_lazy("until"), required=False, widget=_time_input())
    push = forms.BooleanField(label=gettext_lazy("Notification on this phone (Web Push)"), required=False)
    email = forms.BooleanField(label=gettext_lazy("E-mail"), required=False)
    sms = forms.BooleanField(label=gettext_lazy("Text message (SMS)"), required=False)
    sms_number = forms.CharField(label=gettext_lazy("Mobile number for text messages"), required=False,
                                 max_length=30,
                                 widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel",
                                                               "placeholder": gettext_lazy("+1 555 123 4567")}))
    stopped = forms.BooleanField(label=gettext_lazy("Stop all reminders"), required=False)

    def __init__(self, *args, site_zone: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [("", f"The clinic's ({site_zone})")] + [(z, z) for z in _ZONES]


def _initial(pref, patient) -> dict:
    if pref is None:
        return {"time_of_day": services.DEFAULT_TIME.strftime("%H:%M"), "email": bool(
            patient.user and patient.user.email)}
    def t(v) -> str:
        return v.strftime("%H:%M") if v else ""

    return {"time_of_day": t(pref.time_of_day), "time_zone": pref.time_zone,
            "quiet_start": t(pref.quiet_start), "quiet_end": t(pref.quiet_end),
            "push": pref.push, "email": pref.email, "sms": pref.sms,
            "sms_number": pref.sms_number, "stopped": pref.stopped}


@access.role_required(Role.PATIENT)
@require_http_methods(["GET", "POST"])
def my_reminders(request):
    patient = access.own_patient(request.user)
    pref = services.preference(patient)
    site_zone = patient.site.time_zone or "UTC"
    form = PreferencesForm(request.POST or None, initial=_initial(pref, patient), site_zone=site_zone)
    if request.method == "POST" and form.is_valid():
        try:
            services.save_preferences(request.user, patient, form.cleaned_data,
                                      token=submission_key(request, form))
            return redirect(reverse("my_reminders") + "?saved=1")
        except ValidationError as exc:
            apply_service_errors(form, exc)
    return render(request, "reminders/my_reminders.html", {
        "patient": patient, "pref": pref, "form": form, "zone": services.zone_of(patient, pref),
        "devices": services.devices(patient), "log": services.delivery_log(patient, tz=services.zone_of(patient, pref)),
        "email": patient.user.email if patient.user else "",
        "vapid_public_key": settings.SPECIOSA_VAPID_PUBLIC_KEY if settings.SPECIOSA_VAPID_PRIVATE_KEY else "",
        "csrf": get_token(request)})


@access.role_required(Role.PATIENT)
@require_POST
def push_subscribe(request):
    """Store this browser's push subscription (JSON body: ``PushSubscription.toJSON()`` and a
    ``label``). 201 with the device's id; 400 with the field's message."""
    patient = access.own_patient(request.user)
    try:
        data = json.loads(request.body.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        return JsonResponse({"errors": {"subscription": "Send the subscription as JSON."}}, status=400)
    try:
        device = services.subscribe(request.user, patient, data)
    except ValidationError as exc:
        return JsonResponse({"errors": {k: v[0] for k, v in exc.message_dict.items()}}, status=400)
    return JsonResponse({"id": device.pk}, status=201)


@access.role_required(Role.PATIENT)
@require_POST
def device_remove(request, device_id):
    patient = access.own_patient(request.user)
    services.remove_device(request.user, patient, device_id)
    return redirect(reverse("my_reminders") + "?removed=1")
