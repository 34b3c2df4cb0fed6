"""Issue 15, item 1: records no path can get wrong. The administrator's hostile patient (a
Riverside patient in a Hillcrest team, born in 2030, male and pregnant, in care from 2027,
linked to a clinician's login) is refused by Django's admin, by the model on any other path,
and, for what one row can state, by the database itself."""

from __future__ import annotations

import datetime as dt
import html

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from tests.clinic.test_admin_audit import _form_data
from tests.conftest import make_user

from speciosa.clinic.models import CareTeam, Patient, Profile

pytestmark = pytest.mark.django_db

HOSTILE = {"birth_date": "2030-01-01", "in_care_since": "2027-01-01", "sex": "male",
           "pregnant": "on"}


def _errors(page: str) -> str:
    return html.unescape(page)


def test_the_admin_refuses_the_hostile_new_patient_naming_every_problem(clinic, login):
    client = login(clinic.admin)
    data = _form_data(client.get("/admin/clinic/patient/add/").content.decode())
    data.update(HOSTILE, site=str(clinic.site_a.pk), care_team=str(clinic.team_b.pk),
                user=str(clinic.clinician_a.pk), identifier="RRC-HOSTILE", given_name="Hal",
                family_name="Hostile")
    response = client.post("/admin/clinic/patient/add/", data)
    assert response.status_code == 200
    page = _errors(response.content.decode())
    assert "Team B is a care team of Site B, not of Site A" in page
    assert "Give a birth date from" in page and "check the year" in page
    assert "Pregnancy is recorded only when the sex is female" in page
    assert "Give a date from" in page  # in care from 2027: after today
    # the clinician's login is not even offered as a patient's login
    assert "Select a valid choice" in page
    assert not Patient.objects.filter(identifier="RRC-HOSTILE").exists()


def test_the_admin_login_picker_offers_only_patient_accounts(clinic, login):
    page = login(clinic.admin).get("/admin/clinic/patient/add/").content.decode()
    user_select = page.split('name="user"', 1)[1].split("</select>")[0]
    assert f'value="{clinic.patient_a.user.pk}"' in user_select
    for staff in (clinic.clinician_a, clinic.researcher, clinic.admin):
        assert f'value="{staff.pk}"' not in user_select


def test_the_admin_refuses_moving_a_patient_to_another_sites_team(clinic, login):
    client = login(clinic.admin)
    url = f"/admin/clinic/patient/{clinic.patient_a.pk}/change/"
    data = _form_data(client.get(url).content.decode())
    data.update(care_team=str(clinic.team_b.pk))
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Team B is a care team of Site B, not of Site A" in _errors(response.content.decode())
    clinic.patient_a.refresh_from_db()
    assert clinic.patient_a.care_team == clinic.team_a


def test_the_admin_refuses_a_man_recorded_as_pregnant(clinic, login):
    client = login(clinic.admin)
    url = f"/admin/clinic/patient/{clinic.patient_b.pk}/change/"
    data = _form_data(client.get(url).content.decode())
    data.update(pregnant="on")
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Pregnancy is recorded only when the sex is female" in _errors(response.content.decode())
    clinic.patient_b.refresh_from_db()
    assert clinic.patient_b.pregnant is False


@pytest.mark.parametrize("field, value, message", [
    ("care_team", "team_b", "not of Site A"),
    ("birth_date", dt.date(2030, 1, 1), "Give a birth date"),
    ("in_care_since", dt.date(2027, 1, 1), "Give a date from"),
    ("in_care_since", dt.date(1984, 1, 1), "(birth) to today"),
    ("pregnant", True, "only when the sex is female"),
    ("user", "clinician_a", "not a patient account"),
    ("user", "researcher", "not a patient account"),
    ("user", "admin", "not a patient account"),
])
def test_any_other_path_that_saves_a_patient_is_refused_too(clinic, field, value, message):
    """A service, an import, a shell: ``save()`` runs the same rules as the admin."""
    patient = Patient.objects.get(pk=clinic.patient_b.pk if field == "pregnant" else clinic.patient_a.pk)
    if isinstance(value, str):
        value = getattr(clinic, value)
    setattr(patient, field, value)
    with pytest.raises(ValidationError) as caught:
        patient.save()
    assert message in " ".join(caught.value.message_dict[field])
    fresh = Patient.objects.get(pk=patient.pk)
    assert getattr(fresh, field) != value


def test_a_patient_login_of_another_site_is_refused(clinic):
    user = clinic.patient_b.user
    clinic.patient_b.user = None
    clinic.patient_b.save()
    Profile.objects.filter(user=user).update(site=clinic.site_b)
    clinic.patient_a.user = type(user).objects.get(pk=user.pk)
    with pytest.raises(ValidationError) as caught:
        clinic.patient_a.save()
    assert "belongs to Site B, not to Site A" in caught.value.message_dict["user"][0]


@pytest.mark.parametrize("change, constraint", [
    ({"pregnant": True}, "pregnancy"),
    ({"in_care_since": dt.date(1980, 1, 1)}, "in_care"),
    ({"sex": "unknown"}, "sex"),
])
def test_the_database_refuses_what_one_row_states_wrong(clinic, change, constraint):
    """A queryset update skips every ``save()``: the constraint still holds (the patient is
    a man born in 1985)."""
    with pytest.raises(IntegrityError), transaction.atomic():
        Patient.objects.filter(pk=clinic.patient_b.pk).update(**change)
    assert Patient.objects.get(pk=clinic.patient_b.pk).pregnant is False


def test_the_database_refuses_an_unknown_role(clinic):
    with pytest.raises(IntegrityError), transaction.atomic():
        Profile.objects.filter(user=clinic.clinician_a).update(role="wizard")


def test_only_clinicians_of_the_site_join_a_care_team_from_either_side(clinic):
    def refused(add, match):
        with pytest.raises(ValidationError, match=match), transaction.atomic():
            add()

    refused(lambda: clinic.team_a.members.add(clinic.patient_a.user), "is not a clinician")
    refused(lambda: clinic.researcher.care_teams.add(clinic.team_a), "is not a clinician")
    Profile.objects.filter(user=clinic.clinician_b).update(site=clinic.site_b)
    clinic.clinician_b.refresh_from_db()
    refused(lambda: clinic.team_a.members.add(clinic.clinician_b), "works at Site B, not at Site A")
    refused(lambda: clinic.clinician_b.care_teams.add(clinic.team_a), "works at Site B, not at Site A")
    assert list(clinic.team_a.members.all()) == [clinic.clinician_a]


def test_the_admin_member_picker_offers_the_sites_clinicians_and_refuses_others(clinic, login):
    Profile.objects.filter(user=clinic.clinician_a).update(site=clinic.site_a)
    Profile.objects.filter(user=clinic.clinician_b).update(site=clinic.site_b)
    client = login(clinic.admin)
    url = f"/admin/clinic/careteam/{clinic.team_a.pk}/change/"
    page = client.get(url).content.decode()
    picker = page.split('name="members"', 1)[1].split("</select>")[0]
    assert f'value="{clinic.clinician_a.pk}"' in picker
    assert f'value="{clinic.clinician_b.pk}"' not in picker
    assert f'value="{clinic.patient_a.user.pk}"' not in picker
    data = _form_data(page)
    data["members"] = [str(clinic.clinician_a.pk), str(clinic.clinician_b.pk)]
    response = client.post(url, data)
    assert response.status_code == 200
    assert list(clinic.team_a.members.all()) == [clinic.clinician_a]


def test_a_care_team_does_not_move_site_away_from_its_patients(clinic):
    team = CareTeam.objects.get(pk=clinic.team_a.pk)
    team.site = clinic.site_b
    with pytest.raises(ValidationError, match="patient\\(s\\) of this team are at another site"):
        team.save()


def test_a_login_has_one_role(clinic):
    profile = clinic.clinician_a.profile
    profile.role = "researcher"
    with pytest.raises(ValidationError, match="only clinicians are"):
        profile.save()
    patient_profile = clinic.patient_a.user.profile
    patient_profile.role = "clinician"
    with pytest.raises(ValidationError, match="its role stays Patient"):
        patient_profile.save()
    user = clinic.patient_a.user
    user.is_superuser = True
    with pytest.raises(ValidationError, match="never a superuser"):
        user.save()
    clinician = type(user).objects.get(pk=clinic.clinician_a.pk)
    clinician.is_superuser = True
    with pytest.raises(ValidationError, match="a superuser is an administrator"):
        clinician.save()


def test_the_admin_refuses_making_a_patients_login_a_superuser(clinic, login):
    client = login(clinic.admin)
    user = clinic.patient_a.user
    url = f"/admin/auth/user/{user.pk}/change/"
    data = _form_data(client.get(url).content.decode())
    data.update(is_superuser="on", is_staff="on")
    response = client.post(url, data)
    assert response.status_code == 200
    assert "a patient account is never a superuser" in _errors(response.content.decode())
    user.refresh_from_db()
    assert not user.is_superuser


def test_the_admin_asks_a_clinicians_site(clinic, login):
    client = login(clinic.admin)
    newcomer = make_user("newdoc", None, clinic.password)
    data = _form_data(client.get("/admin/clinic/profile/add/").content.decode())
    data.update(user=str(newcomer.pk), role="clinician", site="")
    response = client.post("/admin/clinic/profile/add/", data)
    assert response.status_code == 200
    assert "A clinician&#x27;s login belongs to a site" in response.content.decode() \
        or "A clinician's login belongs to a site" in _errors(response.content.decode())
    assert not Profile.objects.filter(user=newcomer).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["Pacific/Pago_Pago", "Pacific/Kiritimati", "UTC"])
def test_entry_into_care_defaults_to_today_at_the_patients_site(zone):
    # the model's default was the server's date: at 03:00 UTC a patient created without the
    # date at a site eleven hours behind was 'in care from tomorrow' and refused ('give a
    # date ... to today'); at a site fourteen hours ahead it was in care from yesterday
    import zoneinfo

    from speciosa.clinic.integrity import site_today
    from speciosa.clinic.models import Site

    site = Site.objects.create(name=f"Site {zone}", time_zone=zone)
    team = CareTeam.objects.create(site=site, name="Team")
    patient = Patient.objects.create(site=site, care_team=team, identifier="MRN-1", given_name="A",
                                     family_name="B", birth_date=dt.date(1990, 1, 1), sex="female")
    today_there = dt.datetime.now(zoneinfo.ZoneInfo(zone)).date()
    assert patient.in_care_since == site_today(site) == today_there
    patient.refresh_from_db()
    assert patient.in_care_since == today_there
