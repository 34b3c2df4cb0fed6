"""Education content: every statement cited, readable at grade 8 or easier, and true to the
evidence on prolactin (kratom raises it; nothing says it lowers it)."""

from __future__ import annotations

import re

import pytest
import textstat

from speciosa.education import content
from speciosa.knowledge import evidence

PAGES = content.all_pages()
MAX_GRADE = 8.0
EXPECTED_PAGES = {"kratom-basics", "prolactin", "kratom-risks", "pregnancy", "mixing",
                  "oud-treatment", "urgent-help", "naloxone"}


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?:])\s+", text) if s.strip()]


LOWERING = re.compile(r"\b(lower|lowers|lowered|lowering|reduce|reduces|reduced|reducing|decrease|"
                      r"decreases|decreased|drop|drops|suppress|suppresses)\b", re.I)
# A sentence that reports or refutes the claim rather than making it.
DISTANCING = re.compile(r"\b(no study|not|never|say|says|claim|claims|myth|websites?)\b", re.I)


def asserts_kratom_lowers_prolactin(sentence: str) -> bool:
    """True when ``sentence`` states, as fact, that kratom lowers prolactin."""
    s = sentence.lower()
    return ("kratom" in s and "prolactin" in s and bool(LOWERING.search(s))
            and not DISTANCING.search(s))


def test_the_issue_s_pages_all_exist():
    assert {p.id for p in PAGES} == EXPECTED_PAGES


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.id)
def test_every_statement_cites_at_least_one_id_that_resolves(page):
    for st in page.statements():
        assert st.cite, st.text
        assert evidence.missing_references(st.cite) == [], (page.id, st.text)


def test_every_option_statement_cites_ids_that_resolve():
    for option in content.all_options():
        stmts = list(option.involves + option.monitoring + option.side_effects)
        if option.evidence_summary:
            stmts.append(option.evidence_summary)
        for st in stmts:
            assert st.cite and evidence.missing_references(st.cite) == [], (option.id, st.text)
        assert evidence.missing_references(option.evidence) == [], option.id
        if not option.free_text:
            assert option.involves and option.monitoring and option.side_effects, option.id


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.id)
def test_every_page_reads_at_grade_8_or_easier(page):
    grade = textstat.flesch_kincaid_grade(content.page_text(page))
    print(f"{page.id}: Flesch-Kincaid grade {grade}")
    assert grade <= MAX_GRADE, f"{page.id} reads at grade {grade}; shorten sentences and words"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.id)
def test_every_page_says_plainly_what_is_not_known(page):
    assert any(st.unknown for st in page.statements()), page.id


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.id)
def test_no_page_claims_kratom_lowers_prolactin(page):
    for st in page.statements():
        for sentence in _sentences(st.text):
            assert not asserts_kratom_lowers_prolactin(sentence), (page.id, sentence)


def test_no_option_claims_kratom_lowers_prolactin():
    for option in content.all_options():
        for st in option.involves + option.monitoring + option.side_effects:
            for sentence in _sentences(st.text):
                assert not asserts_kratom_lowers_prolactin(sentence), (option.id, sentence)


def test_the_lowering_check_catches_the_source_article_s_claim():
    assert asserts_kratom_lowers_prolactin("Kratom has been shown to reduce prolactin secretion.")
    assert asserts_kratom_lowers_prolactin("Kratom lowers prolactin.")
    assert not asserts_kratom_lowers_prolactin("Some websites say kratom lowers prolactin.")
    assert not asserts_kratom_lowers_prolactin("Kratom may raise prolactin too.")


def test_the_prolactin_page_states_the_rise_with_the_case_report():
    page = content.get_page("prolactin")
    rise = [st for st in page.statements()
            if "kratom" in st.text.lower() and re.search(r"\b(raise|raised|rise|higher|twice)\b", st.text, re.I)]
    assert rise, "the prolactin page must say kratom may raise prolactin"
    assert any("labryer-2018" in st.cite for st in rise)
    case = next(st for st in page.statements() if st.cite == ("labryer-2018",))
    assert case.strength == "one case report"


def test_the_prolactin_page_names_the_symptoms_of_high_prolactin():
    text = content.page_text(content.get_page("prolactin")).lower()
    for word in ("sex drive", "breasts grow", "periods"):
        assert word in text


def test_the_treatment_page_covers_the_three_medicines_and_says_kratom_is_unproven():
    page = content.get_page("oud-treatment")
    text = content.page_text(page).lower()
    for drug in ("buprenorphine", "methadone", "naltrexone"):
        assert drug in text
    assert any("kratom-no-trial-for-oud" in st.cite for st in page.statements())


def test_no_page_or_option_gives_a_kratom_dose():
    dose = re.compile(r"\b\d+(\.\d+)?\s*(g|grams?|mg|capsules?|cups?|glasses?)\b", re.I)
    texts = [st.text for p in PAGES for st in p.statements()]
    texts += [st.text for o in content.all_options() for st in o.involves + o.monitoring + o.side_effects]
    for text in texts:
        assert not dose.search(text), text


def test_a_statement_without_evidence_is_a_load_error():
    bad = 'id = "x"\ntitle = "X"\nsummary = "s"\n[[section]]\nheading = "H"\n[[section.statement]]\ntext = "A fact."\n'
    with pytest.raises(content.ContentError, match="cites no evidence"):
        content.load_page_file("content/pages/x.toml", bad)


def test_a_page_id_must_match_its_file_name():
    text = ('id = "y"\ntitle = "X"\nsummary = "s"\n[[section]]\nheading = "H"\n'
            '[[section.statement]]\ntext = "A."\ncite = ["labryer-2018"]\n')
    with pytest.raises(content.ContentError, match="must equal the file name"):
        content.load_page_file("content/pages/x.toml", text)


def test_unconfirmed_numbers_are_not_on_the_pages():
    # Values the reference marks UNCONFIRMED (secondary-source prevalences, macroprolactin share,
    # the 500 ng/mL threshold) must not appear as facts.
    texts = " ".join(content.page_text(p) for p in PAGES)
    for number in ("43%", "40%", "10-40", "500", "65%"):
        assert number not in texts


# ------------------------------------------------------------------ issue 13


def _text(page_id: str) -> str:
    return content.page_text(content.get_page(page_id)).lower()


def _option_text(option_id: str) -> str:
    option = next(o for o in content.all_options() if o.id == option_id)
    return " ".join(st.text for st in option.involves + option.monitoring + option.side_effects).lower()


def test_the_naloxone_page_says_what_it_is_when_to_use_it_and_where_to_get_it():
    page = content.get_page("naloxone")
    headings = [s.heading for s in page.sections]
    assert {"What naloxone is", "When to use it", "Where to get it"} <= set(headings)
    text = _text("naloxone")
    assert "wears off" in text and "prescription" in text
    assert "cannot be woken" in text and "911" in text
    cites = {c for st in page.statements() for c in st.cite}
    assert {"naloxone-reverses-opioid-overdose", "fda-2023-otc-naloxone",
            "surgeon-general-2018-naloxone"} <= cites


def test_lost_tolerance_is_on_the_naloxone_page_and_in_the_taper_and_naltrexone_options():
    assert "loses its tolerance" in _text("naloxone")
    for option_id in ("supervised-taper", "xr-naltrexone"):
        assert "tolerance" in _option_text(option_id) and "overdose" in _option_text(option_id)
        option = next(o for o in content.all_options() if o.id == option_id)
        assert any("lost-tolerance-overdose" in st.cite for st in option.side_effects)


def test_starting_buprenorphine_or_naltrexone_after_kratom_warns_of_precipitated_withdrawal():
    assert "precipitated withdrawal" in _text("oud-treatment")
    assert "kratom stays in the body for days" in _text("oud-treatment")
    for option_id in ("buprenorphine", "xr-naltrexone"):
        assert "sudden" in _option_text(option_id) and "withdrawal" in _option_text(option_id)


def test_qt_with_methadone_7oh_pregnancy_and_breastfeeding_are_covered():
    assert "ecg" in _text("oud-treatment") and "ecg" in _option_text("methadone")
    risks = _text("kratom-risks")
    assert "7-oh" in risks and "2025" in risks and "ecg" in risks
    pregnancy = _text("pregnancy")
    assert "do not stop all at once" in pregnancy and "breastfeed" in pregnancy
    assert "breast milk" in pregnancy


def test_the_urgent_help_page_names_the_crisis_line_and_naloxone():
    text = _text("urgent-help")
    assert "988" in text and "crisis lifeline" in text and "naloxone" in text


def test_blocking_drugs_and_prolactin_is_said_no_more_strongly_than_its_verdict():
    """The claim is partly supported (one animal study): no page states it as fact."""
    assert evidence.resolve("mu-antagonists-do-not-raise-prolactin").verdict == "partly-supported"
    texts = [st.text for p in PAGES for st in p.statements()]
    texts += [st.text for o in content.all_options() for st in o.side_effects]
    for text in texts:
        assert "do not raise prolactin" not in text, text
