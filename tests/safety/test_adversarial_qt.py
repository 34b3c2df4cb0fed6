"""qt-risk attacked (issue 13, adversarial pass): a QTc reported as an upper bound ("< 460
ms") says the interval is below that value; it was read as at least it, a warning (and
"<= 0.52 s" as urgent). A bound below the threshold raises nothing; a lower bound is at least
its value and is shown with its comparator."""

from __future__ import annotations

from speciosa.safety import evaluate

from .safety_builders import AS_OF, by_topic, lab, timeline


def qt(*labs):
    return by_topic(evaluate(timeline(labs=list(labs)), AS_OF), "qt-risk")


def test_a_qtc_reported_as_an_upper_bound_is_not_read_as_at_least_that():
    assert qt(lab("qtc", 460, "ms", days=3, comparator="<")) is None
    assert qt(lab("qtc", 0.52, "s", days=3, comparator="<=")) is None


def test_a_lower_bound_is_at_least_its_value_and_says_so():
    f = qt(lab("qtc", 500, "ms", days=3, comparator=">="))
    assert f.severity == "urgent" and "QTc >=500 ms" in f.message
    assert qt(lab("qtc", 460, "ms", days=3)).severity == "warning"
