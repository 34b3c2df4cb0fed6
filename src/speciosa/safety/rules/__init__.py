"""Safety rules: pure functions from a patient's timeline and an "as of" time to findings.

Each rule is declared once, next to its function, with :func:`rule` (id, topic, highest
severity, the settings and data windows it reads, its citations; the docstring documents
it), in the module of its clinical area:

=============  ==========================================================================
``mood``       suicide risk (PHQ-9 item 9), severe depression (PHQ-9), severe anxiety (GAD-7)
``acute``      acute harms on the side-effect checklist (seizure)
``withdrawal`` COWS bands, SOWS level and rise
``liver``      aminotransferases, bilirubin, jaundice symptoms
``pregnancy``  kratom in current use while pregnant
``co_use``     sedating drugs and alcohol with kratom; CYP3A substrates
``drug_testing`` urine drug test panels read against what is expected
``use``        kratom dose escalation
``prolactin``  high, very high, rising, with symptoms, test due
``adherence``  a break in the diary
=============  ==========================================================================

Everything else is derived from the registry: :data:`RULES`, ``speciosa rules``,
``docs/rules.md`` (:func:`markdown`, checked by ``tests/safety``) and the windows of the
timeline the sweep loads (:func:`data_windows`). Rules are listed most severe first and,
within a severity, in the order of the areas above (:data:`AREAS`) and of their
declarations in the module,
which is also the order of findings of the same severity. A new area module is added to
:data:`AREAS`.

To add a rule: write the function in its area's module (or a new module imported below),
decorate it with :func:`rule` (a new module goes into :data:`AREAS`), cite its evidence, and
read the timeline only through the :class:`Context` methods, each inside a window the rule
declares (a test replays every rule through a recording context to check this). Then regenerate ``docs/rules.md``
(``speciosa rules --markdown > docs/rules.md``).

Messages are written for the supervising clinician; next steps are considerations, never
a kratom dose. Where the evidence is thin (kratom and prolactin: one case report plus
opioid class pharmacology) the message says so.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from speciosa.safety.batch import paused_gc
from speciosa.safety.rules import _docs, use
from speciosa.safety.rules._context import Context
from speciosa.safety.rules._registry import (
    RANK,
    REGISTRY,
    SEVERITIES,
    TABLES,
    Finding,
    Found,
    Registry,
    Rule,
    RuleDeclarationError,
    Window,
    rule,
)
from speciosa.safety.rules.co_use import UDS_CLASSES
from speciosa.safety.rules.prolactin import PROLACTIN_SYMPTOMS
from speciosa.safety.settings import DEFAULT_SETTINGS, SETTINGS, Setting, resolve_settings
from speciosa.safety.timeline import Timeline

__all__ = [
    "AREAS",
    "DEFAULT_SETTINGS",
    "PROLACTIN_SYMPTOMS",
    "RULES",
    "SETTINGS",
    "SEVERITIES",
    "TABLES",
    "UDS_CLASSES",
    "Context",
    "DataWindows",
    "Finding",
    "Found",
    "Registry",
    "Rule",
    "RuleDeclarationError",
    "Setting",
    "Window",
    "data_windows",
    "evaluate",
    "evaluate_many",
    "get_rule",
    "markdown",
    "rule",
]

#: The clinical areas, each a module of this package, in listing order.
AREAS = ("mood", "acute", "withdrawal", "liver", "pregnancy", "co_use", "drug_testing", "use",
         "prolactin", "adherence")
for _area in AREAS:
    importlib.import_module(f"{__name__}.{_area}")  # registers the area's rules

#: Every rule, most severe first (see the module docstring for the order within a severity).
RULES: tuple[Rule, ...] = REGISTRY.rules(AREAS)

_BY_ID = {r.id: r for r in RULES}


def get_rule(rule_id: str) -> Rule:
    """The rule with this id (KeyError when unknown)."""
    return _BY_ID[rule_id]


def evaluate(timeline: Timeline, as_of: datetime,
             settings: Mapping[str, float | int] | None = None) -> list[Finding]:
    """Evaluate every rule on one timeline.

    Parameters
    ----------
    timeline : Timeline
    as_of : datetime
        Read the timeline as of this moment (later data is ignored). Naive: patient's zone.
    settings : Mapping, optional
        Overrides of :data:`DEFAULT_SETTINGS`.

    Returns
    -------
    list of Finding
        Urgent first, then warning, then info; within a severity, in rule order.

    Raises
    ------
    ValueError
        For an unknown setting name or a non-positive value.
    """
    return _findings(Context(timeline, as_of, resolve_settings(settings)))


def _findings(ctx: Context) -> list[Finding]:
    """Every rule on one patient's context: urgent first, then in rule order."""
    found = []
    for r in RULES:
        f = r.evaluate(ctx)
        if f is not None:
            found.append(f)
    found.sort(key=lambda f: RANK[f.severity])
    return found


#: Steps that compute, in arrays across the patients of a batch, what a rule would compute
#: for each patient alone (and remember it in each context); :func:`evaluate_many` runs them.
BATCH_STEPS = (use.prepare_fortnights,)


def evaluate_many(timelines: Mapping[Any, Timeline], as_of: datetime,
                  settings: Mapping[str, float | int] | None = None) -> dict[Any, list[Finding]]:
    """:func:`evaluate` for many timelines at once (the sweep's chunks): the same findings,
    with the work a rule allows done in arrays across the patients (:data:`BATCH_STEPS`)
    and the rest per patient.

    Parameters
    ----------
    timelines : Mapping
        Any key (the sweep's patient ids) -> Timeline.
    as_of, settings
        As for :func:`evaluate`.

    Returns
    -------
    dict
        The same keys -> the findings :func:`evaluate` gives for that timeline.
    """
    resolved = resolve_settings(settings)
    out = {}
    with paused_gc():  # a chunk's contexts and findings hold no cycles (speciosa.safety.batch)
        contexts = {key: Context(tl, as_of, resolved) for key, tl in timelines.items()}
        batch = list(contexts.values())
        for step in BATCH_STEPS:
            step(batch)
        for key, ctx in contexts.items():
            out[key] = _findings(ctx)
    return out


def markdown() -> str:
    """``docs/rules.md``, from the registry."""
    return _docs.markdown(RULES)


@dataclass(frozen=True)
class DataWindows:
    """The union of the windows every rule reads, per table, in days before ``as_of``.

    Attributes
    ----------
    days : Mapping[str, float]
        Table -> the longest window counted back from as_of (0 when only the last row or
        the whole history is read); tables no rule reads are absent.
    before_last : Mapping[str, float]
        Table -> days before its last row (however old) that a rule reads; present only for
        tables with such a window (``doses``: 0, the last dose itself).
    keys : Mapping[str, float]
        ``"table:key"`` (an instrument, lab code or side-effect code) -> the longest window
        of that key, for tables whose rules name their keys.
    full_history : frozenset of str
        Tables some rule reads in full.
    """

    days: Mapping[str, float]
    before_last: Mapping[str, float]
    keys: Mapping[str, float] = field(default_factory=dict)
    full_history: frozenset[str] = frozenset()

    def instruments(self) -> dict[str, float]:
        """Instrument -> days, for the assessments the rules read (others are not read)."""
        return {k.split(":", 1)[1]: v for k, v in self.keys.items() if k.startswith("assessments:")}


def data_windows(settings: Mapping[str, float | int] | None = None) -> DataWindows:
    """What the rules read of a timeline with these settings, from their declarations.

    The sweep (``speciosa.clinic.alerts.lookback``) loads no more than this.

    Raises
    ------
    ValueError
        For an unknown setting name or a non-positive value.
    """
    s = resolve_settings(settings)
    days: dict[str, float] = {}
    before_last: dict[str, float] = {}
    keys: dict[str, float] = {}
    full: set[str] = set()
    for r in RULES:
        for w in r.windows:
            n = w.length(s)
            if n is None:
                full.add(w.table)
                days.setdefault(w.table, 0)
                continue
            target = before_last if w.anchor == "last" else days
            target[w.table] = max(target.get(w.table, 0), n)
            days.setdefault(w.table, 0)
            if w.anchor == "as_of":
                for key in w.keys:
                    keys[f"{w.table}:{key}"] = max(keys.get(f"{w.table}:{key}", 0), n)
    return DataWindows(MappingProxyType(days), MappingProxyType(before_last),
                       MappingProxyType(keys), frozenset(full))
