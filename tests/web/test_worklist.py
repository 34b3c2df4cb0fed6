"""``/worklist/``: the open alerts of the clinician's care teams, most severe and oldest first."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_it_lists_my_teams_alerts_and_not_the_other_teams(clinic, login, open_alert):
    open_alert(clinic.patient_a, message="Quinn's prolactin is raised.")
    open_alert(clinic.patient_b, message="Reyes's prolactin is raised.")
    page = login(clinic.clinician_a).get(reverse("worklist")).content.decode()
    assert "(1 open)" in page
    assert "Quinn&#x27;s prolactin is raised." in page
    assert "Reyes" not in page


def test_an_urgent_alert_comes_before_a_warning(clinic, login, open_alert):
    open_alert(clinic.patient_a, message="the warning")
    open_alert(clinic.patient_a, message="the urgent one", rule="other-rule", severity="urgent")
    page = login(clinic.clinician_a).get(reverse("worklist")).content.decode()
    assert page.index("the urgent one") < page.index("the warning")


def test_a_resolved_alert_is_not_on_the_worklist(clinic, login, open_alert):
    from speciosa.clinic.models import Alert

    alert = open_alert(clinic.patient_a, message="dealt with")
    Alert.objects.filter(pk=alert.pk).update(status=Alert.Status.RESOLVED)
    page = login(clinic.clinician_a).get(reverse("worklist")).content.decode()
    assert "dealt with" not in page and "Nothing needs attention right now." in page


@pytest.mark.parametrize("page", ["abc", "-1", "999", ""])
def test_a_bad_page_number_shows_a_page_that_exists(clinic, login, open_alert, page):
    open_alert(clinic.patient_a)
    response = login(clinic.clinician_a).get(reverse("worklist"), {"page": page})
    assert response.status_code == 200
    assert "Prolactin 41.7 ng/mL is above the reference range." in response.content.decode()


@pytest.mark.parametrize("who", ["patient_user_a", "researcher", "admin"])
def test_only_clinicians_see_the_worklist(clinic, login, who):
    user = clinic.patient_a.user if who == "patient_user_a" else getattr(clinic, who)
    assert login(user).get(reverse("worklist")).status_code == 403
