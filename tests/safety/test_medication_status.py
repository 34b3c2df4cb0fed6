"""Issue 19: the rules read a medication's status and its coded drug.

A stopped, paused, planned or mistaken medication is not current, whatever its dates; an
unknown status counts (the rules would rather ask). A coded medication is read by its drug,
whatever its name says; free text the table does not know is reported as not classified."""

from __future__ import annotations

from speciosa.safety import Medication, evaluate, timeline_from_json

from .safety_builders import AS_OF, by_topic, daily_doses, day_ago, timeline

KRATOM_NOW = daily_doses(3, 0, 2.0)


def med(name, status="active", drug=None, start=60, end=None):
    return Medication(name, day_ago(start), None if end is None else day_ago(end), drug=drug,
                      status=status)


def test_a_stopped_medication_without_a_stop_date_is_not_co_use():
    for status in ("stopped", "completed", "on-hold", "intended", "not-taken",
                   "entered-in-error"):
        tl = timeline(doses=KRATOM_NOW, medications=[med("alprazolam 1 mg", status)])
        assert by_topic(evaluate(tl, AS_OF), "co-use-sedative") is None, status


def test_active_and_unknown_statuses_count():
    for status in ("active", "unknown"):
        tl = timeline(doses=KRATOM_NOW, medications=[med("alprazolam 1 mg", status)])
        f = by_topic(evaluate(tl, AS_OF), "co-use-sedative")
        assert f.evidence["classes"] == ["benzodiazepine"], status


def test_a_coded_medication_is_read_by_its_drug_not_its_name():
    # the name as shown says nothing the table knows; the coded drug is methadone
    tl = timeline(doses=KRATOM_NOW, medications=[med("clinic liquid 40 mg", drug="methadone")])
    found = evaluate(tl, AS_OF)
    assert by_topic(found, "qt-risk").evidence["qt_medications"] == ["clinic liquid 40 mg"]
    assert by_topic(found, "interaction-cyp3a").evidence["opioid_substrates"] == [
        "clinic liquid 40 mg"]
    assert by_topic(found, "co-use-sedative").evidence["classes"] == ["opioid"]
    assert by_topic(found, "medication-not-classified") is None


def test_free_text_the_table_does_not_know_is_reported_as_not_classified():
    tl = timeline(medications=[med("Zyzzolex 5 mg"), med("alprazolam"),
                               med("old unknown", "stopped")])
    f = by_topic(evaluate(tl, AS_OF), "medication-not-classified")
    assert f.severity == "info"
    assert f.evidence == {"not_classified": ["Zyzzolex 5 mg"]}
    assert "could not include" in f.message


def test_the_timeline_json_carries_drug_and_status():
    tl = timeline_from_json({"patient": {"sex": "male", "birth_date": "1985-04-02"},
                             "medications": [{"name": "x", "start": "2025-01-01",
                                              "drug": "methadone", "status": "stopped"}]})
    m = tl.medications[0]
    assert (m.drug, m.status, m.lookup, m.coded) == ("methadone", "stopped", "methadone", True)
    assert not m.is_current(day_ago(0))
