"""Issue 11, item 5: a change made in Django's admin is in the audit trail with the values
before and after, and consent is append-only (a new consent supersedes the current one; the
history stays; the research export reads the current one)."""

from __future__ import annotations

import datetime as dt
import html
import importlib
import re

import pytest
from django.utils import timezone

from speciosa.clinic import services
from speciosa.clinic.models import AuditEntry, Consent, Patient
from speciosa.research.dataset import consented_patient_ids


def _form_data(page: str) -> dict[str, object]:
    """The values a browser would send back from an admin change page (inputs, checked
    boxes, selected options, text areas)."""
    data: dict[str, object] = {}
    for tag in re.findall(r"<input[^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or 'type="submit"' in tag:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        if 'type="checkbox"' in tag:
            if "checked" in tag:
                data[name.group(1)] = "on"
            continue
        data[name.group(1)] = html.unescape(value.group(1)) if value else ""
    for attrs, body in re.findall(r'<select([^>]*)>(.*?)</select>', page, re.S):
        name = re.search(r'name="([^"]+)"', attrs).group(1)
        chosen = re.findall(r'<option value="([^"]*)"[^>]*selected', body)
        data[name] = chosen if "multiple" in attrs else (chosen[0] if chosen else "")
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', page, re.S):
        data[name] = html.unescape(body).strip()
    return data


@pytest.mark.django_db
def test_an_admin_change_to_a_patient_is_audited_with_old_and_new_values(clinic, login):
    patient = clinic.patient_a
    client = login(clinic.admin)
    url = f"/admin/clinic/patient/{patient.pk}/change/"
    data = _form_data(client.get(url).content.decode())
    assert data["family_name"] == "Quinn"
    data.update(family_name="Quinn-Baker", pregnant="on")
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    patient.refresh_from_db()
    assert (patient.family_name, patient.pregnant) == ("Quinn-Baker", True)
    entry = AuditEntry.objects.get(model="Patient", action="correct")
    assert (entry.user, entry.patient, entry.object_id) == (clinic.admin, patient, patient.pk)
    assert (entry.before["family_name"], entry.after["family_name"]) == ("Quinn", "Quinn-Baker")
    assert (entry.before["pregnant"], entry.after["pregnant"]) == (False, True)
    assert "family_name" in entry.reason and "pregnant" in entry.reason


@pytest.mark.django_db
def test_moving_a_patient_to_another_care_team_in_the_admin_is_audited(clinic, login):
    """Who may see the patient changes: the trail says from which team to which."""
    client = login(clinic.admin)
    url = f"/admin/clinic/patient/{clinic.patient_a.pk}/change/"
    data = _form_data(client.get(url).content.decode())
    data.update(site=str(clinic.site_b.pk), care_team=str(clinic.team_b.pk))
    assert client.post(url, data).status_code == 302
    entry = AuditEntry.objects.get(model="Patient", action="correct")
    assert (entry.before["care_team"], entry.after["care_team"]) == (clinic.team_a.pk, clinic.team_b.pk)


@pytest.mark.django_db
def test_care_team_membership_changed_in_the_admin_is_audited_with_the_member_ids(clinic, login):
    client = login(clinic.admin)
    url = f"/admin/clinic/careteam/{clinic.team_a.pk}/change/"
    data = _form_data(client.get(url).content.decode())
    data["members"] = [str(clinic.clinician_a.pk), str(clinic.clinician_b.pk)]
    assert client.post(url, data).status_code == 302
    entry = AuditEntry.objects.get(model="CareTeam", action="correct")
    assert entry.before["members"] == [clinic.clinician_a.pk]
    assert entry.after["members"] == sorted([clinic.clinician_a.pk, clinic.clinician_b.pk])


@pytest.mark.django_db
def test_a_patient_cannot_be_deleted_in_the_admin(clinic, login):
    client = login(clinic.admin)
    assert client.get(f"/admin/clinic/patient/{clinic.patient_a.pk}/delete/").status_code == 403
    assert Patient.objects.filter(pk=clinic.patient_a.pk).exists()


@pytest.mark.django_db
def test_a_consent_added_in_the_admin_supersedes_the_current_one_and_keeps_the_history(clinic, login):
    patient = clinic.patient_a
    first = services.record_consent(clinic.clinician_a, patient, "research", True)
    assert consented_patient_ids() == [patient.pk]
    client = login(clinic.admin)
    at = timezone.localtime(timezone.now() - dt.timedelta(minutes=1))
    response = client.post("/admin/clinic/consent/add/", {
        "patient": str(patient.pk), "kind": "research", "at_0": at.strftime("%Y-%m-%d"),
        "at_1": at.strftime("%H:%M:%S")})  # "given" unticked: refused
    assert response.status_code == 302, response.content.decode()[:2000]
    history = list(Consent.objects.filter(patient=patient, kind="research").order_by("id"))
    assert [c.given for c in history] == [True, False]  # the first one is kept, unchanged
    assert history[1].supersedes == first and history[1].recorded_by == clinic.admin
    assert list(Consent.objects.current().filter(patient=patient, kind="research")) == [history[1]]
    assert consented_patient_ids() == []  # the export reads the current consent
    entry = AuditEntry.objects.filter(model="Consent").latest("seq")
    assert (entry.user, entry.patient, entry.object_id) == (clinic.admin, patient, history[1].pk)
    assert entry.before["given"] is True and entry.after["given"] is False
    assert entry.after["supersedes"] == first.pk


@pytest.mark.django_db
def test_a_consent_cannot_be_changed_or_deleted(clinic, login):
    consent = services.record_consent(clinic.clinician_a, clinic.patient_a, "research", True)
    client = login(clinic.admin)
    data = {"patient": str(clinic.patient_a.pk), "kind": "research", "given": "",
            "at_0": "2026-01-01", "at_1": "10:00:00"}
    client.post(f"/admin/clinic/consent/{consent.pk}/change/", data)
    assert client.get(f"/admin/clinic/consent/{consent.pk}/delete/").status_code == 403
    consent.refresh_from_db()
    assert consent.given is True and Consent.objects.count() == 1
    consent.given = False
    with pytest.raises(PermissionError):
        consent.save()
    with pytest.raises(PermissionError):
        consent.delete()
    with pytest.raises(PermissionError):
        Consent.objects.filter(pk=consent.pk).update(given=False)
    with pytest.raises(PermissionError):
        Consent.objects.all().delete()


@pytest.mark.django_db
def test_only_the_care_team_or_an_administrator_records_a_consent(clinic):
    from speciosa.clinic.writes import AccessDenied

    for user in (clinic.clinician_b, clinic.patient_a.user, clinic.researcher):
        with pytest.raises(AccessDenied):
            services.record_consent(user, clinic.patient_a, "research", True)
    assert Consent.objects.count() == 0


def _legacy_signature(patient, kind):
    from speciosa.clinic import consents
    from speciosa.clinic.models import ConsentSignature

    return ConsentSignature.objects.create(
        patient=patient, document=consents.latest_document(patient.site, kind), source="legacy",
        typed_name=patient.name, signed_on=timezone.localdate())


@pytest.mark.django_db
def test_the_migration_links_existing_consents_in_the_order_research_read_them(clinic):
    """Consents stored before (several per patient and kind, overwritten or not) become a
    history whose current consent is the one the export used (latest ``at``, then id)."""
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    migration = importlib.import_module("speciosa.clinic.migrations.0014_consent_append_only")
    t0 = timezone.now() - dt.timedelta(days=10)
    base = Consent._base_manager
    late = base.create(patient=clinic.patient_a, kind="research", given=False, at=t0 + dt.timedelta(days=2))
    # a given answer rests on a signature since migration 0026 (its legacy form here)
    early = base.create(patient=clinic.patient_a, kind="research", given=True, at=t0,
                        signature=_legacy_signature(clinic.patient_a, "research"))
    care = base.create(patient=clinic.patient_a, kind="care", given=True, at=t0,
                       signature=_legacy_signature(clinic.patient_a, "care"))
    base.filter(pk__in=[late.pk, early.pk, care.pk]).update(supersedes=None)
    apps = MigrationLoader(connection).project_state(("clinic", "0014_consent_append_only")).apps
    migration.link_history(apps, None)
    late.refresh_from_db()
    assert late.supersedes_id == early.pk
    assert set(Consent.objects.current().values_list("pk", flat=True)) == {late.pk, care.pk}
    assert clinic.patient_a.pk not in consented_patient_ids()


@pytest.mark.django_db
@pytest.mark.parametrize("field,value", [("in_care_since", "0001-01-01"), ("in_care_since", "9999-12-31"),
                                         ("birth_date", "0001-01-01"), ("birth_date", "9999-12-31")])
def test_an_implausible_entry_into_care_or_birth_date_is_refused_in_the_admin(clinic, login, field,
                                                                             value):
    """Issue 11 item 8: the clinical window opens a year before entry into care, so a year-1
    entry into care let year-1 diary days in again (and the alert scan then raised a 500)."""
    patient = clinic.patient_a
    client = login(clinic.admin)
    url = f"/admin/clinic/patient/{patient.pk}/change/"
    data = _form_data(client.get(url).content.decode())
    data[field] = value
    response = client.post(url, data)
    assert response.status_code == 200
    assert "check the year" in response.content.decode()
    patient.refresh_from_db()
    assert getattr(patient, field).year not in (1, 9999)
    assert not AuditEntry.objects.filter(model="Patient", action="correct").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("url", [
    "/admin/clinic/auditentry/?at__year=9999&at__month=12&at__day=31",
    "/admin/clinic/auditentry/?at__year=99999999999999999999",
    "/admin/clinic/patient/?birth_date__year=0",
    "/admin/clinic/consent/?at__year=0",
])
def test_a_date_filter_outside_the_calendar_in_the_admin_is_a_notice_not_a_500(clinic, login, url):
    response = login(clinic.admin).get(url)
    assert response.status_code == 302 and response["Location"].endswith("?e=1")
