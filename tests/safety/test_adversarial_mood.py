"""Mood rules attacked (issue 13, adversarial pass): a PHQ-9 or GAD-7 with an item left
unanswered has no total, but its answered items can already reach the severe band (a patient
who skips item 9 after answering 3 to the other eight has at least 24): the severe finding is
raised for such a response too, saying the total is at least that and which items are
unanswered; an incomplete response below the band stays silent."""

from __future__ import annotations

from speciosa.knowledge import instruments
from speciosa.safety import Assessment, evaluate

from .safety_builders import AS_OF, ago, by_topic, timeline


def _items(instrument: str, value: int, *, skip: tuple[str, ...] = ()) -> dict[str, int]:
    inst = instruments.get_instrument(instrument)
    return {i.id: value for i in inst.items if i.scored and i.id not in skip}


def _run(instrument: str, items: dict[str, int]):
    return evaluate(timeline(assessments=[Assessment(instrument, ago(2), items, None)]), AS_OF)


def test_a_phq9_with_item_9_skipped_and_24_points_is_severe_depression_and_item_9_unknown():
    findings = _run("phq9", _items("phq9", 3, skip=("self-harm",)))
    severe = by_topic(findings, "depression-severe")
    assert severe is not None and severe.severity == "warning"
    assert "at least 24" in severe.message and "item 9" in severe.message
    assert severe.evidence["total_at_least"] == 24 and severe.evidence["total"] is None
    assert severe.evidence["unanswered"] == ["self-harm"]
    assert by_topic(findings, "suicide-risk").severity == "info"


def test_a_gad7_with_one_item_skipped_and_18_points_is_severe_anxiety():
    inst = instruments.get_instrument("gad7")
    skip = next(i.id for i in inst.items if i.scored)
    severe = by_topic(_run("gad7", _items("gad7", 3, skip=(skip,))), "anxiety-severe")
    assert severe is not None and "at least 18" in severe.message


def test_an_incomplete_response_below_the_band_is_silent():
    # eight PHQ-9 items at 2: at least 16, could be 19: not surely severe
    assert by_topic(_run("phq9", _items("phq9", 2, skip=("self-harm",))),
                    "depression-severe") is None


def test_a_complete_response_reads_as_before():
    severe = by_topic(_run("phq9", _items("phq9", 3)), "depression-severe")
    assert "PHQ-9 total 27" in severe.message and severe.evidence["total"] == 27
