"""Issue 15: the password pages are Speciosa's (not "Django administration"), and a forgotten
password is reset by an e-mailed link: the same answer whether or not a login has the
address, limited per address and per e-mail address, audited, never logging in by itself."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from speciosa.clinic.models import AuditEntry
from speciosa.web.models import CredentialNotice

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new long passphrase"


@pytest.fixture
def with_email(clinic):
    user = clinic.patient_a.user
    user.email = "maya@example.invalid"
    user.save()
    return user


def test_the_password_change_page_is_speciosas(clinic, login):
    page = login(clinic.clinician_a).get("/account/password/").content.decode()
    assert "Change your password" in page and "Speciosa" in page
    assert "Django administration" not in page


def test_the_login_page_offers_the_forgotten_password_link(client):
    assert 'href="/account/password/forgot/"' in client.get("/login/").content.decode()


def test_a_reset_link_is_mailed_used_once_and_audited(client, with_email):
    response = client.post("/account/password/forgot/", {"email": "MAYA@example.invalid"})
    assert response.status_code == 302 and response["Location"] == "/account/password/forgot/sent/"
    assert "Check your e-mail" in client.get(response["Location"]).content.decode()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["maya@example.invalid"]
    link = re.search(r"http://testserver(/account/password/reset/\S+/)", mail.outbox[0].body).group(1)
    requested = AuditEntry.objects.get(action="credentials", after__what="password-reset-requested")
    assert requested.object_id == with_email.pk and "maya" not in str(requested.after).lower()

    form = client.get(link, follow=True)
    assert "Set a new password" in form.content.decode()
    done = client.post(form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD,
                                                    "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/account/password/reset/done/"
    with_email.refresh_from_db()
    assert with_email.check_password(NEW_PASSWORD)
    assert "_auth_user_id" not in client.session  # a reset never logs in
    assert AuditEntry.objects.filter(action="credentials", after__what="password-reset",
                                     user=with_email).count() == 1
    assert CredentialNotice.objects.filter(user=with_email, text__contains="reset with a link").exists()
    again = client.get(link, follow=True).content.decode()
    assert "This link does not work any more" in again


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client, clinic):
    response = client.post("/account/password/forgot/", {"email": "nobody@example.invalid"})
    assert response.status_code == 302 and response["Location"] == "/account/password/forgot/sent/"
    assert mail.outbox == []
    entry = AuditEntry.objects.get(action="credentials", model="password-reset")
    assert entry.after["matched"] == 0 and "nobody" not in str(entry.after)


def test_a_weak_new_password_is_refused_with_the_reason(client, with_email):
    client.post("/account/password/forgot/", {"email": "maya@example.invalid"})
    link = re.search(r"http://testserver(/account/password/reset/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    response = client.post(form.redirect_chain[-1][0], {"new_password1": "short",
                                                        "new_password2": "short"})
    assert response.status_code == 200
    assert "at least 15 characters" in response.content.decode()
    with_email.refresh_from_db()
    assert not with_email.check_password("short")


def test_requests_are_limited_per_email_address_from_anywhere(client, with_email, settings):
    settings.PASSWORD_RESET_RATE = "2/hour"
    for n in range(3):
        response = client.post("/account/password/forgot/", {"email": "maya@example.invalid"},
                               REMOTE_ADDR=f"192.0.2.{n + 1}")
        assert response.status_code == 302
    assert len(mail.outbox) == 2  # the third answer is the same, but sends nothing


def test_requests_are_limited_per_client_address(client, clinic, settings):
    settings.PASSWORD_RESET_RATE = "2/hour"
    for n in range(2):
        assert client.post("/account/password/forgot/",
                           {"email": f"person{n}@example.invalid"}).status_code == 302
    limited = client.post("/account/password/forgot/", {"email": "other@example.invalid"})
    assert limited.status_code == 429 and "Too many requests" in limited.content.decode()
    assert int(limited["Retry-After"]) > 0
    assert AuditEntry.objects.filter(model="password-reset").count() == 2
