"""Evidence registry: citations and claims, each with an id that the rest of Speciosa cites.

Every ``*.toml`` file in the packaged ``data/evidence/`` folder is loaded once and merged.
A file may hold ``[[citation]]`` and ``[[claim]]`` arrays; an id used twice (in one file
or across files, citation or claim) is a load error that names both files. The format is
described in ``docs/evidence.md``.

A field that the project's references mark UNCONFIRMED is listed in
``Citation.unconfirmed``; anything that displays it must show that marker.

References
----------
.. [1] shared/reference/pharmacology.md, sections 1-9 and "Claims in the source article
   vs evidence".
.. [2] shared/reference/instruments.md, sections 4.4, 6.5, 7 and 8.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "CITATION_TYPES",
    "VERDICTS",
    "Citation",
    "Claim",
    "EvidenceError",
    "all_citations",
    "all_claims",
    "citation",
    "claim",
    "citations_of",
    "load_registry",
    "missing_references",
    "resolve",
    "strength_in_words",
]

#: Citation types, strongest design first. ``systematic-review`` is a systematic review or
#: meta-analysis of trials (a Cochrane review): it ranks above a single trial. ``review`` is a
#: narrative review, or a systematic review that found no trials: it ranks low, below case
#: reports. ``clinical-study`` is an interventional human study that is not randomised (e.g.
#: a single-arm pharmacokinetic study); ``reference`` is a laboratory catalogue, database,
#: regulator notice or data-quality rule set.
CITATION_TYPES: tuple[str, ...] = (
    "guideline",
    "systematic-review",
    "randomised-trial",
    "clinical-study",
    "observational",
    "case-report",
    "review",
    "animal",
    "in-vitro",
    "reference",
)

#: Verdicts a claim may carry.
VERDICTS: tuple[str, ...] = ("supported", "partly-supported", "insufficient", "contradicted")

CLAIM_SOURCES: tuple[str, ...] = ("article", "speciosa")

CITATION_FIELDS: tuple[str, ...] = ("authors", "year", "title", "journal", "doi", "pmid")


class EvidenceError(ValueError):
    """The evidence data is malformed (duplicate id, unknown type, missing field)."""


@dataclass(frozen=True)
class Citation:
    """A published source.

    Attributes
    ----------
    id : str
        Lowercase slug, e.g. ``"labryer-2018"``.
    authors, title : str
        As given in the references.
    year : int or None
    journal, doi, pmid : str or None
        ``journal`` holds the journal with volume and pages where known.
    type : str
        One of :data:`CITATION_TYPES`.
    note : str
        Where a detail came from, caveats.
    unconfirmed : tuple of str
        Names of the fields above that the references mark UNCONFIRMED.
    """

    id: str
    authors: str
    year: int | None
    title: str
    journal: str | None
    doi: str | None
    pmid: str | None
    type: str
    note: str = ""
    unconfirmed: tuple[str, ...] = ()

    def is_unconfirmed(self, field: str) -> bool:
        """Return True when ``field`` is marked UNCONFIRMED in the references."""
        return field in self.unconfirmed

    def short(self) -> str:
        """One-line label, e.g. ``"LaBryer 2018 (case report)"``."""
        first = self.authors.split(",")[0].split(" et al")[0].strip()
        surname = first.split(" ")[0] if first and not first.startswith("Authors") else ""
        label = " ".join(p for p in (surname, str(self.year) if self.year else "") if p)
        return f"{label or self.title} ({self.type.replace('-', ' ')})"

    def formatted(self) -> str:
        """Full reference text; fields marked UNCONFIRMED carry ``[UNCONFIRMED]``."""

        def mark(field: str, text: str) -> str:
            return f"{text} [UNCONFIRMED]" if self.is_unconfirmed(field) else text

        parts = [mark("authors", self.authors)]
        if self.year is not None:
            parts.append(mark("year", str(self.year)))
        parts.append(mark("title", self.title))
        if self.journal:
            parts.append(mark("journal", self.journal))
        if self.doi:
            parts.append(mark("doi", f"doi:{self.doi}"))
        if self.pmid:
            parts.append(mark("pmid", f"PMID {self.pmid}"))
        return ". ".join(parts) + "."


@dataclass(frozen=True)
class Claim:
    """A statement with a verdict on the evidence.

    Attributes
    ----------
    id : str
        ``article-1`` ... for the source article's claims; a slug for Speciosa's own.
    statement : str
    verdict : str
        One of :data:`VERDICTS`.
    citations : tuple of str
        Citation ids.
    source : str
        ``"article"`` (the source article) or ``"speciosa"``.
    explanation : str
        Why the verdict, in words a clinician can check.
    other_opioids : bool
        Its support comes from other opioids, not kratom (``other_opioids = true``):
        :func:`strength_in_words` says so in words.
    """

    id: str
    statement: str
    verdict: str
    citations: tuple[str, ...]
    source: str
    explanation: str
    other_opioids: bool = False


@dataclass(frozen=True)
class _Registry:
    citations: Mapping[str, Citation]
    claims: Mapping[str, Claim]


def _optional_str(entry: Mapping[str, Any], key: str) -> str | None:
    value = entry.get(key)
    if value is None or value == "":
        return None
    return str(value)


def _citation_from(entry: Mapping[str, Any], where: str) -> Citation:
    for key in ("id", "authors", "title", "type"):
        if not entry.get(key):
            raise EvidenceError(f"{where}: citation {entry.get('id', '?')!r} lacks {key!r}")
    if entry["type"] not in CITATION_TYPES:
        raise EvidenceError(
            f"{where}: citation {entry['id']!r} has type {entry['type']!r}; "
            f"use one of {', '.join(CITATION_TYPES)}"
        )
    unconfirmed = tuple(entry.get("unconfirmed", ()))
    bad = [f for f in unconfirmed if f not in CITATION_FIELDS]
    if bad:
        raise EvidenceError(f"{where}: citation {entry['id']!r}: unknown unconfirmed field {bad}")
    year = entry.get("year")
    return Citation(
        id=str(entry["id"]),
        authors=str(entry["authors"]),
        year=int(year) if year is not None else None,
        title=str(entry["title"]),
        journal=_optional_str(entry, "journal"),
        doi=_optional_str(entry, "doi"),
        pmid=_optional_str(entry, "pmid"),
        type=str(entry["type"]),
        note=str(entry.get("note", "")),
        unconfirmed=unconfirmed,
    )


def _claim_from(entry: Mapping[str, Any], where: str) -> Claim:
    for key in ("id", "statement", "verdict", "source"):
        if not entry.get(key):
            raise EvidenceError(f"{where}: claim {entry.get('id', '?')!r} lacks {key!r}")
    if entry["verdict"] not in VERDICTS:
        raise EvidenceError(
            f"{where}: claim {entry['id']!r} has verdict {entry['verdict']!r}; "
            f"use one of {', '.join(VERDICTS)}"
        )
    if entry["source"] not in CLAIM_SOURCES:
        raise EvidenceError(f"{where}: claim {entry['id']!r} has source {entry['source']!r}")
    return Claim(
        id=str(entry["id"]),
        statement=str(entry["statement"]),
        verdict=str(entry["verdict"]),
        citations=tuple(str(c) for c in entry.get("citations", ())),
        source=str(entry["source"]),
        explanation=str(entry.get("explanation", "")),
        other_opioids=bool(entry.get("other_opioids", False)),
    )


def load_registry(files: Iterable[tuple[str, str]]) -> tuple[dict[str, Citation], dict[str, Claim]]:
    """Parse and merge evidence files.

    Parameters
    ----------
    files : iterable of (name, text)
        File name (for messages) and TOML text.

    Returns
    -------
    citations, claims : dict
        Keyed by id.

    Raises
    ------
    EvidenceError
        On malformed TOML, an unknown type or verdict, a missing field, or an id that is
        used twice; the message names both files.
    """
    citations: dict[str, Citation] = {}
    claims: dict[str, Claim] = {}
    seen: dict[str, str] = {}
    for name, text in files:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise EvidenceError(f"{name}: {exc}") from exc
        unknown = set(data) - {"citation", "claim"}
        if unknown:
            raise EvidenceError(f"{name}: unknown top-level keys {sorted(unknown)}")
        for kind, builder, target in (
            ("citation", _citation_from, citations),
            ("claim", _claim_from, claims),
        ):
            for entry in data.get(kind, ()):
                item = builder(entry, name)
                if item.id in seen:
                    raise EvidenceError(
                        f"duplicate evidence id {item.id!r}: in {seen[item.id]} and in {name}"
                    )
                seen[item.id] = name
                target[item.id] = item  # type: ignore[index]
    return citations, claims


def _packaged_files() -> list[tuple[str, str]]:
    folder = resources.files("speciosa.knowledge").joinpath("data", "evidence")
    entries = sorted(
        (p for p in folder.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name
    )
    return [(str(Path("data/evidence") / p.name), p.read_text(encoding="utf-8")) for p in entries]


@lru_cache(maxsize=1)
def _registry() -> _Registry:
    citations, claims = load_registry(_packaged_files())
    return _Registry(citations=citations, claims=claims)


def all_citations() -> dict[str, Citation]:
    """Return every citation, keyed by id (a fresh dict; the values are immutable)."""
    return dict(_registry().citations)


def all_claims() -> dict[str, Claim]:
    """Return every claim, keyed by id (a fresh dict; the values are immutable)."""
    return dict(_registry().claims)


def citation(id: str) -> Citation:
    """Return the citation ``id``.

    Raises
    ------
    KeyError
        With a message naming the unknown id.
    """
    try:
        return _registry().citations[id]
    except KeyError:
        raise KeyError(
            f"unknown citation id {id!r}; see speciosa/knowledge/data/evidence/"
        ) from None


def claim(id: str) -> Claim:
    """Return the claim ``id``.

    Raises
    ------
    KeyError
        With a message naming the unknown id.
    """
    try:
        return _registry().claims[id]
    except KeyError:
        raise KeyError(f"unknown claim id {id!r}; see speciosa/knowledge/data/evidence/") from None


def resolve(ref_id: str) -> Citation | Claim:
    """Return the citation or claim with this id.

    Raises
    ------
    KeyError
        When the id is neither a citation nor a claim.
    """
    reg = _registry()
    if ref_id in reg.citations:
        return reg.citations[ref_id]
    if ref_id in reg.claims:
        return reg.claims[ref_id]
    raise KeyError(f"unknown evidence id {ref_id!r}: neither a citation nor a claim")


def missing_references(ids: Iterable[str]) -> list[str]:
    """Return the ids (in order, without repeats) that are neither a citation nor a claim."""
    reg = _registry()
    out: list[str] = []
    for ref in ids:
        if ref not in reg.citations and ref not in reg.claims and ref not in out:
            out.append(ref)
    return out


def citations_of(ids: Iterable[str]) -> list[Citation]:
    """Expand ids (claims become their citations) into distinct citations, in order.

    Raises
    ------
    KeyError
        When an id points nowhere.
    """
    out: dict[str, Citation] = {}
    for ref in ids:
        item = resolve(ref)
        if isinstance(item, Claim):
            for cid in item.citations:
                out.setdefault(cid, citation(cid))
        else:
            out.setdefault(item.id, item)
    return list(out.values())


_NUMBER_WORDS = {
    1: "one",
    2: "two",
    3: "three",
    4: "four",
    5: "five",
    6: "six",
    7: "seven",
    8: "eight",
    9: "nine",
    10: "ten",
}
_NOUNS = {
    "guideline": ("guideline", "guidelines"),
    "randomised-trial": ("randomised trial", "randomised trials"),
    "clinical-study": ("non-randomised clinical study", "non-randomised clinical studies"),
    "observational": ("observational study", "observational studies"),
    "case-report": ("case report", "case reports"),
    "systematic-review": ("systematic review of trials", "systematic reviews of trials"),
    "review": ("review", "reviews"),
    "animal": ("animal study", "animal studies"),
    "in-vitro": ("laboratory (in-vitro) study", "laboratory (in-vitro) studies"),
    "reference": ("reference source", "reference sources"),
}


def strength_in_words(ids: Iterable[str]) -> str:
    """Describe, in words, what kind of evidence a set of ids rests on.

    Claims are expanded into their citations. Examples: ``"guideline"``,
    ``"one case report"``, ``"two observational studies"``, ``"animal studies only"``,
    ``"guideline; one case report"``.

    Raises
    ------
    KeyError
        When an id points nowhere.
    """
    ids = list(ids)
    cites = citations_of(ids)
    if not cites:
        return "no cited evidence"
    words = _kinds_in_words(cites)
    refs = [resolve(i) for i in ids]
    if refs and all(isinstance(r, Claim) and r.other_opioids for r in refs):
        words += f"; {OTHER_OPIOIDS}"
    return words


#: What :func:`strength_in_words` adds when every id is a claim from other opioids.
OTHER_OPIOIDS = "evidence from other opioids, not kratom"


def strength_vocabulary() -> list[str]:
    """Every part :func:`strength_in_words` joins with ``"; "`` (to translate them)."""
    out = ["no cited evidence", "animal studies only", "laboratory (in-vitro) studies only",
           "animal and laboratory studies only", OTHER_OPIOIDS]
    for kind, (singular, plural) in _NOUNS.items():
        for n, word in _NUMBER_WORDS.items():
            if kind == "guideline":
                out.append(singular if n == 1 else f"{word} {plural}")
            else:
                out.append(f"{word} {singular if n == 1 else plural}")
    return out


def _kinds_in_words(cites: list[Citation]) -> str:
    counts = Counter(c.type for c in cites)
    kinds = [t for t in CITATION_TYPES if counts[t]]
    if set(kinds) <= {"animal", "in-vitro"}:
        if kinds == ["animal"]:
            return "animal studies only"
        if kinds == ["in-vitro"]:
            return "laboratory (in-vitro) studies only"
        return "animal and laboratory studies only"
    parts = []
    for kind in kinds:
        n = counts[kind]
        singular, plural = _NOUNS[kind]
        if kind == "guideline":
            parts.append(singular if n == 1 else f"{_NUMBER_WORDS.get(n, str(n))} {plural}")
        else:
            parts.append(f"{_NUMBER_WORDS.get(n, str(n))} {singular if n == 1 else plural}")
    return "; ".join(parts)
