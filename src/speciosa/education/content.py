"""Education content as data: pages and decision-aid options, each statement with its evidence.

Every page is one TOML file in ``content/pages/``; the decision aid's options are in
``content/options.toml``. A *statement* is one paragraph or bullet a patient reads, with the
ids (citations or claims in :mod:`speciosa.knowledge.evidence`) that support it. Headings
are labels, not statements. Statements marked ``unknown = true`` say what is *not* known;
they cite the source that shows the gap.

This module reads files and resolves evidence; it imports nothing from Django, so the
tests and the command line can check the content without a database.

Page file format::

    id = "prolactin"            # must equal the file name without .toml
    title = "Prolactin: ..."
    summary = "One line for the list of pages."
    order = 2                   # position in the list
    [[section]]
    heading = "What prolactin is"
    [[section.statement]]
    text = "Prolactin is a hormone."
    cite = ["melmed-2011-endocrine-society"]
    unknown = false             # optional
    list = false                # optional: show as a bullet in a list

References
----------
.. [1] shared/reference/pharmacology.md, sections 4, 5, 6.7, 8 and 9.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import Any

from speciosa.knowledge import evidence, translations

__all__ = [
    "ContentError",
    "Option",
    "Page",
    "Section",
    "Statement",
    "all_options",
    "all_pages",
    "get_option",
    "get_page",
    "load_option_file",
    "load_page_file",
    "option_strings",
    "page_strings",
    "page_text",
    "strength_in",
    "translate_options",
    "translate_page",
    "unresolved_ids",
]


class ContentError(ValueError):
    """An education file is malformed (missing field, bad id, statement without evidence)."""


@dataclass(frozen=True)
class Statement:
    """One sentence group a patient reads, with the evidence ids that support it."""

    text: str
    cite: tuple[str, ...]
    unknown: bool = False
    bullet: bool = False
    #: :attr:`strength` in the page's language, when the page is translated ("" otherwise)
    strength_shown: str = ""

    @property
    def strength(self) -> str:
        """How strong the evidence is, in words (from :func:`evidence.strength_in_words`)."""
        return evidence.strength_in_words(self.cite)

    @property
    def strength_words(self) -> str:
        """:attr:`strength` as the reader sees it (translated with the page)."""
        return self.strength_shown or self.strength

    @property
    def citations(self) -> list[evidence.Citation]:
        """The distinct citations behind this statement (claims expanded)."""
        return evidence.citations_of(self.cite)


@dataclass(frozen=True)
class Section:
    """A heading and its statements."""

    heading: str
    statements: tuple[Statement, ...]
    #: The heading in English (the same as ``heading`` unless the page is translated).
    english_heading: str = ""

    @property
    def unknowns(self) -> bool:
        """The section that says what is not known."""
        return (self.english_heading or self.heading) == "What we do not know"

    def blocks(self) -> list[tuple[str, list[Statement]]]:
        """Consecutive statements grouped for display: ``("p", [s])`` or ``("ul", [s, ...])``."""
        out: list[tuple[str, list[Statement]]] = []
        for st in self.statements:
            if st.bullet and out and out[-1][0] == "ul":
                out[-1][1].append(st)
            else:
                out.append(("ul" if st.bullet else "p", [st]))
        return out


@dataclass(frozen=True)
class Page:
    """One education page."""

    id: str
    title: str
    summary: str
    order: int
    sections: tuple[Section, ...]

    def statements(self) -> list[Statement]:
        """Every statement on the page, in reading order."""
        return [st for sec in self.sections for st in sec.statements]

    def evidence_ids(self) -> list[str]:
        """Every evidence id the page cites, in order, without repeats."""
        seen: dict[str, None] = {}
        for st in self.statements():
            for ref in st.cite:
                seen.setdefault(ref, None)
        return list(seen)


@dataclass(frozen=True)
class Option:
    """One option of the decision aid (the option grid)."""

    id: str
    label: str
    evidence: tuple[str, ...]
    evidence_summary: Statement | None
    involves: tuple[Statement, ...]
    monitoring: tuple[Statement, ...]
    side_effects: tuple[Statement, ...]
    free_text: bool = False
    #: :attr:`strength` in the options' language, when translated ("" otherwise)
    strength_shown: str = ""

    @property
    def strength(self) -> str:
        """How strong the evidence for this option is, in words."""
        return evidence.strength_in_words(self.evidence) if self.evidence else "no cited evidence"

    @property
    def strength_words(self) -> str:
        """:attr:`strength` as the reader sees it (translated with the options)."""
        return self.strength_shown or self.strength


def _statement(raw: Any, where: str) -> Statement:
    if isinstance(raw, str) or not isinstance(raw, dict):
        raise ContentError(f"{where}: a statement must be a table with 'text' and 'cite'")
    text = " ".join(str(raw.get("text", "")).split())
    if not text:
        raise ContentError(f"{where}: statement without text")
    cite = tuple(str(c) for c in raw.get("cite", ()))
    if not cite:
        raise ContentError(f"{where}: statement {text[:50]!r} cites no evidence")
    unknown = set(raw) - {"text", "cite", "unknown", "list"}
    if unknown:
        raise ContentError(f"{where}: unknown statement keys {sorted(unknown)}")
    return Statement(text=text, cite=cite, unknown=bool(raw.get("unknown", False)),
                     bullet=bool(raw.get("list", False)))


def load_page_file(name: str, text: str) -> Page:
    """Parse one page file (``name`` is the file name, used for messages and the id check).

    Raises
    ------
    ContentError
        On malformed TOML, a missing field, an id that differs from the file name, or a
        statement without evidence ids. (Whether the ids resolve is checked by
        :func:`unresolved_ids` and the tests, so that a typo names the id.)
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ContentError(f"{name}: {exc}") from exc
    for key in ("id", "title", "summary", "section"):
        if not data.get(key):
            raise ContentError(f"{name}: missing {key!r}")
    stem = name.rsplit("/", 1)[-1].removesuffix(".toml")
    if data["id"] != stem:
        raise ContentError(f"{name}: id {data['id']!r} must equal the file name {stem!r}")
    sections = []
    for i, sec in enumerate(data["section"], 1):
        heading = str(sec.get("heading", "")).strip()
        if not heading:
            raise ContentError(f"{name}: section {i} has no heading")
        stmts = tuple(_statement(s, f"{name} [{heading}]") for s in sec.get("statement", ()))
        if not stmts:
            raise ContentError(f"{name}: section {heading!r} has no statements")
        sections.append(Section(heading=heading, statements=stmts))
    return Page(id=str(data["id"]), title=str(data["title"]), summary=str(data["summary"]),
                order=int(data.get("order", 100)), sections=tuple(sections))


def load_option_file(name: str, text: str) -> list[Option]:
    """Parse the decision-aid options file.

    Raises
    ------
    ContentError
        On malformed TOML, a missing field, a duplicate id or a statement without evidence.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ContentError(f"{name}: {exc}") from exc
    out: list[Option] = []
    seen: set[str] = set()
    for raw in data.get("option", ()):
        oid = str(raw.get("id", ""))
        if not oid or not raw.get("label"):
            raise ContentError(f"{name}: an option lacks 'id' or 'label'")
        if oid in seen:
            raise ContentError(f"{name}: option id {oid!r} used twice")
        seen.add(oid)
        where = f"{name} [{oid}]"
        summary = raw.get("evidence_summary")
        out.append(Option(
            id=oid, label=str(raw["label"]),
            evidence=tuple(str(x) for x in raw.get("evidence", ())),
            evidence_summary=_statement(summary, where) if summary else None,
            involves=tuple(_statement(s, where) for s in raw.get("involves", ())),
            monitoring=tuple(_statement(s, where) for s in raw.get("monitoring", ())),
            side_effects=tuple(_statement(s, where) for s in raw.get("side_effects", ())),
            free_text=bool(raw.get("free_text", False)),
        ))
    if not out:
        raise ContentError(f"{name}: no options")
    return out


def _content_dir():
    return resources.files("speciosa.education").joinpath("content")


@lru_cache(maxsize=1)
def _pages() -> dict[str, Page]:
    folder = _content_dir().joinpath("pages")
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name)
    pages = [load_page_file(f"content/pages/{p.name}", p.read_text(encoding="utf-8")) for p in files]
    return {p.id: p for p in sorted(pages, key=lambda p: (p.order, p.id))}


@lru_cache(maxsize=1)
def _options() -> dict[str, Option]:
    path = _content_dir().joinpath("options.toml")
    return {o.id: o for o in load_option_file("content/options.toml", path.read_text(encoding="utf-8"))}


def all_pages() -> list[Page]:
    """Every education page, in display order."""
    return list(_pages().values())


def get_page(page_id: str) -> Page:
    """The page ``page_id``.

    Raises
    ------
    KeyError
        When there is no such page.
    """
    try:
        return _pages()[page_id]
    except KeyError:
        raise KeyError(f"unknown education page {page_id!r}") from None


def all_options() -> list[Option]:
    """The decision aid's options, in display order."""
    return list(_options().values())


def get_option(option_id: str) -> Option:
    """The option ``option_id``; raises ``KeyError`` when there is none."""
    try:
        return _options()[option_id]
    except KeyError:
        raise KeyError(f"unknown decision option {option_id!r}") from None


def page_text(page: Page) -> str:
    """The prose a patient reads (every statement, in order), for the readability check."""
    return "\n".join(st.text for st in page.statements())


def unresolved_ids(statements) -> list[str]:
    """Evidence ids in ``statements`` that are neither a citation nor a claim."""
    ids = [ref for st in statements for ref in st.cite]
    return evidence.missing_references(ids)


# --------------------------------------------------------------------------- translations


def page_strings(page: Page) -> list[str]:
    """Every English string of ``page`` a translation must cover (title, summary, headings,
    statements)."""
    return [page.title, page.summary] + [
        x for sec in page.sections for x in [sec.heading, *(st.text for st in sec.statements)]]


def translate_page(page: Page, language: str | None) -> tuple[Page, translations.Shown]:
    """``page`` in ``language`` (content id ``education/<page id>``) and how it is shown.

    A translated page keeps every statement's evidence ids, ``unknown`` and ``list``; only
    the words change. Without a complete translation the page is English, and the
    :class:`~speciosa.knowledge.translations.Shown` says so."""
    shown = translations.shown(f"education/{page.id}", language, page_strings(page))
    if shown.language == "en":
        return page, shown
    t = shown.text
    strength = strength_in(shown.language)
    sections = tuple(
        replace(sec, heading=t(sec.heading), english_heading=sec.heading,
                statements=tuple(replace(st, text=t(st.text), strength_shown=strength(st.strength))
                                 for st in sec.statements))
        for sec in page.sections)
    return replace(page, title=t(page.title), summary=t(page.summary), sections=sections), shown


#: The words that say how strong the evidence is, one content unit for every page.
STRENGTH_CONTENT = "education/evidence-strength"


def strength_in(language: str | None):
    """A function from :func:`evidence.strength_in_words`'s English to ``language`` (its parts
    translated; the English when any part is not)."""
    shown = translations.shown(STRENGTH_CONTENT, language, evidence.strength_vocabulary())
    if shown.language == "en":
        return lambda words: words
    return lambda words: "; ".join(shown.text(part) for part in words.split("; "))


#: The decision aid's one content unit: every option and the priorities.
OPTIONS_CONTENT = "decision-aid/options"


def _option_statements(option: Option) -> list[Statement]:
    extra = [option.evidence_summary] if option.evidence_summary else []
    return [*extra, *option.involves, *option.monitoring, *option.side_effects]


def option_strings(options: list[Option], priorities: dict[str, str] | None = None) -> list[str]:
    """Every English string of the decision aid a translation must cover."""
    out = []
    for o in options:
        out.append(o.label)
        out.extend(st.text for st in _option_statements(o))
    return out + list((priorities or {}).values())


def translate_options(options: list[Option], language: str | None,
                      priorities: dict[str, str] | None = None
                      ) -> tuple[list[Option], dict[str, str], translations.Shown]:
    """The options (and the priorities' labels) in ``language``, and how they are shown."""
    priorities = dict(priorities or {})
    shown = translations.shown(OPTIONS_CONTENT, language, option_strings(options, priorities))
    if shown.language == "en":
        return options, priorities, shown
    t = shown.text
    strength = strength_in(shown.language)

    def stmts(items):
        return tuple(replace(st, text=t(st.text), strength_shown=strength(st.strength))
                     for st in items)

    out = [replace(o, label=t(o.label), strength_shown=strength(o.strength),
                   evidence_summary=replace(o.evidence_summary, text=t(o.evidence_summary.text))
                   if o.evidence_summary else None,
                   involves=stmts(o.involves), monitoring=stmts(o.monitoring),
                   side_effects=stmts(o.side_effects)) for o in options]
    return out, {k: t(v) for k, v in priorities.items()}, shown
