"""The drug knowledge table: names (generic, brand, with strengths) resolve to ingredients
and classes with evidence; an unknown name is reported as not classified; docs/drugs.md is
generated from the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from speciosa.cli import main
from speciosa.knowledge import drugs
from speciosa.knowledge.evidence import all_citations, all_claims, missing_references
from speciosa.knowledge.prolactin import prolactin_raising_medication

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize(("name", "ingredients"), [
    ("Xanax", ("alprazolam",)), ("Valium", ("diazepam",)), ("Klonopin", ("clonazepam",)),
    ("Ativan", ("lorazepam",)), ("Subutex", ("buprenorphine",)),
    ("Suboxone", ("buprenorphine", "naloxone")), ("Sublocade", ("buprenorphine",)),
    ("Zubsolv", ("buprenorphine", "naloxone")), ("Dolophine", ("methadone",)),
    ("Methadose", ("methadone",)), ("Vivitrol", ("naltrexone",)), ("Revia", ("naltrexone",)),
    ("Neurontin", ("gabapentin",)), ("Gralise", ("gabapentin",)), ("Lyrica", ("pregabalin",)),
    ("OxyContin", ("oxycodone",)), ("Percocet", ("oxycodone", "acetaminophen")),
    ("Vicodin", ("hydrocodone", "acetaminophen")), ("Norco", ("hydrocodone", "acetaminophen")),
    ("Dilaudid", ("hydromorphone",)), ("Duragesic", ("fentanyl",)), ("Ultram", ("tramadol",)),
])
def test_brand_names_resolve_to_their_ingredients(name, ingredients):
    c = drugs.classify(name)
    assert c.ingredients == ingredients
    assert not c.unknown


@pytest.mark.parametrize(("name", "ingredient", "matched"), [
    ("Xanax 1 mg", "alprazolam", ("xanax",)),
    ("XANAX 0.5MG tablets", "alprazolam", ("xanax",)),
    ("oxycodone 10mg tablet", "oxycodone", ("oxycodone",)),
    ("Methadone oral solution 60 mg/day", "methadone", ("methadone",)),
    ("buprenorphine-naloxone 8/2 mg film", "buprenorphine", ("buprenorphine", "naloxone")),
    ("7-OH tablets 15 mg", "7-hydroxymitragynine", ("7-oh",)),
])
def test_strengths_and_forms_are_ignored(name, ingredient, matched):
    c = drugs.classify(name)
    assert c.ingredient == ingredient
    assert c.matched == matched


@pytest.mark.parametrize("name", ["unobtainium 5 mg", "", "5 mg", "aripiprazole", "benzonatate",
                                  "methadon", "Xanaxx"])
def test_a_name_the_table_does_not_know_is_reported_not_classified(name):
    c = drugs.classify(name)
    assert c.unknown is True
    assert c.classes == () and c.ingredients == () and c.ingredient is None
    assert c.as_json()["unknown"] is True


def test_a_known_name_without_a_class_is_classified_not_unknown():
    c = drugs.classify("Paracetamol 500 mg")
    assert (c.unknown, c.ingredients, c.classes) == (False, ("acetaminophen",), ())


def test_class_words_name_the_class_without_an_ingredient():
    assert drugs.classify("benzos").classes == ("benzodiazepine",)
    assert drugs.classify("opiates").classes == ("opioid", "prolactin-raising")
    assert drugs.classify("benzos").ingredients == ()


def _assignment(name: str, class_id: str) -> drugs.Assignment:
    found = drugs.classify(name).assignments(class_id)
    assert len(found) == 1, (name, class_id, found)
    return found[0][1]


def test_treatments_of_opioid_use_disorder_are_marked_and_naltrexone_is_no_agonist():
    assert _assignment("methadone", "opioid").oud_treatment
    assert _assignment("buprenorphine", "opioid").role == "partial agonist"
    assert _assignment("buprenorphine", "opioid").oud_treatment
    naltrexone = drugs.classify("naltrexone")
    assert not naltrexone.has("opioid")
    assert _assignment("naltrexone", "opioid-antagonist").role == "antagonist"
    assert _assignment("naltrexone", "opioid-antagonist").oud_treatment
    assert not drugs.classify("naloxone").has("opioid")
    assert not _assignment("oxycodone", "opioid").oud_treatment


def test_7_hydroxymitragynine_is_in_the_opioid_list_and_counts_as_kratom():
    c = drugs.classify("7-hydroxymitragynine")
    assert c.has("opioid") and c.has("kratom")
    assert "7oh-is-an-opioid" in _assignment("7-hydroxymitragynine", "opioid").citations
    assert not drugs.classify("kratom").has("opioid")


def test_cyp3a_categories_follow_the_fda_table():
    # midazolam and triazolam are sensitive index substrates, not narrow-range ones
    for name in ("midazolam", "triazolam"):
        a = _assignment(name, "cyp3a-substrate")
        assert (a.sensitivity, a.narrow_range) == ("sensitive-index", False)
    assert _assignment("fentanyl", "cyp3a-substrate").narrow_range
    assert _assignment("tacrolimus", "cyp3a-substrate").sensitivity == "sensitive"
    assert _assignment("alprazolam", "cyp3a-substrate").sensitivity == "moderate-sensitive"
    everolimus = _assignment("everolimus", "cyp3a-substrate")
    assert (everolimus.sensitivity, everolimus.narrow_range) == ("sensitive", False)
    for name in ("methadone", "buprenorphine"):
        assert _assignment(name, "cyp3a-substrate").sensitivity == "substrate"
    assert "fda-ddi-table" in _assignment("midazolam", "cyp3a-substrate").citations


def test_methadone_is_qt_prolonging_with_its_sources():
    a = _assignment("Dolophine 10 mg", "qt-prolonging")
    assert a.risk == "known"
    assert {"krantz-2009-methadone-qtc", "fda-dolophine-label"} <= set(a.citations)
    first = next(d for d in drugs.all_drugs() if "qt-prolonging" in d.assignments)
    assert first.name == "methadone"


def test_prolactin_raising_keeps_the_interpretations_table_and_reads_brands():
    assert prolactin_raising_medication("Risperdal 2 mg").name == "risperidone"
    assert prolactin_raising_medication("tapentadol").drug_class == "opioid (mu agonist)"
    assert prolactin_raising_medication("buprenorphine") is None
    assert prolactin_raising_medication("naltrexone") is None
    assert prolactin_raising_medication("aripiprazole") is None
    effect = prolactin_raising_medication("heroin")
    assert effect.citations == ("opioids-raise-prolactin", "medications-raise-prolactin")


# care.md section 7: ingredient RxCUIs (and whether care.md marks them C or S)
CARE_RXNORM = {
    "buprenorphine": ("1819", True), "methadone": ("6813", True),
    "naltrexone": ("7243", True), "naloxone": ("7242", True), "alprazolam": ("596", False),
    "clonazepam": ("2598", False), "diazepam": ("3322", True), "lorazepam": ("6470", False),
    "gabapentin": ("25480", False), "pregabalin": ("187832", False),
    "oxycodone": ("7804", True), "hydrocodone": ("5489", True), "morphine": ("7052", True),
    "fentanyl": ("4337", True), "tramadol": ("10689", True), "midazolam": ("6960", True),
    "quetiapine": ("51272", False), "risperidone": ("35636", True),
    "haloperidol": ("5093", True), "metoclopramide": ("6915", True),
}


def test_rxnorm_codes_are_those_of_the_care_reference():
    coded = {d.name: (d.rxnorm, d.rxnorm_confirmed) for d in drugs.all_drugs() if d.rxnorm}
    assert coded == CARE_RXNORM


def test_every_assignment_cites_evidence_that_exists():
    for d in drugs.all_drugs():
        for a in d.assignments.values():
            assert a.citations, (d.name, a.drug_class)
            assert missing_references(a.citations) == [], (d.name, a.drug_class)
    assert missing_references(drugs.cited_ids()) == []
    assert set(drugs.cited_ids()) <= set(all_citations()) | set(all_claims())


BASE = """
[class.opioid]
label = "opioid"
cite = ["x"]
""" + "".join(f'[class.{c}]\nlabel = "{c}"\n' for c in drugs.CLASS_IDS if c != "opioid")


@pytest.mark.parametrize(("entry", "message"), [
    ('[[drug]]\nname = "a"\nbenzodiazepine = {}\n', "benzodiazepine cites no evidence"),
    ('[[drug]]\nname = "a"\nopiod = {}\n', "unknown fields or classes ['opiod']"),
    ('[[drug]]\nname = "a"\nopioid = { role = "antagonist" }\n', "opioid-antagonist only"),
    ('[[drug]]\nname = "a"\ncyp3a-substrate = { sensitivity = "narrow", cite = ["x"] }\n',
     "sensitivity 'narrow' is not one of"),
    ('[[drug]]\nname = "a"\nsynonyms = ["A"]\n', "a name is given twice"),
    ('[[drug]]\nname = "A"\n', "lower-case generic name"),
    ('[[drug]]\nname = "a"\nprolactin-raising = { group = "none" }\n', "needs a known group"),
])
def test_a_malformed_table_is_refused_with_a_message_that_names_the_entry(entry, message):
    with pytest.raises(drugs.DrugTableError) as err:
        drugs.load_table(BASE + entry, "test.toml")
    assert message in str(err.value)
    assert "test.toml: drug 1" in str(err.value)


def test_the_checked_in_docs_drugs_md_is_generated_from_the_table():
    assert (DOCS / "drugs.md").read_text("utf-8") == drugs.markdown(), (
        "docs/drugs.md is out of date: run `speciosa drugs --markdown > docs/drugs.md`")


def test_the_drugs_command_reports_unknown_names_and_brands(capsys):
    assert main(["drugs", "Xanax 1 mg", "zzz"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["Xanax 1 mg: alprazolam; benzodiazepine, CYP3A substrate",
                   "zzz: not classified (the drug table does not know this name)"]
    assert main(["drugs"]) == 2
    assert "give at least one" in capsys.readouterr().err


# ---------------------------------------------------------------- issue 19: codes and sites

def test_every_rxcui_names_its_source_in_the_care_reference():
    for d in drugs.all_drugs():
        if d.rxnorm:
            assert d.rxnorm_source.startswith("care.md §7, "), d.name
            assert (", S:" in d.rxnorm_source) == (not d.rxnorm_confirmed), d.name


def test_get_and_search_find_entries_by_generic_and_brand_name():
    assert drugs.get("Methadone").rxnorm == "6813"
    assert drugs.get("dolophine") is None  # get is by generic name only
    hits = [(d.name, n) for d, n in drugs.search("subo")]
    assert ("buprenorphine", "Suboxone") in hits and ("naloxone", "Suboxone") in hits
    assert [d.name for d, _ in drugs.search("benzo")] == []  # groups are left out
    assert drugs.search("bup")[0][0].name == "buprenorphine"
    assert drugs.search("   ") == []


@pytest.mark.parametrize(("entry", "message"), [
    ('[[drug]]\nname = "a"\nrxnorm = "123"\n', "needs rxnorm_source"),
    ('[[drug]]\nname = "a"\nrxnorm = "12x"\nrxnorm_source = "s"\n', "must be an RxCUI"),
    ('[[drug]]\nname = "a"\n[[drug]]\nname = "a"\n', "is already an entry"),
])
def test_bad_codes_and_duplicate_entries_are_refused(entry, message):
    with pytest.raises(drugs.DrugTableError, match=message):
        drugs.load_table(BASE + entry)


def test_a_site_extends_the_table_with_its_own_file():
    site = '[[drug]]\nname = "zyzzolex"\nbrands = ["Zyz"]\nbenzodiazepine = { cite = ["x"] }\n'
    table = drugs.load_table(BASE + '[[drug]]\nname = "a"\n', "base", [(site, "site.toml")])
    added = next(d for d in table.drugs if d.name == "zyzzolex")
    assert added.origin == "site.toml" and "benzodiazepine" in added.assignments
    with pytest.raises(drugs.DrugTableError, match="already an entry"):
        drugs.load_table(BASE + '[[drug]]\nname = "a"\n', "base",
                         [('[[drug]]\nname = "a"\n', "site.toml")])
    with pytest.raises(drugs.DrugTableError, match=r"\[\[drug\]\] entries only"):
        drugs.load_table(BASE, "base", [('[class.opioid]\nlabel = "x"\n', "site.toml")])


def test_the_site_file_named_by_the_environment_is_read(tmp_path, monkeypatch):
    path = tmp_path / "site-drugs.toml"
    path.write_text('[[drug]]\nname = "zyzzolex"\nbenzodiazepine = {}\n', "utf-8")
    monkeypatch.setenv(drugs.EXTRA_ENV, str(path))
    drugs._table.cache_clear()
    drugs.classify.cache_clear()
    try:
        assert drugs.classify("Zyzzolex 5 mg").has("benzodiazepine")
        assert drugs.get("zyzzolex").origin == str(path)
    finally:
        monkeypatch.delenv(drugs.EXTRA_ENV)
        drugs._table.cache_clear()
        drugs.classify.cache_clear()
    assert drugs.classify("Zyzzolex 5 mg").unknown
