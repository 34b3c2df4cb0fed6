"""Drug names as a hurried clinician, an EHR or a patient write them (issue 13, adversarial
pass): 7-hydroxymitragynine spelled as the references spell it ("7-OH-mitragynine") or with
"hydroxy" written out is the opioid 7-OH, not leaf mitragynine; "Tylenol #3" holds codeine
(it is not just paracetamol); a brand written against its strength ("Xanax1mg") is the brand."""

from __future__ import annotations

import pytest
from tests.safety.safety_builders import AS_OF, ago, by_topic, medication, substance, timeline

from speciosa.knowledge import drugs
from speciosa.pharmacology.doses import Dose
from speciosa.safety import evaluate


@pytest.mark.parametrize("name", [
    "7-OH-mitragynine", "7-OH-mitragynine tablets", "7-hydroxy-mitragynine",
    "7-hydroxy mitragynine", "7 hydroxymitragynine", "7-OH mitragynine shot",
])
def test_7_hydroxymitragynine_however_spelled_is_the_opioid_7oh(name):
    c = drugs.classify(name)
    assert "7-hydroxymitragynine" in c.ingredients, c
    assert "opioid" in c.classes
    # the whole name is 7-OH: its last part is not read as leaf mitragynine besides
    assert "mitragynine" not in c.ingredients


@pytest.mark.parametrize("name", ["7-OH-mitragynine extract", "7-hydroxy-mitragynine"])
def test_a_7oh_product_so_spelled_raises_the_potency_warning(name):
    dose = Dose(taken_at=ago(1), amount=1.0, unit="g", product=name)
    assert by_topic(evaluate(timeline(doses=[dose]), AS_OF), "potent-7oh-product")
    assert by_topic(evaluate(timeline(substances=[substance(name, 2)]), AS_OF),
                    "potent-7oh-product")
    assert by_topic(evaluate(timeline(medications=[medication(name)]), AS_OF),
                    "potent-7oh-product")


@pytest.mark.parametrize("name", ["Tylenol #3", "Tylenol 3", "Tylenol No. 3", "TYLENOL #4 tab",
                                  "co-codamol 30/500"])
def test_tylenol_with_a_number_and_co_codamol_hold_codeine(name):
    c = drugs.classify(name)
    assert set(c.ingredients) == {"acetaminophen", "codeine"}, c
    assert "opioid" in c.classes


@pytest.mark.parametrize(("name", "ingredient"), [
    ("Xanax1mg", "alprazolam"), ("Valium5mg", "diazepam"), ("xanax0.5mg", "alprazolam"),
    ("Suboxone8mg/2mg", "buprenorphine"), ("methadone60mg", "methadone"),
])
def test_a_brand_written_against_its_strength_is_the_brand(name, ingredient):
    c = drugs.classify(name)
    assert ingredient in c.ingredients and not c.unknown, c


@pytest.mark.parametrize("name", ["b12", "vitamin d3", "omega3"])
def test_letters_against_digits_do_not_invent_a_drug(name):
    assert drugs.classify(name).unknown
