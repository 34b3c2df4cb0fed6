"""The consent pages (issue 16): the patient reads, signs, revokes and downloads; the clinician
sees the patient's consents and records a paper consent; every role; other people's are 404."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.test import Client
from tests.conftest import form_token, verified_login

from speciosa.clinic import consents, integrity
from speciosa.clinic.models import AuditEntry, Consent, ConsentRevocation, ConsentSignature
from speciosa.research.dataset import consented_patient_ids

pytestmark = pytest.mark.django_db


def _client(user):
    return verified_login(Client(), user)


def _doc(patient, kind):
    return consents.latest_document(patient.site, kind)


def _today(patient):
    return integrity.site_today(patient.site)


def _sign_post(client, patient, kind="research", token="s1", **extra):
    doc = _doc(patient, kind)
    data = {"token": form_token(token), "typed_name": patient.name,
            "signed_on": _today(patient).isoformat(), **extra}
    return client.post(f"/me/consents/documents/{doc.pk}/sign/", data)


def test_the_patient_navigation_links_the_consents_page(clinic):
    page = _client(clinic.patient_a.user).get("/me/").content.decode()
    assert 'href="/me/consents/"' in page


def test_the_consents_page_lists_the_clinic_documents_with_the_example_notice(clinic):
    c = _client(clinic.patient_a.user)
    page = c.get("/me/consents/").content.decode()
    assert "Consent to supervised care and monitoring" in page
    assert "Consent to research use of de-identified data" in page
    assert "42 CFR Part 2" in page and "Nothing signed yet." in page
    doc = _doc(clinic.patient_a, "part2")
    sign = c.get(f"/me/consents/documents/{doc.pk}/sign/").content.decode()
    assert "must have it reviewed by its own legal counsel" in sign
    assert "Who may receive my record" in sign and "42 CFR 2.31" in sign


def test_a_patient_signs_and_revokes_and_the_research_export_follows(clinic):
    p = clinic.patient_a
    c = _client(p.user)
    response = _sign_post(c, p)
    assert response.status_code == 302 and response["Location"] == "/me/consents/?done=signed"
    assert consented_patient_ids() == [p.pk]
    sig = ConsentSignature.objects.get()
    page = c.get("/me/consents/?done=signed").content.decode()
    assert "Signed. Your signed copy is kept below" in page and "In force" in page
    detail = c.get(f"/me/consents/{sig.pk}/").content.decode()
    assert sig.pdf_sha256 in detail and "Revoke this consent" in detail
    pdf = c.get(f"/me/consents/{sig.pk}/signed.pdf")
    assert pdf["Content-Type"] == "application/pdf" and pdf["X-Content-SHA256"] == sig.pdf_sha256
    assert hashlib.sha256(pdf.content).hexdigest() == sig.pdf_sha256
    revoked = c.post(f"/me/consents/{sig.pk}/", {"token": form_token("r1"), "reason": "no longer"})
    assert revoked.status_code == 302 and revoked["Location"] == "/me/consents/?done=revoked"
    assert consented_patient_ids() == []
    assert ConsentRevocation.objects.get().reason == "no longer"
    after = c.get(f"/me/consents/{sig.pk}/").content.decode()
    assert "Revoked on" in after and "Revoke this consent" not in after
    assert hashlib.sha256(c.get(f"/me/consents/{sig.pk}/signed.pdf").content).hexdigest() == sig.pdf_sha256


def test_a_double_submit_stores_one_signature(clinic):
    p = clinic.patient_a
    c = _client(p.user)
    assert _sign_post(c, p, token="same").status_code == 302
    assert _sign_post(c, p, token="same").status_code == 302
    assert ConsentSignature.objects.count() == 1
    assert Consent.objects.filter(patient=p, kind="research").count() == 1


@pytest.mark.parametrize("field,value,message", [
    ("typed_name", "", "Type your full name to sign."),
    ("typed_name", "Maya Someone", "does not match the name your clinic has for you"),
    ("signed_on", "", "Write today&#x27;s date."),
    ("signed_on", "2020-01-01", "Write today&#x27;s date: "),
])
def test_a_bad_signature_says_what_to_fix_beside_the_field_and_stores_nothing(clinic, field, value,
                                                                               message):
    p = clinic.patient_a
    response = _sign_post(_client(p.user), p, **{field: value})
    assert response.status_code == 200
    page = response.content.decode()
    assert message in page
    start = page.index(f'for="id_{field}"')
    assert page.index(message) > start and page.index(message) - start < 600  # beside its field
    assert ConsentSignature.objects.count() == 0 and Consent.objects.count() == 0


@pytest.mark.parametrize("expires,message", [("", "Choose the date this consent ends."),
                                             ("today", "The expiry date must be after today"),
                                             ("past", "The expiry date must be after today")])
def test_a_part2_consent_without_a_future_expiry_is_refused(clinic, expires, message):
    p = clinic.patient_a
    day = {"": "", "today": _today(p).isoformat(),
           "past": (_today(p) - dt.timedelta(days=1)).isoformat()}[expires]
    response = _sign_post(_client(p.user), p, "part2", recipient="Riverside Primary Care",
                          purpose="referral", expires_on=day)
    assert response.status_code == 200 and message in response.content.decode()
    assert ConsentSignature.objects.count() == 0


def test_a_document_of_another_site_and_another_patients_consent_are_404(clinic):
    a, b = clinic.patient_a, clinic.patient_b
    sig_b = consents.sign(b.user, b, _doc(b, "research"), {"typed_name": b.name, "signed_on": _today(b)})
    c = _client(a.user)
    other_doc = _doc(b, "research")
    assert c.get(f"/me/consents/documents/{other_doc.pk}/sign/").status_code == 404
    assert _client(a.user).post(f"/me/consents/documents/{other_doc.pk}/sign/", {
        "token": form_token("x"), "typed_name": a.name,
        "signed_on": _today(a).isoformat()}).status_code == 404
    assert c.get(f"/me/consents/{sig_b.pk}/").status_code == 404
    assert c.get(f"/me/consents/{sig_b.pk}/signed.pdf").status_code == 404
    assert c.post(f"/me/consents/{sig_b.pk}/", {"token": form_token("y")}).status_code == 404
    assert not ConsentRevocation.objects.exists()
    clin_a = _client(clinic.clinician_a)
    assert clin_a.get(f"/patients/{b.pk}/consents/{sig_b.pk}/").status_code == 404
    assert clin_a.get(f"/patients/{a.pk}/consents/{sig_b.pk}/").status_code == 404  # not a's
    assert clin_a.get(f"/patients/{a.pk}/consents/{sig_b.pk}/signed.pdf").status_code == 404
    assert clin_a.get(f"/patients/{b.pk}/consents/paper/").status_code == 404


def test_an_old_version_cannot_be_opened_for_signing(clinic):
    p = clinic.patient_a
    v1 = _doc(p, "research")
    v2 = consents.new_version(clinic.admin, v1)
    c = _client(p.user)
    assert c.get(f"/me/consents/documents/{v1.pk}/sign/").status_code == 404
    assert c.get(f"/me/consents/documents/{v2.pk}/sign/").status_code == 200


def test_every_role_on_the_patient_and_clinician_consent_pages(clinic):
    a = clinic.patient_a
    sig = consents.sign(a.user, a, _doc(a, "care"), {"typed_name": a.name, "signed_on": _today(a)})
    doc = _doc(a, "research")
    mine = ["/me/consents/", f"/me/consents/documents/{doc.pk}/sign/", f"/me/consents/{sig.pk}/",
            f"/me/consents/{sig.pk}/signed.pdf"]
    theirs = [f"/patients/{a.pk}/consents/paper/", f"/patients/{a.pk}/consents/{sig.pk}/",
              f"/patients/{a.pk}/consents/{sig.pk}/signed.pdf"]
    anonymous = Client()
    for url in mine + theirs:
        assert anonymous.get(url).status_code == 302, url  # to the login page
    expect = {
        clinic.patient_a.user: (200, 403), clinic.patient_b.user: (404, 403),
        clinic.clinician_a: (403, 200), clinic.clinician_b: (403, 404),
        clinic.researcher: (403, 403), clinic.admin: (403, 403),
    }
    for user, (on_mine, on_theirs) in expect.items():
        c = _client(user)
        for url in mine:
            got = c.get(url).status_code
            want = 200 if (on_mine == 404 and url == "/me/consents/") else on_mine
            if on_mine == 404 and url == f"/me/consents/documents/{doc.pk}/sign/":
                want = 404  # another site's document
            assert got == want, (user.username, url, got)
        for url in theirs:
            assert c.get(url).status_code == on_theirs, (user.username, url)


def test_the_patient_page_shows_consents_and_a_clinician_records_a_paper_consent(clinic):
    p = clinic.patient_a
    c = _client(clinic.clinician_a)
    page = c.get(f"/patients/{p.pk}/").content.decode()
    assert 'id="consents"' in page and "No consent signed." in page
    form = c.get(f"/patients/{p.pk}/consents/paper/").content.decode()
    assert "Record a consent signed on paper" in form
    doc = _doc(p, "research")
    day = (_today(p) - dt.timedelta(days=3)).isoformat()
    response = c.post(f"/patients/{p.pk}/consents/paper/", {
        "token": form_token("p1"), "document": str(doc.pk), "typed_name": p.name, "signed_on": day})
    assert response.status_code == 302, response.content.decode()[:3000]
    sig = ConsentSignature.objects.get()
    assert (sig.source, sig.recorded_by, sig.signed_on.isoformat()) == ("paper", clinic.clinician_a, day)
    assert consented_patient_ids() == [p.pk]
    page = c.get(f"/patients/{p.pk}/").content.decode()
    assert "Research: <strong>signed</strong>" in page and "Signed on paper, recorded by staff" in page
    pdf = c.get(f"/patients/{p.pk}/consents/{sig.pk}/signed.pdf")
    assert hashlib.sha256(pdf.content).hexdigest() == sig.pdf_sha256
    assert AuditEntry.objects.filter(user=clinic.clinician_a, action="view", patient=p,
                                     model="consent-signed-copy").exists()
    # the patient revoked it in writing: the clinician records it
    response = c.post(f"/patients/{p.pk}/consents/{sig.pk}/", {"token": form_token("rv"),
                                                               "reason": "letter of 1 May"})
    assert response.status_code == 302 and consented_patient_ids() == []
    assert ConsentRevocation.objects.get().source == "paper"


def test_a_paper_consent_with_a_wrong_name_is_refused_beside_the_field(clinic):
    p = clinic.patient_a
    c = _client(clinic.clinician_a)
    response = c.post(f"/patients/{p.pk}/consents/paper/", {
        "token": form_token("p2"), "document": str(_doc(p, "care").pk), "typed_name": "Nobody",
        "signed_on": _today(p).isoformat()})
    assert response.status_code == 200
    assert "The name does not match this patient&#x27;s record." in response.content.decode()
    assert ConsentSignature.objects.count() == 0


def test_a_signed_copy_that_fails_its_hash_is_not_given_out(clinic, caplog):
    # adversarial pass: the stored bytes changed after signing (a restore, a bad edit in
    # the database); the copy was served with the old hash in X-Content-SHA256 vouching for it
    p = clinic.patient_a
    c = _client(p.user)
    assert _sign_post(c, p).status_code == 302
    sig = ConsentSignature.objects.get()
    from django.db import connection

    with connection.cursor() as cur:  # the model refuses updates; the database does not
        cur.execute(f"UPDATE {ConsentSignature._meta.db_table} SET pdf = %s WHERE id = %s",
                    [bytes(sig.pdf) + b"%tampered", sig.pk])
    response = c.get(f"/me/consents/{sig.pk}/signed.pdf")
    assert response.status_code == 409
    assert "does not match the fingerprint" in response.content.decode()
    assert "%tampered" not in response.content.decode()
    clinician = _client(clinic.clinician_a)
    assert clinician.get(f"/patients/{p.pk}/consents/{sig.pk}/signed.pdf").status_code == 409
    assert any("fails its hash" in r.getMessage() for r in caplog.records)


def test_a_spanish_patients_signing_errors_and_a_thai_patients_message_errors_are_in_their_language(
        clinic):
    from speciosa.clinic.models import Profile

    p = clinic.patient_a
    Profile.objects.filter(user=p.user).update(language="es")
    client = _client(p.user)
    page = _sign_post(client, p, typed_name="Maya Someone").content.decode()
    assert "El nombre no coincide con el que su clínica tiene para usted." in page
    assert ConsentSignature.objects.count() == 0
    Profile.objects.filter(user=p.user).update(language="th")
    page = client.post("/me/messages/", {"token": form_token("m-th"), "subject": "",
                                         "body": ""}).content.decode()
    assert "โปรดเขียนข้อความก่อนส่ง" in page or "โปรดตั้งหัวข้อการสนทนา" in page
