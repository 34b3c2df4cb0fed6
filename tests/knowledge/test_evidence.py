"""Evidence registry: loading, ids, verdicts, and that no reference points nowhere."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

import speciosa.knowledge
from speciosa.knowledge import evidence, labs, prolactin
from speciosa.knowledge.evidence import (
    CITATION_TYPES,
    EvidenceError,
    all_citations,
    all_claims,
    citation,
    claim,
    load_registry,
    missing_references,
    resolve,
    strength_in_words,
)

KNOWLEDGE_DIR = Path(speciosa.knowledge.__file__).parent


def test_the_article_claims_are_present_with_the_references_verdicts():
    verdicts = {f"article-{i}": claim(f"article-{i}").verdict for i in range(1, 7)}
    assert verdicts == {
        "article-1": "contradicted",
        "article-2": "partly-supported",
        "article-3": "insufficient",
        "article-4": "supported",
        "article-5": "insufficient",
        "article-6": "supported",
    }
    assert all(claim(i).source == "article" for i in verdicts)


def test_the_claim_that_kratom_lowers_prolactin_is_contradicted_by_the_case_report():
    c = claim("article-1")
    assert "lowers" in c.statement
    assert c.verdict == "contradicted"
    assert "labryer-2018" in c.citations
    assert "raised during kratom use" in c.explanation


def test_speciosas_own_prolactin_claims_are_present():
    for cid in (
        "kratom-may-raise-prolactin",
        "hyperprolactinemia-causes-hypogonadism",
        "opioids-raise-prolactin",
        "single-high-prolactin-confirms",
    ):
        assert claim(cid).source == "speciosa"


def test_no_claim_says_kratom_lowers_prolactin_as_supported():
    for c in all_claims().values():
        if "lower" in c.statement.lower() and "kratom" in c.statement.lower():
            assert c.verdict == "contradicted"


def test_every_claim_cites_only_existing_citations():
    for c in all_claims().values():
        assert c.citations, c.id
        assert missing_references(c.citations) == [], c.id
        assert all(cid in all_citations() for cid in c.citations), c.id


def test_every_citation_has_a_known_type_and_lowercase_slug_id():
    for c in all_citations().values():
        assert c.type in CITATION_TYPES
        assert c.id == c.id.lower() and " " not in c.id


def test_unconfirmed_fields_are_carried_and_shown():
    c = citation("labryer-2018")
    assert c.type == "case-report"
    assert "doi" in c.unconfirmed
    assert "[UNCONFIRMED]" in c.formatted()
    assert "[UNCONFIRMED]" not in citation("melmed-2011-endocrine-society").formatted()


def test_the_guideline_and_key_sources_are_registered_with_their_identifiers():
    g = citation("melmed-2011-endocrine-society")
    assert (g.type, g.year, g.doi, g.pmid) == ("guideline", 2011, "10.1210/jc.2010-1692", "21296991")
    assert citation("tanna-2022").pmid == "35335999"
    assert citation("trakulsrichai-2015").doi == "10.2147/DDDT.S79658"
    assert citation("huestis-2024").type == "randomised-trial"
    for cid in ("singh-2014", "singh-2018", "garcia-romeu-2020", "grundmann-2017",
                "mayo-clinic-laboratories-prl", "livertox-kratom", "post-2019", "tanna-2023",
                "eldridge-2018", "fda-kratom-advisory-2017", "olsen-2019-mmwr"):
        assert cid in all_citations()


def test_unknown_ids_raise_a_clear_key_error():
    with pytest.raises(KeyError, match="unknown citation id 'nope'"):
        citation("nope")
    with pytest.raises(KeyError, match="unknown claim id 'nope'"):
        claim("nope")
    with pytest.raises(KeyError, match="neither a citation nor a claim"):
        resolve("nope")


def test_resolve_returns_citations_and_claims():
    assert isinstance(resolve("labryer-2018"), evidence.Citation)
    assert isinstance(resolve("article-1"), evidence.Claim)


def test_missing_references_lists_only_the_ids_that_point_nowhere():
    assert missing_references(["labryer-2018", "article-1", "ghost", "ghost", "x"]) == ["ghost", "x"]


@pytest.mark.parametrize(
    ("ids", "words"),
    [
        (["labryer-2018"], "one case report"),
        (["melmed-2011-endocrine-society"], "guideline"),
        (["wilhelm-2011", "patkar-2002"], "two observational studies"),
        (["harun-2020", "gutridge-2020"], "animal studies only"),
        (["kong-2011"], "laboratory (in-vitro) studies only"),
        (["melmed-2011-endocrine-society", "labryer-2018"], "guideline; one case report"),
        ([], "no cited evidence"),
    ],
)
def test_strength_in_words(ids, words):
    assert strength_in_words(ids) == words


def test_strength_in_words_expands_claims_into_their_citations():
    assert strength_in_words(["single-high-prolactin-confirms"]) == "guideline"


# ------------------------------------------------------------------ loading
def test_a_duplicate_id_across_files_is_an_error_naming_both_files():
    a = ("a.toml", '[[citation]]\nid = "x"\nauthors = "A"\ntitle = "T"\ntype = "review"\n')
    b = ("b.toml", '[[claim]]\nid = "x"\nstatement = "S"\nverdict = "supported"\nsource = "speciosa"\n')
    with pytest.raises(EvidenceError, match="duplicate evidence id 'x': in a.toml and in b.toml"):
        load_registry([a, b])


def test_an_unknown_type_or_verdict_is_a_load_error():
    bad_type = ("a.toml", '[[citation]]\nid = "x"\nauthors = "A"\ntitle = "T"\ntype = "blog"\n')
    with pytest.raises(EvidenceError, match="type 'blog'"):
        load_registry([bad_type])
    bad_verdict = ("a.toml", '[[claim]]\nid = "y"\nstatement = "S"\nverdict = "true"\nsource = "speciosa"\n')
    with pytest.raises(EvidenceError, match="verdict 'true'"):
        load_registry([bad_verdict])


def test_a_well_formed_file_loads_citations_and_claims():
    text = (
        '[[citation]]\nid = "c"\nauthors = "A"\nyear = 2020\ntitle = "T"\ntype = "animal"\n'
        'unconfirmed = ["year"]\n'
        '[[claim]]\nid = "k"\nstatement = "S"\nverdict = "insufficient"\nsource = "speciosa"\n'
        'citations = ["c"]\n'
    )
    cites, claims = load_registry([("t.toml", text)])
    assert cites["c"].year == 2020 and cites["c"].unconfirmed == ("year",)
    assert claims["k"].citations == ("c",)


def test_every_packaged_evidence_file_loads_without_duplicates():
    files = sorted((KNOWLEDGE_DIR / "data" / "evidence").glob("*.toml"))
    assert any(f.name == "core.toml" for f in files)
    cites, claims = load_registry((f.name, f.read_text(encoding="utf-8")) for f in files)
    assert set(cites) == set(all_citations()) and set(claims) == set(all_claims())


# ------------------------------------------------------------------ references point somewhere
def _citation_ids_in(obj, seen=None):
    """Collect strings in any ``citations``/``reference_citations``-like field, recursively."""
    seen = set() if seen is None else seen
    found: list[str] = []
    if id(obj) in seen:
        return found
    seen.add(id(obj))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if "citation" in f.name and isinstance(value, tuple | list):
                found.extend(v for v in value if isinstance(v, str))
            else:
                found.extend(_citation_ids_in(value, seen))
    elif isinstance(obj, tuple | list):
        for v in obj:
            found.extend(_citation_ids_in(v, seen))
    elif isinstance(obj, dict) or hasattr(obj, "items") and hasattr(obj, "keys"):
        for v in obj.values():
            found.extend(_citation_ids_in(v, seen))
    return found


def test_every_lab_citation_resolves():
    ids = _citation_ids_in(labs.all_labs())
    assert ids
    assert missing_references(ids) == []


def test_every_prolactin_constant_and_medication_citation_resolves():
    ids = list(prolactin.DRUG_INDUCED_USUAL_MAX_CITATIONS)
    ids += prolactin.PROLACTINOMA_SUGGESTIVE_CITATIONS + prolactin.REFERRAL_CITATIONS
    ids += prolactin.KRATOM_REMEASURE_CITATIONS
    ids += prolactin.MILD_ELEVATION_CITATIONS
    ids += _citation_ids_in(dict(prolactin.PROLACTIN_RAISING_MEDICATIONS))
    assert missing_references(ids) == []


def test_every_string_literal_that_looks_like_an_evidence_id_in_the_knowledge_code_resolves():
    """Scan the knowledge modules for tuples/lists of strings passed as citations."""
    known = set(all_citations()) | set(all_claims())
    problems = []
    for path in (KNOWLEDGE_DIR / "labs.py", KNOWLEDGE_DIR / "prolactin.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            targets: list[ast.AST] = []
            if isinstance(node, ast.keyword) and node.arg and "citation" in node.arg:
                targets.append(node.value)
            if isinstance(node, ast.Assign | ast.AnnAssign):
                names = [t.id for t in getattr(node, "targets", [getattr(node, "target", None)])
                         if isinstance(t, ast.Name)]
                if any(n.endswith("_CITATIONS") or n in ("_MEDS_CLAIM", "_OPIOID", "_KRATOM", "_OHDSI")
                       for n in names):
                    targets.append(node.value)
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "add" and len(node.args) >= 3:
                targets.append(node.args[2])
            for t in targets:
                for const in ast.walk(t):
                    if isinstance(const, ast.Constant) and isinstance(const.value, str):
                        if const.value not in known:
                            problems.append(f"{path.name}:{const.lineno} {const.value!r}")
    assert problems == []


def test_every_instrument_citation_resolves():
    instruments = pytest.importorskip("speciosa.knowledge.instruments")
    ids = _citation_ids_in(instruments.all_instruments())
    assert missing_references(ids) == []


def test_the_knowledge_package_imports_nothing_from_django():
    offenders = []
    for path in KNOWLEDGE_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            if any(n == "django" or n.startswith("django.") for n in names):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


# ------------------------------------------------------------------ issue 13


def test_systematic_reviews_of_trials_rank_above_single_trials_and_narrative_reviews_low():
    order = list(CITATION_TYPES)
    assert order.index("systematic-review") < order.index("randomised-trial")
    assert order.index("review") > order.index("case-report")
    assert evidence.citation("mattick-2014-buprenorphine-cochrane").type == "systematic-review"
    words = evidence.strength_in_words(["lee-2018-xbot", "mattick-2014-buprenorphine-cochrane"])
    assert words == "one systematic review of trials; one randomised trial"
    assert evidence.strength_in_words(["schimmel-dart-2020", "labryer-2018"]) == \
        "one case report; one review"


def test_a_claim_supported_by_other_opioids_only_says_so_in_words():
    words = evidence.strength_in_words(["lost-tolerance-overdose"])
    assert words.endswith("; evidence from other opioids, not kratom")
    # a kratom source beside it: no longer "only" other opioids
    mixed = evidence.strength_in_words(["lost-tolerance-overdose", "labryer-2018"])
    assert "other opioids" not in mixed
    assert "other opioids" not in evidence.strength_in_words(["kratom-may-raise-prolactin"])


def test_the_mismatched_citations_are_fixed():
    from speciosa.education import content
    from speciosa.safety.settings import SETTINGS

    regular = next(s for s in SETTINGS if s.name == "regular_use_days_per_28")
    assert "more than amount" in regular.source
    assert regular.citations == ("rogers-2024-kratom-cohort",)
    assert "more than amount" in evidence.citation("rogers-2024-kratom-cohort").note
    how = [st for p in content.all_pages() for st in p.statements()
           if "partly turns on" in st.text or "blocks opioids" in st.text]
    how += [st for o in content.all_options() for st in o.involves
            if "partial opioid" in st.text or "blocks opioids" in st.text]
    assert len(how) >= 3
    for st in how:  # X:BOT compared outcomes; it is not a source for how the drugs work
        assert "lee-2018-xbot" not in st.cite or len(st.cite) > 1, st.text
        assert set(st.cite) & {"asam-2020-oud-guideline", "naltrexone-is-an-opioid-antagonist"}
