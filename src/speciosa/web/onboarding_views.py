"""Onboarding without Django's admin (issue 15, item 3): clinic staff register a patient and
hand them a one-time set-up link (and its QR code); the patient opens it, chooses a password
and lands on a first page that says what to do. The rules and the audit are
:mod:`speciosa.clinic.onboarding`'s."""

from __future__ import annotations

from django import forms as dforms
from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth.forms import SetPasswordForm
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.views.decorators.http import require_http_methods

from speciosa.clinic import access, onboarding
from speciosa.clinic.models import Role, Sex, Site

from . import forms
from .account_views import qr_data_uri


class RegisterPatientForm(forms.TokenForm):
    site = dforms.TypedChoiceField(label="Site", coerce=int)
    care_team = dforms.TypedChoiceField(label="Care team", coerce=int)
    identifier = dforms.CharField(label="Medical record number", max_length=40)
    given_name = dforms.CharField(label="Given name", max_length=80)
    family_name = dforms.CharField(label="Family name", max_length=80)
    birth_date = dforms.DateField(label="Birth date",
                                  widget=dforms.DateInput(attrs={"type": "date"}))
    sex = dforms.ChoiceField(label="Sex", choices=Sex.choices, widget=dforms.RadioSelect)
    pregnant = dforms.BooleanField(label="Pregnant", required=False)
    breastfeeding = dforms.BooleanField(label="Breastfeeding", required=False)
    in_care_since = dforms.DateField(label="In care since", required=False,
                                     widget=dforms.DateInput(attrs={"type": "date"}))
    consent_care = dforms.BooleanField(
        label="The patient consents to supervised care and monitoring", required=False)
    consent_research = dforms.BooleanField(
        label="The patient consents to the use of their de-identified data for research",
        required=False)

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        teams = list(onboarding.teams_for(user))
        site_ids = sorted({t.site_id for t in teams})
        sites = Site.objects.filter(pk__in=site_ids).order_by("name")
        self.fields["site"].choices = [("", "— site —")] + [(s.pk, s.name) for s in sites]
        # two teams named "Team A" are told apart by their site
        self.fields["care_team"].choices = [("", "— care team —")] + [
            (t.pk, f"{t.name} — {t.site.name}") for t in teams]
        if not self.is_bound:
            self.initial.setdefault("in_care_since", timezone.localdate().isoformat())
            if len(sites) == 1:
                self.initial.setdefault("site", sites[0].pk)


class AddClinicianForm(dforms.Form):
    site = dforms.TypedChoiceField(label="Site", coerce=int)
    teams = dforms.TypedMultipleChoiceField(label="Care teams (of that site)", coerce=int,
                                            required=False, widget=dforms.CheckboxSelectMultiple)
    given_name = dforms.CharField(label="Given name", max_length=150)
    family_name = dforms.CharField(label="Family name", max_length=150)
    username = dforms.CharField(label="Login name", max_length=150)
    email = dforms.EmailField(label="E-mail (for a forgotten password)", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from speciosa.clinic.models import CareTeam

        self.fields["site"].choices = [("", "— site —")] + [
            (s.pk, s.name) for s in Site.objects.order_by("name")]
        self.fields["teams"].choices = [
            (t.pk, f"{t.name} — {t.site.name}")
            for t in CareTeam.objects.select_related("site").order_by("site__name", "name")]


@access.role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def clinician_new(request):
    """An administrator adds a clinician to a site and its care teams (issue 15)."""
    form = AddClinicianForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            login_user, token = onboarding.add_clinician(request.user, form.cleaned_data)
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
        else:
            link = _setup_link(request, login_user, token)
            return render(request, "web/clinician_added.html", {
                "clinician": login_user, "link": link, "qr": qr_data_uri(link),
                "hours": int(settings.SETUP_LINK_HOURS),
                "teams": login_user.care_teams.select_related("site")})
    return render(request, "web/clinician_new.html", {"form": form})


def _setup_link(request, login_user, token: str) -> str:
    uid = urlsafe_base64_encode(force_bytes(login_user.pk))
    return request.build_absolute_uri(reverse("account_setup", args=[uid, token]))


@access.role_required(Role.CLINICIAN, Role.ADMIN)
@require_http_methods(["GET", "POST"])
def patient_new(request):
    form = RegisterPatientForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            patient = onboarding.register_patient(request.user, form.cleaned_data,
                                                  token=forms.submission_key(request, form))
            login_user, token = onboarding.issue_setup_link(request.user, patient)
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
        else:
            link = _setup_link(request, login_user, token)
            return render(request, "web/patient_registered.html", {
                "patient": patient, "username": login_user.get_username(), "link": link,
                "qr": qr_data_uri(link), "hours": int(settings.SETUP_LINK_HOURS)})
    return render(request, "web/patient_new.html", {"form": form})


@access.role_required(Role.CLINICIAN)
@require_http_methods(["POST"])
def setup_link_new(request, patient_id):
    """A new set-up link for a patient of the clinician's team who has not set a password
    yet (the first one was lost or expired)."""
    patient = access.patient_for(request.user, patient_id)
    login_user, token = onboarding.issue_setup_link(request.user, patient)
    link = _setup_link(request, login_user, token)
    return render(request, "web/patient_registered.html", {
        "patient": patient, "username": login_user.get_username(), "link": link,
        "qr": qr_data_uri(link), "hours": int(settings.SETUP_LINK_HOURS), "again": True})


def _login_for(uidb64: str):
    try:
        pk = int(force_str(urlsafe_base64_decode(uidb64)))
        return get_user_model().objects.get(pk=pk, is_active=True)
    except (ValueError, TypeError, OverflowError, get_user_model().DoesNotExist):
        return None


@require_http_methods(["GET", "POST"])
def account_setup(request, uidb64: str, token: str):
    """The patient's one-time set-up page: choose a password, then the first page."""
    login_user = _login_for(uidb64)
    valid = (login_user is not None and access.has_role(login_user, Role.PATIENT, Role.CLINICIAN)
             and onboarding.SETUP_TOKENS.check(login_user, token))
    if not valid:
        return render(request, "web/account_setup.html", {"valid": False}, status=410)
    form = SetPasswordForm(login_user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        onboarding.complete_setup(login_user, token, form.cleaned_data["new_password1"])
        login(request, login_user, backend="django.contrib.auth.backends.ModelBackend")
        if access.has_role(login_user, Role.PATIENT):
            return redirect(reverse("me") + "?welcome=1")
        return redirect("home")  # staff: the second factor's enrolment comes first
    return render(request, "web/account_setup.html", {
        "valid": True, "form": form, "username": login_user.get_username(),
        "given_name": login_user.first_name})
