"""``/evidence/``: the evidence registry, every citation with its type and every claim with
its verdict; the page each alert and education statement links to."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_it_lists_every_citation_with_an_anchor_to_link_to(clinic, login):
    from speciosa.knowledge import evidence

    page = login(clinic.clinician_a).get(reverse("evidence")).content.decode()
    for citation_id in evidence.all_citations():
        assert f'id="{citation_id}"' in page, citation_id
    assert "Kruegel" in page


@pytest.mark.parametrize("who", ["clinician_a", "researcher"])
def test_every_role_may_read_it(clinic, login, who):
    assert login(getattr(clinic, who)).get(reverse("evidence")).status_code == 200


def test_a_patient_may_read_it_and_sees_no_other_patient(clinic, login):
    response = login(clinic.patient_a.user).get(reverse("evidence"))
    assert response.status_code == 200 and b"Reyes" not in response.content


def test_a_visitor_is_sent_to_log_in(client):
    response = client.get(reverse("evidence"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
