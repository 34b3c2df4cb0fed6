"""Liver rule attacked (issue 13, adversarial pass): an INR counts as a sign of severe
liver injury only when it was measured with the liver tests it is read with (at most
``liver_samples_max_days_apart`` days from one of them), as Hy's law needs concurrent
samples; an INR of two months before today's ALT is not "INR above 1.5 with liver injury"."""

from __future__ import annotations

from speciosa.safety import evaluate

from .safety_builders import AS_OF, by_topic, lab, timeline


def liver(*labs, settings=None):
    return by_topic(evaluate(timeline(labs=list(labs)), AS_OF, settings), "liver-injury")


def test_an_inr_from_two_months_before_the_liver_tests_does_not_make_them_urgent():
    f = liver(lab("alt", 300.0, "U/L", days=1), lab("inr", 2.0, "{INR}", days=60))
    assert f.severity == "warning", f.message
    assert "a sign of severe injury" not in f.message
    assert "not measured within 7 days" in f.message  # said, so that it is repeated
    assert f.evidence["labs"]["inr"]["value"] == 2.0


def test_an_inr_measured_with_the_liver_tests_is_urgent():
    f = liver(lab("alt", 300.0, "U/L", days=1), lab("inr", 2.0, "{INR}", days=3))
    assert f.severity == "urgent" and "INR above 1.5 with liver injury" in f.message


def test_the_window_is_the_setting():
    labs = (lab("alt", 300.0, "U/L", days=1), lab("inr", 2.0, "{INR}", days=12))
    assert liver(*labs).severity == "warning"
    assert liver(*labs, settings={"liver_samples_max_days_apart": 14}).severity == "urgent"


def test_a_later_normal_inr_is_the_one_read():
    f = liver(lab("alt", 300.0, "U/L", days=1), lab("inr", 2.0, "{INR}", days=3),
              lab("inr", 1.1, "{INR}", days=1))
    assert f.severity == "warning"
