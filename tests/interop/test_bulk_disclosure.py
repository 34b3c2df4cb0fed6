"""A bulk export to another party honours 42 CFR Part 2 consent (issue 16): only patients with
a consent in force for the recipient are exported, each disclosure is audited with recipient and
purpose, the manifest carries the notice, a file is refused after a revocation; a treating
clinician's own export (no recipient) is the program's own use."""

from __future__ import annotations

import datetime as dt

import pytest

from speciosa.clinic import consents, integrity
from speciosa.clinic.models import AuditEntry
from speciosa.interop import bulk, views
from speciosa.interop.models import BulkExport

from . import test_bulk, test_search
from .test_bulk import ASYNC, bulk_dir, clinician, download, run_export  # noqa: F401

pytestmark = pytest.mark.django_db
chart = test_search.chart


def _part2(patient, recipient="Riverside Primary Care", days=30):
    today = integrity.site_today(patient.site)
    return consents.record_paper(patient.care_team.members.first(), patient,
                                 consents.latest_document(patient.site, "part2"), {
                                     "typed_name": patient.name, "signed_on": today,
                                     "recipient": recipient, "purpose": "coordinate care",
                                     "expires_on": today + dt.timedelta(days=days)})


def test_a_named_recipient_without_any_consent_is_refused_with_a_clear_message(chart):
    resp = clinician(chart).get("/fhir/$export", {"_purpose": "referral",
                                                  "_recipient": "Riverside Primary Care"}, **ASYNC)
    assert resp.status_code == 403
    text = resp.json()["issue"][0]["diagnostics"]
    assert text.startswith("Nothing exported:")
    assert "no 42 CFR Part 2 consent in force for the recipient 'Riverside Primary Care'" in text
    assert not BulkExport.objects.exists()
    assert not AuditEntry.objects.filter(action__in=["export", "disclose"]).exists()


def test_only_consented_patients_are_disclosed_and_each_disclosure_is_audited(
        chart, django_capture_on_commit_callbacks):
    sig = _part2(chart.patient_a)
    _part2(chart.decoy, "Someone Else")
    client = clinician(chart)
    manifest = run_export(client, django_capture_on_commit_callbacks, _type="Patient",
                          _purpose="referral", _recipient="riverside primary  care")
    assert {p["id"] for p in download(client, manifest, "Patient")} == {str(chart.patient_a.pk)}
    ext = manifest["extension"]
    assert ext[bulk.RECIPIENT_EXT] == "riverside primary care"
    assert ext[bulk.WITHHELD_EXT] == 1  # the decoy: consent for someone else
    assert ext[bulk.NOTICE_EXT].startswith("42 CFR PART 2 NOTICE.")
    (entry,) = AuditEntry.objects.filter(action="disclose")
    assert (entry.user, entry.patient, entry.model) == (chart.clinician_a, chart.patient_a, "fhir:$export")
    assert entry.after["recipient"] == "riverside primary care" and entry.after["purpose"] == "referral"
    assert entry.after["consent"] == sig.pk


def test_a_file_is_refused_once_the_consent_is_revoked(chart, django_capture_on_commit_callbacks):
    sig = _part2(chart.patient_a)
    client = clinician(chart)
    manifest = run_export(client, django_capture_on_commit_callbacks, _type="Patient",
                          _purpose="referral", _recipient="Riverside Primary Care")
    consents.revoke(chart.clinician_a, sig, reason="patient's letter")
    url = manifest["output"][0]["url"]
    resp = client.get(url)
    assert resp.status_code == 403
    assert "revoked their 42 CFR Part 2 consent" in resp.json()["issue"][0]["diagnostics"]


def test_an_expired_consent_discloses_nothing(chart):
    _part2(chart.patient_a, days=1)
    from django.utils import timezone

    later = timezone.now() + dt.timedelta(days=3)
    from unittest import mock

    with mock.patch("django.utils.timezone.now", return_value=later):
        resp = clinician(chart).get("/fhir/$export", {
            "_purpose": "referral", "_recipient": "Riverside Primary Care"}, **ASYNC)
    assert resp.status_code == 403 and not BulkExport.objects.exists()


def test_the_treating_clinicians_own_export_needs_no_part2_consent(
        chart, django_capture_on_commit_callbacks):
    client = clinician(chart)
    manifest = run_export(client, django_capture_on_commit_callbacks, _type="Patient",
                          _purpose="TREAT")
    assert {p["id"] for p in download(client, manifest, "Patient")} == {
        str(chart.patient_a.pk), str(chart.decoy.pk)}
    assert "extension" not in manifest
    assert not AuditEntry.objects.filter(action="disclose").exists()


def test_a_backend_client_cannot_name_another_recipient(chart):
    from django.contrib.auth import get_user_model

    app = test_bulk.smart_app("backend", chart.site_a, purpose="registry")
    app.user = get_user_model().objects.create_user("oauth-reg")
    app.save()
    import secrets

    from django.test import Client
    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    key = secrets.token_urlsafe(30)
    AccessToken.objects.create(user=None, application=app, token=key, scope="system/*.read",
                               expires=timezone.now() + dt.timedelta(hours=1))
    fhir = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    resp = fhir.get("/fhir/$export", {"_recipient": "Someone Else"}, **ASYNC)
    assert resp.status_code == 400 and "_recipient" in resp.content.decode()
    # and its searches reach only the patients who consented to it
    assert fhir.get("/fhir/Patient").json().get("total", 0) == 0
    _part2(chart.decoy, "backend client")
    ids = {e["resource"]["id"] for e in fhir.get("/fhir/Patient").json()["entry"]}
    assert ids == {str(chart.decoy.pk)}


def test_the_command_line_export_to_a_recipient_takes_only_the_consented(chart, tmp_path, capsys):
    import json

    from speciosa.cli import main

    out = tmp_path / "none"
    assert main(["export", "fhir", "--purpose", "referral", "--out", str(out),
                 "--recipient", "Riverside Primary Care"]) == 2
    assert "no 42 CFR Part 2 consent in force for the recipient" in capsys.readouterr().err
    assert not AuditEntry.objects.filter(action="disclose").exists()
    _part2(chart.patient_a)
    out = tmp_path / "one"
    assert main(["export", "fhir", "--purpose", "referral", "--out", str(out),
                 "--recipient", "Riverside Primary Care", "--json"]) == 0
    lines = (out / "Patient.ndjson").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == [str(chart.patient_a.pk)]
    (entry,) = AuditEntry.objects.filter(action="disclose")
    assert entry.patient == chart.patient_a and entry.after["recipient"] == "Riverside Primary Care"
    assert entry.after["withheld"] == 2  # the decoy and patient_b


def test_a_backend_clients_reads_and_searches_are_accounted_as_disclosures(chart):
    """A backend client is another party: each patient its read, search, history or
    $everything shows gets a 'disclose' entry naming it, the purpose and the consent (they
    were audited as ordinary views only, with no recipient)."""
    from django.contrib.auth import get_user_model

    app = test_bulk.smart_app("backend", chart.site_a, purpose="registry")
    app.user = get_user_model().objects.create_user("oauth-reg2")
    app.save()
    import secrets

    from django.test import Client
    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    key = secrets.token_urlsafe(30)
    AccessToken.objects.create(user=None, application=app, token=key, scope="system/*.read",
                               expires=timezone.now() + dt.timedelta(hours=1))
    fhir = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    sig = _part2(chart.decoy, "backend client")
    pid = str(chart.decoy.pk)

    assert fhir.get(f"/fhir/Patient/{pid}").status_code == 200
    assert fhir.get("/fhir/Patient", HTTP_X_PURPOSE_OF_USE="HPAYMT").status_code == 200
    assert fhir.get(f"/fhir/Patient/{pid}/_history").status_code == 200
    assert fhir.get(f"/fhir/Patient/{pid}/$everything").status_code == 200
    entries = list(AuditEntry.objects.filter(action="disclose").order_by("pk"))
    assert [e.model for e in entries] == ["fhir:Patient", "fhir:search:Patient",
                                          "fhir:history:Patient", "fhir:$everything"]
    assert {e.patient_id for e in entries} == {chart.decoy.pk}
    assert {e.after["recipient"] for e in entries} == {"backend client"}
    assert {e.after["consent"] for e in entries} == {sig.pk}
    assert [e.after["purpose"] for e in entries][:2] == [views.BACKEND_PURPOSE, "HPAYMT"]
    # a clinician's own read stays the program's own use: a view, no disclosure
    clinician(chart).get(f"/fhir/Patient/{chart.patient_a.pk}")
    assert AuditEntry.objects.filter(action="disclose").count() == 4
