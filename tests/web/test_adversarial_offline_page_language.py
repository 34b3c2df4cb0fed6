"""The offline page kept on the phone follows the patient's language (issue 17, adversarial
pass).

The service worker keeps /me/offline/ in its precache, fetched once when the worker installs,
in the language of the login at that moment; its revision was the template's hash alone, so
the worker never changed when the patient changed language (or when another patient logged in
on a shared phone): the page shown offline stayed in the first language for good. Its revision
now names the language, so the worker the browser fetches next differs and keeps the page
again, in the new language."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse
from tests.conftest import verified_login

from speciosa.clinic.models import Profile

pytestmark = pytest.mark.django_db


def offline_revision(client) -> str:
    code = client.get("/me/sw.js").content.decode()
    head = code.split("\n", 1)[0]
    assert head.startswith("self.SPECIOSA_OFFLINE = ")
    config = json.loads(head[len("self.SPECIOSA_OFFLINE = "):].rstrip(";"))
    (entry,) = [e for e in config["shell"] if e["url"] == config["offline"]]
    return entry["revision"]


def test_a_change_of_language_changes_the_worker_and_the_kept_offline_page(clinic):
    Profile.objects.filter(user=clinic.patient_a.user).update(language="es")
    client = verified_login(Client(), clinic.patient_a.user)
    spanish = offline_revision(client)
    assert "No tiene conexión" in client.get(reverse("offline_page")).content.decode()

    r = client.post(reverse("account_language"), {"language": "th"})
    assert r.status_code == 302
    thai = offline_revision(client)
    assert thai != spanish  # the browser installs the new worker, which keeps the page again
    assert "คุณออฟไลน์อยู่" in client.get(reverse("offline_page")).content.decode()
    assert offline_revision(client) == thai  # the same language, the same worker

    # a shared phone: patient A (Thai) logs out, patient B (English) logs in
    client.post(reverse("logout"))
    Profile.objects.filter(user=clinic.patient_b.user).update(language="en")
    verified_login(client, clinic.patient_b.user)
    english = offline_revision(client)
    assert english not in (spanish, thai)
    assert "You are offline" in client.get(reverse("offline_page")).content.decode()
