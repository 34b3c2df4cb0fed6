"""Issue 15: the administrator's start page leads to Speciosa's set-up pages (register a
patient, add a clinician, the rule settings), each of which opens for the administrator; the
page is Speciosa's, not "Django administration"."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db


def test_the_admin_start_page_links_to_the_set_up_pages_and_they_open(clinic, login):
    client = login(clinic.admin)
    home = client.get("/")
    assert (home.status_code, home.url) == (302, "/admin/")
    page = client.get("/admin/").content.decode()
    assert "Django administration" not in page and "Speciosa administration" in page
    links = dict(re.findall(r'<a href="(/[^"]+)"><strong>([^<]+)</strong></a>', page))
    assert links == {"/patients/new/": "Register a patient",
                     "/staff/clinicians/new/": "Add a clinician",
                     "/safety-settings/": "Rule settings"}
    for url in links:
        assert client.get(url).status_code == 200, url


def test_a_clinician_does_not_get_the_admin_start_page(clinic, login):
    client = login(clinic.clinician_a)
    response = client.get("/admin/")
    assert response.status_code in (302, 403, 404)
    assert "Register a patient" not in response.content.decode()


def test_the_staff_navigation_offers_an_administrator_only_pages_they_can_open(clinic, login):
    client = login(clinic.admin)
    page = client.get("/patients/new/").content.decode()
    nav = page[page.index("<nav"):page.index("</nav>")]
    hrefs = re.findall(r'href="(/[^"]*)"', nav)
    for href in ("/admin/", "/patients/new/", "/staff/clinicians/new/", "/safety-settings/"):
        assert href in hrefs, href
    assert "/patients/" not in hrefs and "/worklist/" not in hrefs
    for href in hrefs:
        if href.startswith("/account/") or href == "/logout/":
            continue
        assert client.get(href).status_code == 200, href
