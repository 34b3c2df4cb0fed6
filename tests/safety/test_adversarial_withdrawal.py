"""Withdrawal rule attacked (issue 13, adversarial pass): a COWS or SOWS with an item left
unanswered (an imported in-progress response) has no total and raised nothing, even when
its answered items already reach the threshold (COWS at least 26 is moderately severe:
urgent). The least total it can have is read, as for the PHQ-9 and GAD-7."""

from __future__ import annotations

from speciosa.knowledge import instruments
from speciosa.safety import Assessment, evaluate

from .safety_builders import AS_OF, ago, by_topic, timeline


def _top(instrument: str, skip: int = 1) -> dict[str, int]:
    """Every scored item at its highest value, the first ``skip`` left unanswered."""
    inst = instruments.get_instrument(instrument)
    scored = [i for i in inst.items if i.scored]
    return {i.id: max(i.allowed) for i in scored[skip:]}


def _run(instrument: str, items: dict[str, int]):
    return by_topic(evaluate(timeline(assessments=[Assessment(instrument, ago(1), items, None)]),
                             AS_OF), "withdrawal-moderate")


def test_an_incomplete_cows_already_in_the_moderately_severe_band_is_urgent():
    f = _run("cows", _top("cows"))
    assert f is not None and f.severity == "urgent", f
    assert "COWS at least" in f.message and "unanswered" in f.message
    assert f.evidence["cows"]["total"] is None and f.evidence["cows"]["total_at_least"] >= 25


def test_an_incomplete_sows_at_the_level_is_a_warning():
    f = _run("sows", _top("sows"))
    assert f is not None and f.severity == "warning"
    assert "SOWS at least" in f.message


def test_an_incomplete_response_below_the_thresholds_is_silent():
    inst = instruments.get_instrument("cows")
    items = {i.id: min(i.allowed) for i in inst.items if i.scored}
    items.pop(next(iter(items)))
    assert _run("cows", items) is None
