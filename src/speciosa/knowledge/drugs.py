"""The drug knowledge table: which medication or substance a name is, and its classes.

One table (``data/drugs.toml``) holds generic names, synonyms, common brand names, RxNorm
ingredient codes where the references give them, and each drug's classes with the
evidence ids that support the assignment: opioid (treatments of opioid use disorder
marked), opioid antagonist, benzodiazepine, gabapentinoid, other sedative-hypnotic,
alcohol, kratom, CYP3A substrate (with the FDA sensitivity category), QT-prolonging
(known risk) and prolactin-raising. The safety rules and the prolactin interpretation read
it; ``docs/drugs.md`` is generated from it (:func:`markdown`).

Names are matched word by word, case-insensitively, anywhere in the text: ``"Xanax 1 mg"``
is alprazolam, ``"oxycodone 10mg tablet"`` is oxycodone, ``"Suboxone film"`` is
buprenorphine and naloxone. A name the table does not know gives a
:class:`Classification` with ``unknown=True``: callers report it as not classified rather
than passing over it.

A site extends the table with a data file of its own: ``SPECIOSA_DRUGS_EXTRA`` names a
TOML file of ``[[drug]]`` entries in the same format (classes and prolactin groups come from
the shipped table; a generic name the table already has is refused, so a site adds drugs
and cannot quietly redefine one). :func:`get` finds an entry by its generic name (the coded
``drug`` key of a medication) and :func:`search` by the start of any of its names (the
medication picker).

The module imports nothing from Django and does no I/O after the table is loaded.

References
----------
.. [1] shared/reference/care.md section 7 (RxNorm ingredient codes, US and UK brands).
.. [2] US FDA. Drug Development and Drug Interactions: Table of Substrates, Inhibitors and
   Inducers (evidence id ``fda-ddi-table``).
.. [3] shared/reference/pharmacology.md sections 8.4-8.5 (QT, interactions).
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "CLASS_IDS",
    "CYP3A_SENSITIVITIES",
    "Assignment",
    "Classification",
    "Drug",
    "DrugClass",
    "DrugTableError",
    "EXTRA_ENV",
    "ProlactinGroup",
    "all_drugs",
    "classes",
    "classify",
    "get",
    "search",
    "cited_ids",
    "load_table",
    "markdown",
    "prolactin_groups",
    "words",
]

#: The classes, in the order findings and documents list them.
CLASS_IDS: tuple[str, ...] = (
    "opioid",
    "opioid-antagonist",
    "benzodiazepine",
    "gabapentinoid",
    "other-sedative",
    "alcohol",
    "kratom",
    "cyp3a-substrate",
    "qt-prolonging",
    "prolactin-raising",
)

#: FDA categories of CYP3A substrates, most sensitive first; ``substrate`` is a drug known
#: to be metabolised by CYP3A that the FDA table does not list as sensitive.
CYP3A_SENSITIVITIES: tuple[str, ...] = (
    "sensitive-index",
    "sensitive",
    "moderate-sensitive",
    "substrate",
)

KINDS: tuple[str, ...] = ("ingredient", "group", "substance")
OPIOID_ROLES: tuple[str, ...] = (
    "agonist",
    "partial agonist",
    "mixed agonist-antagonist",
    "antagonist",
)
QT_RISKS: tuple[str, ...] = ("known",)

# The fields an assignment of each class may carry besides ``cite``.
_CLASS_FIELDS: dict[str, frozenset[str]] = {
    "opioid": frozenset({"role", "oud"}),
    "opioid-antagonist": frozenset({"role", "oud"}),
    "cyp3a-substrate": frozenset({"sensitivity", "narrow_range", "boxed_warning"}),
    "qt-prolonging": frozenset({"risk"}),
    "prolactin-raising": frozenset({"group"}),
}
_DRUG_FIELDS = frozenset({"name", "kind", "synonyms", "brands", "rxnorm", "rxnorm_confirmed",
                          "rxnorm_source"})
_RXCUI = re.compile(r"[1-9][0-9]{0,9}")

#: The environment variable naming a site's own drug file (``[[drug]]`` entries).
EXTRA_ENV = "SPECIOSA_DRUGS_EXTRA"


class DrugTableError(ValueError):
    """The drug table is malformed (unknown class or field, missing citation, name twice)."""


@dataclass(frozen=True)
class DrugClass:
    """A class the rules use.

    Attributes
    ----------
    id : str
        One of :data:`CLASS_IDS`.
    label : str
        As findings show it (``"other sedative-hypnotic"``).
    description : str
    citations : tuple of str
        Evidence ids an assignment carries when it names none of its own.
    """

    id: str
    label: str
    description: str
    citations: tuple[str, ...]


@dataclass(frozen=True)
class ProlactinGroup:
    """How the prolactin interpretation names a family of prolactin-raising drugs."""

    id: str
    label: str
    note: str
    citations: tuple[str, ...]


@dataclass(frozen=True)
class Assignment:
    """A drug's membership of one class, with the evidence for it.

    Attributes
    ----------
    drug_class : str
        One of :data:`CLASS_IDS`.
    citations : tuple of str
        Evidence ids (citations or claims); never empty.
    role : str or None
        Opioid classes: ``agonist``, ``partial agonist``, ``mixed agonist-antagonist``,
        ``antagonist``.
    oud_treatment : bool
        A treatment of opioid use disorder (methadone, buprenorphine, naltrexone).
    sensitivity : str or None
        CYP3A: one of :data:`CYP3A_SENSITIVITIES`.
    narrow_range : bool
        CYP3A: on the FDA's list of substrates with a narrow therapeutic range.
    boxed_warning : bool
        CYP3A: the US label's boxed warning names CYP3A4 inhibitors.
    risk : str or None
        QT: ``known`` (CredibleMeds Known Risk of TdP).
    group : str or None
        Prolactin: the :class:`ProlactinGroup` id.
    """

    drug_class: str
    citations: tuple[str, ...]
    role: str | None = None
    oud_treatment: bool = False
    sensitivity: str | None = None
    narrow_range: bool = False
    boxed_warning: bool = False
    risk: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Drug:
    """One entry of the table.

    Attributes
    ----------
    name : str
        Generic name, lower case (for a group, the family's name).
    kind : str
        ``ingredient``, ``group`` (a family named as such: ``"benzodiazepine"``) or
        ``substance``.
    synonyms, brands : tuple of str
        Other names; a combination product's brand is listed under each ingredient.
    rxnorm : str or None
        Ingredient RxCUI where shared/reference/care.md gives one.
    rxnorm_confirmed : bool
        False where care.md found the code only in agreeing code files (its "S").
    assignments : Mapping[str, Assignment]
        Class id -> assignment, in :data:`CLASS_IDS` order.
    rxnorm_source : str
        Where the RxCUI comes from (the reference and its sources); required with ``rxnorm``.
    origin : str
        The file the entry was read from (the shipped table or a site's extension).
    """

    name: str
    kind: str
    synonyms: tuple[str, ...]
    brands: tuple[str, ...]
    rxnorm: str | None
    rxnorm_confirmed: bool
    assignments: Mapping[str, Assignment] = field(default_factory=dict)
    rxnorm_source: str = ""
    origin: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        """The name, the synonyms and the brands."""
        return (self.name, *self.synonyms, *self.brands)


@dataclass(frozen=True)
class Classification:
    """What the table knows about one medication or substance name as entered.

    Attributes
    ----------
    name : str
        As entered.
    drugs : tuple of Drug
        The entries matched, in the order their names occur in ``name``.
    matched : tuple of str
        The words of ``name`` that matched (lower case), e.g. ``("xanax",)``.
    ingredients : tuple of str
        Generic names of the matched ingredients and substances (groups left out).
    classes : tuple of str
        Class ids of the matched entries, in :data:`CLASS_IDS` order.
    unknown : bool
        True when the table knows no word of ``name``: report it as not classified.
    """

    name: str
    drugs: tuple[Drug, ...]
    matched: tuple[str, ...]
    ingredients: tuple[str, ...]
    classes: tuple[str, ...]
    unknown: bool

    @property
    def ingredient(self) -> str | None:
        """The first matched ingredient, or None."""
        return self.ingredients[0] if self.ingredients else None

    def has(self, class_id: str) -> bool:
        """True when a matched entry belongs to ``class_id``."""
        return class_id in self.classes

    def assignments(self, class_id: str) -> tuple[tuple[Drug, Assignment], ...]:
        """(drug, assignment) of every matched entry in ``class_id``, in name order."""
        return tuple(
            (d, d.assignments[class_id]) for d in self.drugs if class_id in d.assignments
        )

    def as_json(self) -> dict[str, Any]:
        """A plain dict for programs and findings."""
        return {
            "name": self.name,
            "ingredients": list(self.ingredients),
            "groups": [d.name for d in self.drugs if d.kind == "group"],
            "classes": list(self.classes),
            "matched": list(self.matched),
            "unknown": self.unknown,
        }


_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
#: A name written against its strength ("xanax1mg", "methadone60mg"): three letters or more,
#: then a digit.
_GLUED = re.compile(r"([a-z]{3,})[0-9]")


@functools.lru_cache(maxsize=8192)
def words(name: str) -> tuple[str, ...]:
    """The lower-case words of a name in order (hyphenated words kept whole)."""
    return tuple(_WORD.findall(str(name).lower()))


def _strings(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise DrugTableError(f"{where}: {key} must be a list of names")
    return tuple(value)


def _assignment(
    class_id: str,
    entry: Any,
    drug_classes: Mapping[str, DrugClass],
    groups: Mapping[str, ProlactinGroup],
    where: str,
) -> Assignment:
    if not isinstance(entry, dict):
        raise DrugTableError(f"{where}: {class_id} must be a table, e.g. {class_id} = {{}}")
    allowed = _CLASS_FIELDS.get(class_id, frozenset()) | {"cite"}
    unknown = set(entry) - allowed
    if unknown:
        raise DrugTableError(f"{where}: {class_id} has unknown fields {sorted(unknown)}")
    citations = _strings(entry.get("cite"), where, f"{class_id}.cite")
    if class_id == "prolactin-raising":
        group = entry.get("group")
        if group not in groups:
            raise DrugTableError(f"{where}: prolactin-raising needs a known group, not {group!r}")
        citations = citations or groups[group].citations
    citations = citations or drug_classes[class_id].citations
    if not citations:
        raise DrugTableError(f"{where}: {class_id} cites no evidence")
    role = entry.get("role")
    if role is not None and role not in OPIOID_ROLES:
        raise DrugTableError(f"{where}: role {role!r} is not one of {', '.join(OPIOID_ROLES)}")
    if (role == "antagonist") != (class_id == "opioid-antagonist") and role is not None:
        raise DrugTableError(f"{where}: an antagonist belongs to opioid-antagonist only")
    sensitivity = entry.get("sensitivity")
    if class_id == "cyp3a-substrate" and sensitivity not in CYP3A_SENSITIVITIES:
        raise DrugTableError(
            f"{where}: sensitivity {sensitivity!r} is not one of {', '.join(CYP3A_SENSITIVITIES)}"
        )
    risk = entry.get("risk")
    if class_id == "qt-prolonging" and risk not in QT_RISKS:
        raise DrugTableError(f"{where}: QT risk {risk!r} is not one of {', '.join(QT_RISKS)}")
    return Assignment(
        drug_class=class_id,
        citations=citations,
        role=role,
        oud_treatment=bool(entry.get("oud", False)),
        sensitivity=sensitivity,
        narrow_range=bool(entry.get("narrow_range", False)),
        boxed_warning=bool(entry.get("boxed_warning", False)),
        risk=risk,
        group=entry.get("group"),
    )


@dataclass(frozen=True)
class _Table:
    classes: Mapping[str, DrugClass]
    groups: Mapping[str, ProlactinGroup]
    drugs: tuple[Drug, ...]
    index: Mapping[tuple[str, ...], tuple[Drug, ...]]
    longest: int


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DrugTableError(f"{where}: {exc}") from exc


def load_table(text: str, where: str = "drugs.toml",
               extensions: Iterable[tuple[str, str]] = ()) -> _Table:
    """Parse and check a drug table, with a site's extension files.

    Parameters
    ----------
    text, where : str
        The table and its name (for messages).
    extensions : iterable of (text, where)
        Files of ``[[drug]]`` entries only, added after the table's own.

    Raises
    ------
    DrugTableError
        On malformed TOML, an unknown class, field, kind, role or category, an assignment
        without citations, a name given twice within one entry, a generic name given to two
        entries, an RxCUI that is not a number or has no source, or an extension with
        anything but ``[[drug]]`` entries.
    """
    data = _parse(text, where)
    unknown = set(data) - {"class", "prolactin-group", "drug"}
    if unknown:
        raise DrugTableError(f"{where}: unknown top-level keys {sorted(unknown)}")
    raw_classes = data.get("class", {})
    if set(raw_classes) != set(CLASS_IDS):
        raise DrugTableError(f"{where}: classes must be exactly {', '.join(CLASS_IDS)}")
    drug_classes = {
        cid: DrugClass(cid, str(raw_classes[cid]["label"]),
                       str(raw_classes[cid].get("description", "")),
                       _strings(raw_classes[cid].get("cite"), where, f"class {cid} cite"))
        for cid in CLASS_IDS
    }
    groups = {
        gid: ProlactinGroup(gid, str(g["label"]), str(g.get("note", "")),
                            _strings(g.get("cite"), where, f"group {gid} cite"))
        for gid, g in data.get("prolactin-group", {}).items()
    }
    entries = [(where, n, e) for n, e in enumerate(data.get("drug", ()), start=1)]
    for ext_text, ext_where in extensions:
        ext = _parse(ext_text, ext_where)
        if set(ext) - {"drug"}:
            raise DrugTableError(f"{ext_where}: a site's drug file holds [[drug]] entries only, "
                                 f"not {sorted(set(ext) - {'drug'})}")
        entries += [(ext_where, n, e) for n, e in enumerate(ext.get("drug", ()), start=1)]
    drugs: list[Drug] = []
    index: dict[tuple[str, ...], list[Drug]] = {}
    generic: dict[str, str] = {}
    for origin, n, entry in entries:
        name = entry.get("name")
        at = f"{origin}: drug {n} ({name!r})"
        if not isinstance(name, str) or not name or name != name.lower():
            raise DrugTableError(f"{at}: name must be a lower-case generic name")
        kind = entry.get("kind", "ingredient")
        if kind not in KINDS:
            raise DrugTableError(f"{at}: kind {kind!r} is not one of {', '.join(KINDS)}")
        extra = set(entry) - _DRUG_FIELDS - set(CLASS_IDS)
        if extra:
            raise DrugTableError(f"{at}: unknown fields or classes {sorted(extra)}")
        assignments = {
            cid: _assignment(cid, entry[cid], drug_classes, groups, at)
            for cid in CLASS_IDS
            if cid in entry
        }
        if name in generic:
            raise DrugTableError(f"{at}: {name!r} is already an entry ({generic[name]})")
        generic[name] = origin
        rxnorm = str(entry["rxnorm"]) if entry.get("rxnorm") else None
        source = str(entry.get("rxnorm_source") or "").strip()
        if rxnorm is not None and not _RXCUI.fullmatch(rxnorm):
            raise DrugTableError(f"{at}: rxnorm must be an RxCUI (digits), not {rxnorm!r}")
        if rxnorm is not None and not source:
            raise DrugTableError(f"{at}: rxnorm {rxnorm} needs rxnorm_source (where it is from)")
        drug = Drug(
            name=name,
            kind=kind,
            synonyms=_strings(entry.get("synonyms"), at, "synonyms"),
            brands=_strings(entry.get("brands"), at, "brands"),
            rxnorm=rxnorm,
            rxnorm_confirmed=bool(entry.get("rxnorm_confirmed", True)),
            assignments=MappingProxyType(assignments),
            rxnorm_source=source,
            origin=origin,
        )
        keys = [words(x) for x in drug.names]
        if len(set(keys)) != len(keys) or not all(keys):
            raise DrugTableError(f"{at}: a name is given twice or has no letters")
        for key in keys:
            index.setdefault(key, []).append(drug)
        drugs.append(drug)
    return _Table(
        classes=MappingProxyType(drug_classes),
        groups=MappingProxyType(groups),
        drugs=tuple(drugs),
        index=MappingProxyType({k: tuple(v) for k, v in index.items()}),
        longest=max((len(k) for k in index), default=1),
    )


@functools.cache
def _table() -> _Table:
    path = resources.files("speciosa.knowledge").joinpath("data", "drugs.toml")
    extra = os.environ.get(EXTRA_ENV, "").strip()
    extensions = []
    if extra:
        try:
            extensions.append((Path(extra).read_text("utf-8"), extra))
        except OSError as exc:
            raise DrugTableError(f"{EXTRA_ENV}={extra}: cannot read the file ({exc})") from exc
    return load_table(path.read_text("utf-8"), "knowledge/data/drugs.toml", extensions)


def get(name: str) -> Drug | None:
    """The entry whose generic name is ``name`` (any case), or None."""
    wanted = str(name or "").strip().lower()
    return next((d for d in _table().drugs if d.name == wanted), None)


def search(text: str, limit: int = 20) -> list[tuple[Drug, str]]:
    """Entries with a name (generic, synonym or brand) that starts with ``text`` (any case),
    as ``(drug, the name that matched)``: generic-name matches first, then by name. Groups
    (``"benzodiazepine"``) are left out: a medication is one drug."""
    wanted = " ".join(words(text))
    if not wanted:
        return []
    hits: list[tuple[int, str, Drug, str]] = []
    for d in _table().drugs:
        if d.kind == "group":
            continue
        for rank, n in enumerate(d.names):
            if " ".join(words(n)).startswith(wanted):
                hits.append((0 if rank == 0 else 1, d.name, d, n))
                break
    hits.sort(key=lambda h: (h[0], h[1]))
    return [(d, n) for _, _, d, n in hits[:limit]]


def all_drugs() -> tuple[Drug, ...]:
    """Every entry, in table order."""
    return _table().drugs


def classes() -> Mapping[str, DrugClass]:
    """Class id -> :class:`DrugClass`, in :data:`CLASS_IDS` order."""
    return _table().classes


def prolactin_groups() -> Mapping[str, ProlactinGroup]:
    """Group id -> :class:`ProlactinGroup`."""
    return _table().groups


@functools.lru_cache(maxsize=8192)
def classify(name: str) -> Classification:
    """Classify a medication or substance name as entered.

    Every run of up to a few consecutive words is looked up (``"h2 blocker"``,
    ``"mitragyna speciosa"``), the longest first: a word inside a longer name is part of
    that name (``"7-hydroxy mitragynine"`` is 7-OH, not also leaf mitragynine). A
    hyphenated word that is no name is read by its parts and runs of them
    (``"buprenorphine-naloxone"``, ``"7-OH-tablets"``); a name written against its
    strength is read without it (``"Xanax1mg"``); numbers, units and forms match nothing.

    Returns
    -------
    Classification
        ``unknown`` is True when nothing matched.
    """
    table = _table()
    tokens = words(name)
    found: dict[str, Drug] = {}
    matched: list[str] = []

    def look(key: tuple[str, ...]) -> None:
        for drug in table.index.get(key, ()):
            found.setdefault(drug.name, drug)
            text = " ".join(key)
            if text not in matched:
                matched.append(text)

    def longest_first(items: tuple[str, ...], join) -> list[tuple[int, int]]:
        """(start, length) of the runs of ``items`` that are names, none inside another."""
        covered = [False] * len(items)
        hits = []
        for n in range(min(table.longest, len(items)), 0, -1):
            for i in range(len(items) - n + 1):
                if not any(covered[i:i + n]) and join(items[i:i + n]) in table.index:
                    covered[i:i + n] = [True] * n
                    hits.append((i, n))
        return sorted(hits)

    hits = longest_first(tokens, tuple)
    covered = {i + k for i, n in hits for k in range(n)}
    for i, n in hits:
        look(tokens[i:i + n])
    for i, token in enumerate(tokens):
        if i in covered:
            continue
        if "-" in token:
            parts = tuple(p for p in token.split("-") if p)
            for j, n in longest_first(parts, lambda run: ("-".join(run),)):
                look(("-".join(parts[j:j + n]),))
        glued = _GLUED.match(token)
        if glued:
            look((glued.group(1),))
    drugs = tuple(found.values())
    present = {cid for d in drugs for cid in d.assignments}
    return Classification(
        name=str(name),
        drugs=drugs,
        matched=tuple(matched),
        ingredients=tuple(d.name for d in drugs if d.kind != "group"),
        classes=tuple(cid for cid in CLASS_IDS if cid in present),
        unknown=not drugs,
    )


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _detail(a: Assignment) -> str:
    bits = []
    if a.role:
        bits.append(a.role)
    if a.oud_treatment:
        bits.append("treatment of opioid use disorder")
    if a.sensitivity:
        bits.append(a.sensitivity)
    if a.narrow_range:
        bits.append("narrow therapeutic range")
    if a.boxed_warning:
        bits.append("boxed warning")
    if a.risk:
        bits.append(f"{a.risk} risk")
    if a.group:
        bits.append(prolactin_groups()[a.group].label)
    return ", ".join(bits)


_HEAD = """\
# Drug knowledge table

Generated from `src/speciosa/knowledge/data/drugs.toml` by `speciosa drugs --markdown`;
`tests/knowledge/test_drugs.py` fails when this file is out of date. Do not edit by hand.

The safety rules (co-use with sedatives, CYP3A interactions) and the prolactin
interpretation look medication and substance names up in this one table
(`speciosa.knowledge.drugs.classify`). Names are matched word by word, case-insensitively,
anywhere in the text, so strengths and forms are ignored (`"Xanax 1 mg"` is alprazolam,
`"oxycodone 10mg tablet"` is oxycodone); a combination brand (`Suboxone`, `Percocet`)
gives each of its ingredients. A name the table does not know is reported as **not
classified** (`unknown`), never passed over as if it were harmless:
`speciosa drugs NAME...` shows what the table makes of a name.

RxNorm ingredient codes are those of `shared/reference/care.md` section 7; a code marked
(S) was found only in agreeing public code files, not in a value set. Each class
assignment lists the evidence ids that support it (`speciosa claims` prints them).
"""


def markdown() -> str:
    """``docs/drugs.md``: the classes, then every entry with its names and assignments."""
    table = _table()
    out = [_HEAD, "## Classes", "", "| Class | Meaning | Default evidence |", "|---|---|---|"]
    for c in table.classes.values():
        out.append(f"| `{c.id}` ({c.label}) | {_cell(c.description)} | "
                   f"{', '.join(c.citations)} |")
    out += ["", "## Prolactin groups", "", "| Group | Shown as | Note | Evidence |",
            "|---|---|---|---|"]
    for g in table.groups.values():
        out.append(f"| `{g.id}` | {_cell(g.label)} | {_cell(g.note)} | "
                   f"{', '.join(g.citations)} |")
    for cid in CLASS_IDS:
        members = [d for d in table.drugs if cid in d.assignments]
        c = table.classes[cid]
        out += ["", f"## {c.label[0].upper() + c.label[1:]} (`{cid}`)", "",
                "| Name | Other names and brands | RxNorm | Detail | Evidence |",
                "|---|---|---|---|---|"]
        for d in members:
            a = d.assignments[cid]
            rx = (d.rxnorm + ("" if d.rxnorm_confirmed else " (S)")) if d.rxnorm else ""
            label = d.name + (f" ({d.kind})" if d.kind != "ingredient" else "")
            out.append(f"| {label} | {_cell(', '.join((*d.synonyms, *d.brands)))} | {rx} | "
                       f"{_cell(_detail(a))} | {', '.join(a.citations)} |")
    coded = [d for d in table.drugs if d.rxnorm]
    uncoded = [d.name for d in table.drugs if not d.rxnorm and d.kind != "group"]
    out += ["", "## RxNorm ingredient codes and their sources", "",
            "The ingredient RxCUI travels with a coded medication (the medication list, FHIR "
            "`MedicationStatement`). Only codes a reference gives are shipped; none is "
            "invented. Reference numbers are those of `shared/reference/care.md`.", "",
            "| Name | RxCUI | Source |", "|---|---|---|"]
    out += [f"| {d.name} | {d.rxnorm}{'' if d.rxnorm_confirmed else ' (S)'} | "
            f"{_cell(d.rxnorm_source)} |" for d in coded]
    out += ["", f"Without an RxCUI ({len(uncoded)} entries; no reference Speciosa holds gives "
            "one, so a medication of these is coded by its name in the table only; "
            "care.md marks domperidone's code UNCONFIRMED and lists the buprenorphine/naloxone "
            "combination code 352364 (S) as a multi-ingredient code, which this table of "
            "ingredients does not hold): " + ", ".join(uncoded) + ".",
            "", "A site adds drugs with a file of `[[drug]]` entries in the same format, named "
            f"by the environment variable `{EXTRA_ENV}`; a generic name the table already has "
            "is refused, and an RxCUI needs its `rxnorm_source`."]
    rest = [d for d in table.drugs if not d.assignments]
    if rest:
        out += ["", "## Known, in none of the classes", "",
                "| Name | Other names and brands |", "|---|---|"]
        out += [f"| {d.name} | {_cell(', '.join((*d.synonyms, *d.brands)))} |" for d in rest]
    return "\n".join(out) + "\n"


def cited_ids(drugs: Iterable[Drug] | None = None) -> list[str]:
    """Every evidence id the table cites (classes, groups, assignments), without repeats."""
    table = _table()
    ids: list[str] = []
    for c in table.classes.values():
        ids.extend(c.citations)
    for g in table.groups.values():
        ids.extend(g.citations)
    for d in drugs if drugs is not None else table.drugs:
        for a in d.assignments.values():
            ids.extend(a.citations)
    return list(dict.fromkeys(ids))
