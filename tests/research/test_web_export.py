"""Research exports from the research page (issue 15): purpose asked, built on the task queue,
a zip the requesting researcher alone downloads (anyone else: 404), audited with its purpose,
kept until it expires; the page's command line agrees with ``speciosa export research --help``."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

import pytest
from django.utils import timezone

from ..conftest import make_user, verified_login

pytestmark = pytest.mark.django_db

KEY = "test-research-key-0123456789"
PURPOSE = "Study KR-2026-04: exposure and prolactin (IRB 1234)"


@pytest.fixture
def site(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECIOSA_RESEARCH_KEY", KEY)
    settings.RESEARCH_EXPORT_DIR = tmp_path / "exports"
    settings.RESEARCH_K_ANONYMITY = 1  # two fixture patients
    settings.RESEARCH_KEY_FILE = tmp_path / "no-key-file"
    return settings


def _form_token(client) -> str:
    import re

    page = client.get("/research/exports/").content.decode()
    return re.search(r'name="token" value="([^"]+)"', page).group(1)


def _ask(client, purpose=PURPOSE, token=None):
    token = token or _form_token(client)
    return client.post("/research/exports/", {"purpose": purpose, "token": token}), token


def test_a_researcher_asks_with_a_purpose_and_downloads_the_zip(consented, login, site,
                                                                django_capture_on_commit_callbacks):
    from speciosa.clinic.models import AuditEntry
    from speciosa.research.models import ResearchExport

    client = login(consented.researcher)
    with django_capture_on_commit_callbacks(execute=True):  # the task runs eagerly on commit
        response, _ = _ask(client)
    assert response.status_code == 302 and response["Location"] == "/research/exports/"
    export = ResearchExport.objects.get()
    assert export.status == "done" and export.patients == 2 and export.purpose == PURPOSE
    assert export.user == consented.researcher
    assert dt.timedelta(hours=23) < export.expires - timezone.now() <= dt.timedelta(hours=24)
    page = client.get("/research/exports/").content.decode()
    assert PURPOSE in page and "ready: 2 patients" in page
    assert f"/research/exports/{export.pk}/download/" in page
    download = client.get(f"/research/exports/{export.pk}/download/")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    assert f'speciosa-research-{export.pk}.zip' in download["Content-Disposition"]
    zf = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    names = set(zf.namelist())
    assert {"speciosa-research/NOTICE.txt", "speciosa-research/manifest.json",
            "speciosa-research/doses.csv", "speciosa-research/deid_report.json"} <= names
    body = b"".join(zf.read(n) for n in names if n.endswith((".csv", ".json", ".txt")))
    for secret in (consented.patient_a.family_name, consented.patient_a.identifier,
                   consented.patient_b.family_name):
        assert secret.encode() not in body
    entries = AuditEntry.objects.filter(model="ResearchExport").order_by("pk")
    assert [e.action for e in entries] == ["create", "export", "view"]
    assert all(e.user == consented.researcher and PURPOSE in e.reason for e in entries)
    exported = entries[1].after
    assert exported["export"] == export.pk and exported["purpose"] == PURPOSE
    assert sorted(exported["patient_ids"]) == sorted([consented.patient_a.pk, consented.patient_b.pk])


def test_a_missing_or_empty_purpose_is_refused_and_nothing_is_stored(consented, login, site):
    from speciosa.clinic.models import AuditEntry
    from speciosa.research.models import ResearchExport

    client = login(consented.researcher)
    for purpose in ("", "   ", "study"):
        response, _ = _ask(client, purpose)
        assert response.status_code == 400
        assert "Say what the data will be used for" in response.content.decode()
    assert not ResearchExport.objects.exists()
    assert not AuditEntry.objects.filter(model="ResearchExport").exists()


def test_without_a_research_key_the_page_says_so_and_stores_nothing(consented, login, site,
                                                                     monkeypatch):
    from speciosa.research.models import ResearchExport

    monkeypatch.delenv("SPECIOSA_RESEARCH_KEY")
    client = login(consented.researcher)
    assert "SPECIOSA_RESEARCH_KEY" in client.get("/research/exports/").content.decode()
    response, _ = _ask(client)
    assert response.status_code == 400 and "cannot make research exports yet" in response.content.decode()
    assert not ResearchExport.objects.exists()


def test_a_retry_of_the_same_form_stores_one_export_and_runs_one_task(
        consented, login, site, django_capture_on_commit_callbacks, monkeypatch):
    from speciosa.research import exports
    from speciosa.research.models import ResearchExport

    queued = []
    monkeypatch.setattr(exports, "enqueue", queued.append)
    client = login(consented.researcher)
    with django_capture_on_commit_callbacks(execute=True):
        first, token = _ask(client)
        again, _ = _ask(client, token=token)
    assert first.status_code == again.status_code == 302
    assert ResearchExport.objects.count() == 1 and len(queued) == 1
    export = ResearchExport.objects.get()
    exports.run(export.pk)
    exports.run(export.pk)  # a redelivered task: nothing more
    from speciosa.clinic.models import AuditEntry

    assert AuditEntry.objects.filter(model="ResearchExport", action="export").count() == 1


def test_nobody_else_can_download_it_not_even_another_researcher(
        consented, login, site, django_capture_on_commit_callbacks):
    from speciosa.clinic.models import AuditEntry
    from speciosa.research.models import ResearchExport

    with django_capture_on_commit_callbacks(execute=True):
        _ask(login(consented.researcher))
    export = ResearchExport.objects.get(status="done")
    url = f"/research/exports/{export.pk}/download/"
    views = AuditEntry.objects.filter(action="view", model="ResearchExport").count()
    other = make_user("res2", "researcher", "pw-other-researcher-1")
    for user in (other, consented.clinician_a, consented.admin, consented.patient_a.user):
        from django.test import Client

        c = verified_login(Client(), user)
        response = c.get(url)
        assert response.status_code == 404, user
        assert PURPOSE not in c.get("/research/exports/").content.decode()
    from django.test import Client

    assert Client().get(url).status_code == 302  # anonymous: the login page
    assert AuditEntry.objects.filter(action="view", model="ResearchExport").count() == views


def test_an_expired_export_is_not_downloaded_and_is_purged(
        consented, login, site, django_capture_on_commit_callbacks):
    from speciosa.research import exports
    from speciosa.research.models import ResearchExport

    client = login(consented.researcher)
    with django_capture_on_commit_callbacks(execute=True):
        _ask(client)
    export = ResearchExport.objects.get()
    path = exports.zip_path(export)
    assert path.is_file()
    ResearchExport.objects.filter(pk=export.pk).update(expires=timezone.now() - dt.timedelta(seconds=1))
    assert client.get(f"/research/exports/{export.pk}/download/").status_code == 404
    assert exports.purge_expired() == 1
    assert not path.exists() and not ResearchExport.objects.exists()


def test_the_page_and_the_cli_help_name_the_same_command(consented, login, site, capsys,
                                                         monkeypatch):
    from speciosa.cli import build_parser
    from speciosa.research.views import CLI_COMMAND

    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["export", "research", "--help"])
    help_text = capsys.readouterr().out
    for flag in ("--out", "--researcher", "--purpose"):
        assert flag in CLI_COMMAND and flag in help_text
    assert "/research/exports/" in " ".join(help_text.split())
    assert CLI_COMMAND in login(consented.researcher).get("/research/").content.decode()
    # the command as the page gives it, with a key file as the demo writes, works
    from speciosa.cli import main
    from speciosa.research import deid

    monkeypatch.delenv("SPECIOSA_RESEARCH_KEY")
    assert deid.write_demo_key(site.RESEARCH_KEY_FILE)
    assert site.RESEARCH_KEY_FILE.stat().st_mode & 0o777 == 0o600
    assert main(CLI_COMMAND.replace("DIR", str(site.RESEARCH_EXPORT_DIR / "cli"))
                .replace("USERNAME", consented.researcher.username)
                .replace("TEXT", "demo-study").split()[1:] + ["--json"]) == 0
    assert json.loads(capsys.readouterr().out)["patients"] == 2


def test_a_zip_built_before_a_patient_withdrew_is_not_given_out(consented, login, site,
                                                                django_capture_on_commit_callbacks):
    # adversarial pass (issue 16): the zip built while patient A consented stayed
    # downloadable after A revoked their research consent (until it expired)
    from speciosa.clinic import consents
    from speciosa.clinic.models import ConsentSignature
    from speciosa.research.models import ResearchExport

    client = login(consented.researcher)
    with django_capture_on_commit_callbacks(execute=True):
        _ask(client)
    export = ResearchExport.objects.get()
    assert client.get(f"/research/exports/{export.pk}/download/").status_code == 200
    sig = ConsentSignature.objects.get(patient=consented.patient_a, document__kind="research")
    consents.revoke(consented.patient_a.user, sig, reason="no longer")
    refused = client.get(f"/research/exports/{export.pk}/download/")
    assert refused.status_code == 403
    assert "withdrew their research consent" in refused.content.decode()
    with django_capture_on_commit_callbacks(execute=True):  # a new export leaves A out
        _ask(client)
    new = ResearchExport.objects.order_by("-pk").first()
    assert new.patients == 1
    assert client.get(f"/research/exports/{new.pk}/download/").status_code == 200
