"""k-anonymity of the research export: measure it, and reach it by generalising and suppressing.

The **quasi-identifiers** (:data:`QUASI_IDENTIFIERS`) are the exported facts about a patient
that someone could know from outside the clinic: site, sex, age, year of entry into care,
pregnancy and breastfeeding. A table is *k-anonymous* when every combination of them that
occurs is shared by at least k patients (an *equivalence class*), so knowing them about a
person leaves at least k candidates.

:func:`anonymise` reaches a required k by **global recoding** on a small lattice of
generalisations (every patient generalised the same way; Samarati 2001):

========== ========================================================
age        5-year bands, 10-year, 20-year, not exported (top-coded "90+")
site       site code, or ``*`` (all sites together)
entry year the year, or ``*``
sex, pregnant, breastfeeding   kept (the models adjust for sex and exclude pregnancy);
           a patient in too small a class is suppressed instead
========== ========================================================

For each of the 16 points of the lattice it counts the patients in classes smaller than k
(they would be suppressed, i.e. left out of every table). Among the points that suppress at
most ``max_suppressed`` of the patients it takes the one with the least *discernibility
cost* (Bayardo and Agrawal 2005): the sum of the squared class sizes, plus the number of
patients for each suppressed one. That single number weighs coarser classes against
suppressed people without hand-tuned weights. Ties go to the lower lattice point, then to
finer ages. If no point meets the suppression limit, the one that suppresses fewest wins:
k always holds for what is exported, at the cost of suppressing more.

References
----------
Sweeney L. k-anonymity: a model for protecting privacy. Int J Uncertain Fuzziness
Knowl-Based Syst 2002;10(5):557-570.
Samarati P. Protecting respondents' identities in microdata release. IEEE Trans Knowl Data
Eng 2001;13(6):1010-1027.
Bayardo RJ, Agrawal R. Data privacy through optimal k-anonymization. Proc ICDE 2005:217-228.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from . import deid

#: Exported quasi-identifier columns of the ``patients`` table.
QUASI_IDENTIFIERS = ("site_id", "sex", "age_band", "entry_year", "pregnant", "breastfeeding")
#: Columns of the table :func:`anonymise` takes (exact age instead of the band).
RAW_COLUMNS = ("patient_id", "site_id", "sex", "age_years", "entry_year", "pregnant",
               "breastfeeding")


@dataclass(frozen=True)
class EquivalenceClass:
    """One combination of quasi-identifier values and how many patients share it."""

    values: dict[str, Any]
    size: int


def k_anonymity(df: pd.DataFrame, quasi_identifiers: Sequence[str] = QUASI_IDENTIFIERS,
                ) -> tuple[int, list[EquivalenceClass]]:
    """The k of ``df`` on ``quasi_identifiers`` and its equivalence classes (largest first).

    k is the size of the smallest class; 0 for an empty table (nothing to re-identify, and
    nothing to analyse either).

    Examples
    --------
    >>> df = pd.DataFrame({"sex": ["female", "female", "male"], "age_band": ["30-39"] * 3})
    >>> k, classes = k_anonymity(df, ["sex", "age_band"])
    >>> k, [c.size for c in classes]
    (1, [2, 1])
    """
    columns = list(quasi_identifiers)
    if df.empty:
        return 0, []
    sizes = df.groupby(columns, dropna=False, sort=True).size().sort_values(ascending=False,
                                                                           kind="stable")
    classes = [EquivalenceClass(dict(zip(columns, _plain(key), strict=True)), int(n))
               for key, n in sizes.items()]
    return int(sizes.min()), classes


def _plain(key: Any) -> tuple[Any, ...]:
    """A groupby key as a tuple of JSON-ready values."""
    key = key if isinstance(key, tuple) else (key,)
    return tuple(v.item() if hasattr(v, "item") else v for v in key)


# --------------------------------------------------------------------------- the lattice

@dataclass(frozen=True)
class Hierarchy:
    """The generalisation levels of one quasi-identifier (level 0 is the finest)."""

    column: str
    levels: tuple[str, ...]
    recode: Callable[[pd.DataFrame, int], pd.Series]


def _age(raw: pd.DataFrame, level: int) -> pd.Series:
    width = (5, 10, 20, None)[level]
    return raw["age_years"].map(lambda years: deid.age_band(int(years), width)).astype("string")


def _kept_or_generalised(column: str) -> Callable[[pd.DataFrame, int], pd.Series]:
    def recode(raw: pd.DataFrame, level: int) -> pd.Series:
        values = raw[column].astype("string")
        return values if level == 0 else pd.Series(deid.GENERALISED, index=raw.index,
                                                   dtype="string")
    return recode


def _kept(column: str) -> Callable[[pd.DataFrame, int], pd.Series]:
    return lambda raw, level: raw[column]


HIERARCHIES = (
    Hierarchy("age_band", ("5-year bands", "10-year bands", "20-year bands", "not exported"),
              _age),
    Hierarchy("site_id", ("site code", "all sites together"), _kept_or_generalised("site_id")),
    Hierarchy("entry_year", ("year", "not exported"), _kept_or_generalised("entry_year")),
    Hierarchy("sex", ("kept",), _kept("sex")),
    Hierarchy("pregnant", ("kept",), _kept("pregnant")),
    Hierarchy("breastfeeding", ("kept",), _kept("breastfeeding")),
)


@dataclass
class AnonymityReport:
    """What :func:`anonymise` did, for the export's ``deid_report.json``."""

    k_required: int
    k: int
    max_suppressed: float
    quasi_identifiers: list[str]
    generalisation: dict[str, str]
    patients_in: int
    patients_suppressed: int
    patients_generalised: int
    classes: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def generalise(raw: pd.DataFrame, node: Sequence[int]) -> pd.DataFrame:
    """The patients table with every quasi-identifier recoded to the lattice point ``node``
    (one level per :data:`HIERARCHIES` entry); other columns as they are."""
    out = raw.drop(columns=["age_years"]).copy()
    for hierarchy, level in zip(HIERARCHIES, node, strict=True):
        out[hierarchy.column] = hierarchy.recode(raw, level)
    return out


def _class_sizes(df: pd.DataFrame) -> pd.Series:
    """Per row, the size of its equivalence class."""
    return df.groupby(list(QUASI_IDENTIFIERS), dropna=False)[df.columns[0]].transform("size")


@dataclass(frozen=True)
class _Candidate:
    node: tuple[int, ...]
    suppressed: int
    cost: int
    admissible: bool

    def rank(self) -> tuple[Any, ...]:
        if self.admissible:
            return (0, self.cost, sum(self.node), self.node)
        return (1, self.suppressed, self.cost, sum(self.node), self.node)


def _evaluate(levels: list[list[list[Any]]], node: tuple[int, ...], k: int, limit: int,
              ) -> _Candidate:
    """Suppressions and discernibility cost of the lattice point ``node``; ``levels[q][l]``
    holds quasi-identifier q recoded to level l, one value per patient (plain Python: for
    a few thousand patients and 16 points, cheaper than 16 pandas group-bys)."""
    keys = list(zip(*(levels[q][level] for q, level in enumerate(node)), strict=True))
    sizes = Counter(keys)
    suppressed = sum(n for n in sizes.values() if n < k)
    cost = sum(n * n for n in sizes.values() if n >= k) + suppressed * len(keys)
    return _Candidate(node, suppressed, cost, suppressed <= limit)


def anonymise(raw: pd.DataFrame, *, k: int, max_suppressed: float,
              ) -> tuple[pd.DataFrame, AnonymityReport]:
    """Generalise and suppress the patients table until it is k-anonymous.

    Parameters
    ----------
    raw : pandas.DataFrame
        One row per patient: ``patient_id``, ``site_id``, ``sex``, ``age_years`` (whole years
        at entry), ``entry_year`` and the ``pregnant`` and ``breastfeeding`` flags.
    k : int
        Required k (at least 1).
    max_suppressed : float
        Largest share of patients to suppress rather than generalise further.

    Returns
    -------
    (pandas.DataFrame, AnonymityReport)
        The generalised table without the suppressed patients (``age_band`` instead of
        ``age_years``), and what was done. Its k is at least ``k`` unless it is empty.
    """
    columns = [c for c in raw.columns if c != "age_years"] + ["age_band"]
    if raw.empty:
        empty = pd.DataFrame(columns=columns)
        return empty, AnonymityReport(k, 0, max_suppressed, list(QUASI_IDENTIFIERS), {}, 0, 0, 0)
    limit = int(max_suppressed * len(raw))
    levels = [[h.recode(raw, level).tolist() for level in range(len(h.levels))]
              for h in HIERARCHIES]
    nodes = itertools.product(*(range(len(h.levels)) for h in HIERARCHIES))
    best = min((_evaluate(levels, node, k, limit) for node in nodes), key=_Candidate.rank)
    table = generalise(raw, best.node)
    table = table[_class_sizes(table) >= k].reset_index(drop=True)
    achieved, classes = k_anonymity(table)
    generalised = len(table) if any(best.node) else 0
    report = AnonymityReport(
        k_required=k, k=achieved, max_suppressed=max_suppressed,
        quasi_identifiers=list(QUASI_IDENTIFIERS),
        generalisation={h.column: h.levels[level] for h, level in zip(HIERARCHIES, best.node,
                                                                      strict=True)},
        patients_in=len(raw), patients_suppressed=best.suppressed,
        patients_generalised=generalised,
        classes=[{"values": c.values, "size": c.size} for c in classes])
    return table, report
