"""Rule settings attacked (issue 13, adversarial pass): an administrator in a hurry types
"1,000" for a threshold of one thousand (it was read as 1), 320 for a SOWS threshold of 32
(beyond the scale's 64 points: the rule could never fire again), or a warning threshold above
the urgent one. Each is refused with a message saying what to fix, and nothing is stored or
audited; a value that fits is stored as before."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from speciosa.clinic import rule_settings
from speciosa.clinic.models import AuditEntry, RuleSetting

pytestmark = pytest.mark.django_db


def _refused(clinic, name, raw) -> str:
    with pytest.raises(ValidationError) as exc:
        rule_settings.change(clinic.admin, name, raw, "local protocol")
    return exc.value.message_dict["value"][0]


@pytest.mark.parametrize("raw", ["1,000", "0,5", "2,0"])
def test_a_decimal_or_thousands_comma_is_refused_not_read_as_a_point(clinic, raw):
    assert "Use a point for decimals" in _refused(clinic, "prolactin_prolactinoma_ng_per_ml", raw)


@pytest.mark.parametrize(("name", "raw", "words"), [
    ("sows_moderate_points", "320", "SOWS totals run from 0 to 64"),
    ("sows_rise_points", "65", "SOWS totals run from 0 to 64"),
    ("withdrawal_cows_urgent", "49", "COWS totals run from 0 to 48"),
    ("regular_use_days_per_28", "29", "at most 28"),
    ("diary_usual_days_per_28", "30", "at most 28"),
])
def test_a_threshold_beyond_its_scale_is_refused(clinic, name, raw, words):
    assert words in _refused(clinic, name, raw)


@pytest.mark.parametrize(("name", "raw", "other"), [
    ("qtc_warning_ms", "510", "qtc_urgent_ms"),
    ("qtc_urgent_ms", "440", "qtc_warning_ms"),
    ("withdrawal_cows_moderate", "30", "withdrawal_cows_urgent"),
    ("prolactin_very_high_ng_per_ml", "300", "prolactin_prolactinoma_ng_per_ml"),
    ("liver_aminotransferase_uln_multiple", "25", "liver_aminotransferase_urgent_uln_multiple"),
])
def test_a_warning_threshold_above_its_urgent_one_is_refused(clinic, name, raw, other):
    assert other in _refused(clinic, name, raw)


def test_nothing_refused_is_stored_or_audited_and_a_fitting_value_is(clinic):
    for name, raw in (("sows_moderate_points", "320"), ("qtc_warning_ms", "510"),
                      ("prolactin_prolactinoma_ng_per_ml", "1,000")):
        with pytest.raises(ValidationError):
            rule_settings.change(clinic.admin, name, raw, "typo")
    assert not RuleSetting.objects.exists()
    assert not AuditEntry.objects.filter(action="setting-change").exists()
    rule_settings.change(clinic.admin, "sows_moderate_points", "40", "local protocol")
    rule_settings.change(clinic.admin, "prolactin_prolactinoma_ng_per_ml", "1000", "local")
    assert rule_settings.in_force()["sows_moderate_points"] == 40
    assert rule_settings.in_force()["prolactin_prolactinoma_ng_per_ml"] == 1000.0


def test_the_change_page_shows_the_message_beside_the_value(clinic, login):
    page = login(clinic.admin).post(reverse("safety_setting_change", args=["sows_moderate_points"]),
                                    {"value": "320", "reason": "typo"})
    assert page.status_code == 400
    assert "SOWS totals run from 0 to 64" in page.content.decode()
    assert not RuleSetting.objects.exists()
