"""The patient's app offline (issue 17, docs/offline.md), server side: the manifest, the
service worker and its vendored Workbox, the sync endpoint, which pages may be kept on the
phone, the replay of a queued diary (one record per token, CSRF from a fresh token, an ended
session stores nothing) and log out telling the browser to delete what it kept."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from speciosa.clinic.models import DiaryDay, Dose
from speciosa.web import offline_views

from .conftest import diary_post

pytestmark = pytest.mark.django_db
STATIC = Path(__file__).resolve().parents[2] / "src/speciosa/web/static/speciosa"
REPLAY = {"HTTP_X_SPECIOSA_REPLAY": "1"}


def test_the_manifest_is_the_patient_app_with_its_icons_and_the_css_theme_colour(client):
    r = client.get("/me/manifest.webmanifest")
    assert r.status_code == 200 and r["Content-Type"] == "application/manifest+json"
    m = json.loads(r.content)
    assert m["start_url"] == "/me/" and m["scope"] == "/me/" and m["display"] == "standalone"
    sizes = {(i["sizes"], i["purpose"]) for i in m["icons"]}
    assert sizes == {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")}
    for icon in m["icons"]:
        assert (STATIC / icon["src"].split("/static/speciosa/")[1]).is_file()
    css = (STATIC / "speciosa.css").read_text()
    assert re.search(r"--accent:\s*" + m["theme_color"], css)


def test_the_service_worker_is_served_from_me_with_its_scope_and_no_cdn(client):
    r = client.get("/me/sw.js")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/javascript")
    assert r["Service-Worker-Allowed"] == "/me/" and r["Cache-Control"] == "no-cache"
    code = r.content.decode()
    config = json.loads(code.split("\n", 1)[0].removeprefix("self.SPECIOSA_OFFLINE = ").rstrip(";"))
    assert config["scope"] == "/me/"
    assert config["workbox"] == f"/static/speciosa/workbox/{offline_views.WORKBOX_VERSION}"
    assert "https://" not in code and "http://" not in code
    vendored = STATIC / "workbox" / offline_views.WORKBOX_VERSION
    for name in ["workbox-sw.js", "workbox-core.prod.js", "workbox-routing.prod.js",
                 "workbox-strategies.prod.js", "workbox-precaching.prod.js", "workbox-expiration.prod.js",
                 "LICENSE", "VERSION.txt"]:
        assert (vendored / name).is_file(), name
    assert f"Workbox {offline_views.WORKBOX_VERSION}" in (vendored / "VERSION.txt").read_text()
    package = json.loads((STATIC.parents[4] / "tools/workbox/package.json").read_text())
    assert set(package["devDependencies"].values()) == {offline_views.WORKBOX_VERSION}
    # every file the worker keeps at install is served
    for entry in config["shell"]:
        assert client.get(entry["url"]).status_code == 200, entry["url"]


def test_the_sync_endpoint_answers_the_patient_only(clinic, login):
    assert Client().get("/me/sync/").status_code == 302  # to log in
    staff = login(clinic.clinician_a)
    assert staff.get("/me/sync/").status_code == 403


def test_the_sync_endpoint_gives_a_csrf_token_and_fresh_form_tokens_the_diary_accepts(clinic):
    from tests.conftest import verified_login

    client = verified_login(Client(enforce_csrf_checks=True), clinic.patient_a.user)
    client.get("/me/")  # a CSRF cookie, as a page visit sets
    r = client.get("/me/sync/")
    assert r.status_code == 200 and "no-store" in r["Cache-Control"]
    body = r.json()
    assert body["user"] == clinic.patient_a.user.pk and len(body["tokens"]) == offline_views.POOL_SIZE
    assert len(set(body["tokens"])) == offline_views.POOL_SIZE
    post = diary_post()
    post["token"] = body["tokens"][0]  # no csrfmiddlewaretoken: the worker sends the header
    url = reverse("diary_day", args=[timezone.localdate().isoformat()])
    r = client.post(url, post, HTTP_X_CSRFTOKEN=body["csrf"], **REPLAY)
    assert r.status_code == 201 and r.json() == {"saved": True}
    assert Dose.objects.count() == 1


def test_a_queued_diary_without_a_valid_csrf_token_is_refused_and_stores_nothing(clinic):
    from tests.conftest import verified_login

    client = verified_login(Client(enforce_csrf_checks=True), clinic.patient_a.user)
    client.get("/me/")
    r = client.post(reverse("diary_today"), diary_post(), HTTP_X_CSRFTOKEN="x" * 32, **REPLAY)
    assert r.status_code == 403 and Dose.objects.count() == 0


def test_a_queued_diary_sent_twice_stores_one_record(clinic, login):
    client = login(clinic.patient_a.user)
    url = reverse("diary_day", args=[timezone.localdate().isoformat()])
    first = client.post(url, diary_post(craving="4"), **REPLAY)
    again = client.post(url, diary_post(craving="4"), **REPLAY)
    assert first.status_code == 201 and again.status_code == 201
    assert Dose.objects.count() == 1 and DiaryDay.objects.count() == 1


def test_a_queued_diary_after_the_session_ended_stores_nothing_and_asks_to_log_in(clinic):
    r = Client().post(reverse("diary_today"), diary_post(), **REPLAY)
    assert r.status_code == 302 and r["Location"].startswith(reverse("login"))
    assert Dose.objects.count() == 0


def test_a_queued_diary_the_server_refuses_is_the_form_with_its_message(clinic, login):
    r = login(clinic.patient_a.user).post(reverse("diary_today"), diary_post(**{"doses-0-amount": "-2"}), **REPLAY)
    assert r.status_code == 200 and b"more than 0" in r.content
    assert Dose.objects.count() == 0


def test_only_the_patients_own_pages_under_me_may_be_kept_on_the_phone(clinic, login):
    patient = login(clinic.patient_a.user)
    for url in ["/me/", "/me/diary/", "/me/charts.json", "/me/learn/", "/me/learn/prolactin/",
                "/me/offline/help/"]:
        r = patient.get(url)
        assert r.status_code == 200, url
        assert r[offline_views.OFFLINE_HEADER] == "keep", url
        assert "no-store" in r["Cache-Control"], url  # no HTTP cache keeps it all the same
    for url in ["/me/?saved=1", "/learn/", "/learn/prolactin/", "/me/messages/", "/me/record/",
                "/me/sync/", "/account/security/"]:
        assert offline_views.OFFLINE_HEADER not in patient.get(url), url
    staff = Client()
    from tests.conftest import verified_login

    verified_login(staff, clinic.clinician_a)
    for url in ["/learn/", f"/patients/{clinic.patient_a.pk}/", "/patients/"]:
        r = staff.get(url)
        assert offline_views.OFFLINE_HEADER not in r, url


def test_the_patient_pages_carry_the_app_and_staff_pages_do_not(clinic, login):
    page = login(clinic.patient_a.user).get("/me/").content.decode()
    assert 'rel="manifest" href="/me/manifest.webmanifest"' in page
    assert 'name="apple-mobile-web-app-capable"' in page and 'rel="apple-touch-icon"' in page
    assert "speciosa/pwa.js" in page and "data-offline-status" in page
    assert "<script>" not in page  # CSP: no inline script
    staff = Client()
    from tests.conftest import verified_login

    verified_login(staff, clinic.clinician_a)
    for url in ["/patients/", "/learn/", "/worklist/"]:
        html = staff.get(url).content.decode()
        assert "manifest" not in html and "pwa.js" not in html, url


def test_log_out_tells_the_browser_to_delete_what_it_kept(clinic, login):
    client = login(clinic.patient_a.user)
    r = client.post(reverse("logout"))
    assert r.status_code == 302
    assert r["Clear-Site-Data"] == '"cache", "storage"'


def test_log_out_everywhere_deletes_this_devices_copies_too(clinic, login):
    r = login(clinic.patient_a.user).post(reverse("logout_everywhere"))
    assert r.status_code == 302 and "storage" in r["Clear-Site-Data"]


def test_the_offline_page_names_nobody(clinic, login):
    html = login(clinic.patient_a.user).get("/me/offline/").content.decode()
    assert "You are offline" in html
    assert "Maya" not in html and "pat_a" not in html and "Quinn" not in html


def test_the_offline_help_page_has_the_patients_site_numbers(clinic, login):
    html = login(clinic.patient_a.user).get("/me/offline/help/").content.decode()
    assert "Get help now" in html and 'href="tel:911"' in html and "saved on this phone only" in html
    assert Client().get("/me/offline/help/").status_code == 302
    from tests.conftest import verified_login

    staff = verified_login(Client(), clinic.clinician_a)
    assert staff.get("/me/offline/help/").status_code == 403


def test_the_diary_list_shows_no_help_when_nothing_urgent_was_written(clinic, login):
    html = login(clinic.patient_a.user).get("/me/").content.decode()
    assert "Get help now" not in html and "tel:911" not in html
