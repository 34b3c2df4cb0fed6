"""Consent documents in the admin (issue 16): an administrator adds a version (numbered for
them), edits it until it is signed, then it is read-only and a change is a new version."""

from __future__ import annotations

import pytest

from speciosa.clinic import consents, integrity
from speciosa.clinic.models import AuditEntry, ConsentDocument

pytestmark = pytest.mark.django_db

URL = "/admin/clinic/consentdocument/"


def test_an_added_document_gets_the_next_version_and_is_audited(clinic, login):
    client = login(clinic.admin)
    response = client.post(URL + "add/", {"site": str(clinic.site_a.pk), "kind": "research",
                                          "title": "Research consent (reviewed)",
                                          "body": "Reviewed text."})
    assert response.status_code == 302, response.content.decode()[:1500]
    doc = ConsentDocument.objects.get(title="Research consent (reviewed)")
    assert (doc.version, doc.is_example, doc.created_by) == (2, False, clinic.admin)
    assert consents.latest_document(clinic.site_a, "research") == doc
    assert AuditEntry.objects.filter(model="ConsentDocument", object_id=doc.pk,
                                     action="create").exists()


def test_a_signed_version_is_read_only_and_the_action_makes_a_new_one(clinic, login):
    p = clinic.patient_a
    doc = consents.latest_document(p.site, "care")
    consents.sign(p.user, p, doc, {"typed_name": p.name, "signed_on": integrity.site_today(p.site)})
    client = login(clinic.admin)
    page = client.get(f"{URL}{doc.pk}/change/").content.decode()
    assert 'name="body"' not in page  # every field read-only
    assert client.get(f"{URL}{doc.pk}/delete/").status_code == 403
    posted = client.post(f"{URL}{doc.pk}/change/", {"title": "changed", "body": "changed"})
    assert posted.status_code == 403
    doc.refresh_from_db()
    assert doc.title != "changed"
    response = client.post(URL, {"action": "make_new_version", "_selected_action": [str(doc.pk)]})
    assert response.status_code == 302
    new = consents.latest_document(p.site, "care")
    assert (new.version, new.body) == (2, doc.body) and new.pk != doc.pk
    assert 'name="body"' in client.get(f"{URL}{new.pk}/change/").content.decode()  # editable


def test_only_an_administrator_reaches_the_documents(clinic, login):
    for user in (clinic.clinician_a, clinic.researcher):
        assert login(user).get(URL).status_code in (302, 403)
