"""The co-use and CYP3A rules read the drug table: brand names with strengths count, 7-OH is
an opioid, antagonists are not, and the CYP3A weights follow the FDA categories. Each case
below gave another result with the two old name lists (safety.drugs and the prolactin
table)."""

from __future__ import annotations

from speciosa.safety import evaluate

from .safety_builders import AS_OF, by_topic, daily_doses, medication, substance, timeline

KRATOM_NOW = daily_doses(3, 0, 2.0)


def run(tl):
    return evaluate(tl, AS_OF)


def test_a_brand_name_with_a_strength_is_co_use():
    f = by_topic(run(timeline(doses=KRATOM_NOW, medications=[medication("Xanax 1 mg")])),
                 "co-use-sedative")
    assert f.evidence["classes"] == ["benzodiazepine"]
    assert f.evidence["co_use"][0]["name"] == "Xanax 1 mg"
    f = by_topic(run(timeline(doses=KRATOM_NOW, medications=[medication("Suboxone 8/2 mg")])),
                 "co-use-sedative")
    assert f.evidence["classes"] == ["opioid"]


def test_a_reported_7oh_product_with_kratom_is_opioid_co_use():
    tl = timeline(doses=KRATOM_NOW, substances=[substance("7-OH tablets", 2)])
    assert by_topic(run(tl), "co-use-sedative").evidence["classes"] == ["opioid"]


def test_naltrexone_is_an_antagonist_and_no_sedative_co_use():
    tl = timeline(doses=KRATOM_NOW, medications=[medication("Vivitrol 380 mg"),
                                                 medication("naltrexone 50 mg")])
    assert by_topic(run(tl), "co-use-sedative") is None


def test_an_unknown_medication_is_not_mistaken_for_a_sedative():
    tl = timeline(doses=KRATOM_NOW, medications=[medication("benzonatate 100 mg")])
    findings = run(tl)
    # only the finding that says it could not be checked (issue 19)
    assert [f.rule for f in findings] == ["SAF-MED-UNCLASSIFIED"]
    assert findings[0].evidence == {"not_classified": ["benzonatate 100 mg"]}


def test_midazolam_and_triazolam_still_warn_as_sensitive_index_substrates():
    for name in ("midazolam 7.5 mg", "Halcion 0.25 mg"):
        f = by_topic(run(timeline(doses=KRATOM_NOW, medications=[medication(name)])),
                     "interaction-cyp3a")
        assert (f.severity, f.evidence["narrow_margin"]) == ("warning", [name])


def test_everolimus_is_an_fda_sensitive_substrate_not_a_narrow_range_one():
    f = by_topic(run(timeline(doses=KRATOM_NOW, medications=[medication("everolimus")])),
                 "interaction-cyp3a")
    assert (f.severity, f.evidence["sensitive"], f.evidence["narrow_margin"]) == (
        "info", ["everolimus"], [])


def test_oxycontin_warns_through_its_boxed_warning_and_cites_it():
    f = by_topic(run(timeline(doses=KRATOM_NOW, medications=[medication("OxyContin 20 mg")])),
                 "interaction-cyp3a")
    assert f.severity == "warning"
    assert "fda-oxycontin-label" in f.citations


def test_moderate_sensitive_and_other_substrates_do_not_fire_the_cyp3a_rule():
    tl = timeline(doses=KRATOM_NOW, medications=[medication("alprazolam")])
    assert by_topic(run(tl), "interaction-cyp3a") is None


def test_methadone_and_buprenorphine_fire_the_cyp3a_rule_as_opioid_substrates():
    """Issue 13: version 1 of SAF-DDI-CYP3A left the two OUD opioids out."""
    for name in ("methadone", "buprenorphine"):
        tl = timeline(doses=KRATOM_NOW, medications=[medication(name)])
        f = by_topic(run(tl), "interaction-cyp3a")
        assert f.severity == "info" and f.evidence["opioid_substrates"] == [name], name
        assert "sensitive CYP3A substrate" not in f.message
