"""Issue 15: the demo (``SPECIOSA_DEBUG`` on) never shows Django's debug pages (the URL
list, a traceback) to anyone; a 404 and a 500 are Speciosa's own pages; the favicon is there."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/no-such-page/", "/me/diary/2099-01-01/", "/learn/no-such-page/"])
def test_a_patient_in_the_demo_gets_speciosas_404_without_the_url_list(clinic, login, settings, path):
    settings.DEBUG = True
    response = login(clinic.patient_a.user).get(path)
    assert response.status_code == 404
    page = response.content.decode()
    assert "Not found" in page and "Speciosa" in page
    assert "URLconf" not in page and "api/v1/" not in page and "Django tried" not in page


def test_a_server_error_is_speciosas_page_without_a_traceback(clinic, settings):
    from django.urls import path

    def broken(request):
        raise RuntimeError("secret detail of the failure")

    from speciosa import urls

    settings.DEBUG = False
    settings.ROOT_URLCONF = type("U", (), {"urlpatterns": [path("boom/", broken),
                                                           *urls.urlpatterns]})
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong" in page and "Nothing you entered on it was saved half-way" in page
    assert "secret detail" not in page and "Traceback" not in page


def test_the_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("speciosa/favicon.svg")
    assert client.get(response["Location"]).status_code == 200
