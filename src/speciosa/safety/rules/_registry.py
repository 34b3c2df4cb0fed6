"""The rule registry: one declaration per rule, next to its function.

A rule is a function ``(Context) -> Found | None`` decorated with :func:`rule`, which holds
everything else about it: the stable id alerts are keyed on, the topic, the highest
severity, the settings it reads, the data windows it reads (the sweep loads only those),
and the evidence it rests on. The function's docstring is the rule's documentation: its
first paragraph is the one-line description (``speciosa rules``), the rest the details in
``docs/rules.md``; both may name settings as ``{setting_name}`` (``{name:%}`` for a
fraction shown as a percentage), filled in with the values in force, so the text never
disagrees with a default.

The function returns :class:`Found` (severity, message, evidence, next step) and never types
its own id: :meth:`Rule.evaluate` adds the id, topic and citations and checks the severity
and citations against the declaration.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from speciosa.safety.settings import DEFAULT_SETTINGS, SETTINGS

if TYPE_CHECKING:
    from speciosa.safety.rules._context import Context

#: Severities, most severe first.
SEVERITIES = ("urgent", "warning", "info")
RANK = {s: i for i, s in enumerate(SEVERITIES)}

_UNITS = {s.name: s.unit for s in SETTINGS}
_ID = re.compile(r"SAF-[A-Z0-9]+(?:-[A-Z0-9]+)*")
_TOPIC = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_PLACEHOLDER = re.compile(r"\{([a-z0-9_]+)(:%)?\}")


class RuleDeclarationError(ValueError):
    """A rule declaration that cannot be right (raised at import, naming the rule)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule found.

    Attributes
    ----------
    rule, topic : str
        The rule's id and topic.
    severity : {"urgent", "warning", "info"}
    message : str
        For the clinician: what was found and how strong the evidence behind it is.
    evidence : dict
        The data that triggered it (JSON-serialisable: dates as ISO strings).
    next_step : str
        A consideration for the clinician, never a kratom dose.
    citations : tuple of str
        Evidence-registry ids.
    """

    rule: str
    topic: str
    severity: str
    message: str
    evidence: dict[str, Any]
    next_step: str
    citations: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        """The finding as a JSON-ready dict."""
        return {
            "rule": self.rule,
            "topic": self.topic,
            "severity": self.severity,
            "message": self.message,
            "evidence": self.evidence,
            "next_step": self.next_step,
            "citations": list(self.citations),
        }


@dataclass(frozen=True, slots=True)
class Found:
    """What a rule function returns: the finding without the rule's own id and topic.

    ``citations`` None means all the rule's citations; otherwise a subset of them.
    """

    severity: str
    message: str
    evidence: dict[str, Any]
    next_step: str
    citations: tuple[str, ...] | None = None


#: The tables of a timeline a window can read.
TABLES = ("doses", "diary_days", "assessments", "side_effects", "labs", "medications",
          "substances")
_TABLE_WORDS = {"doses": "kratom doses", "diary_days": "diary days", "assessments": "assessments",
                "side_effects": "side-effect reports", "labs": "lab results",
                "medications": "medications", "substances": "substance use"}


@dataclass(frozen=True, slots=True)
class Window:
    """A slice of one timeline table that a rule reads.

    Attributes
    ----------
    table : str
        One of :data:`TABLES`.
    days : tuple of (str or int)
        Its length in days, the sum of these setting names and constants, counted back
        from local midnight before ``as_of`` (``anchor="as_of"``) or from the table's last
        row at or before ``as_of``, however old (``anchor="last"``). Empty with
        ``anchor="as_of"``: the whole history.
    keys : tuple of str
        The instruments, lab codes or side-effect codes read; empty: every row.
    anchor : {"as_of", "last"}
    why : str
        Why the rule needs it (shown in ``docs/rules.md`` when the reason is not obvious).
    """

    table: str
    days: tuple[str | int, ...] = ()
    keys: tuple[str, ...] = ()
    anchor: str = "as_of"
    why: str = ""

    def __post_init__(self) -> None:
        if self.table not in TABLES:
            raise RuleDeclarationError(f"window table {self.table!r}: use one of {TABLES}")
        if self.anchor not in ("as_of", "last"):
            raise RuleDeclarationError(f"window anchor {self.anchor!r}: use 'as_of' or 'last'")
        for part in self.days:
            if isinstance(part, str) and part not in DEFAULT_SETTINGS:
                raise RuleDeclarationError(f"window days: {part!r} is not a setting")
            if not isinstance(part, str) and (isinstance(part, bool) or not isinstance(part, int)
                                              or part < 0):
                raise RuleDeclarationError(f"window days: {part!r} is not a setting or days >= 0")

    @property
    def full_history(self) -> bool:
        """True when the window is the whole history up to ``as_of``."""
        return self.anchor == "as_of" and not self.days

    def settings(self) -> tuple[str, ...]:
        """The setting names its length depends on."""
        return tuple(p for p in self.days if isinstance(p, str))

    def length(self, settings: Mapping[str, float | int]) -> float | None:
        """Its length in days with these settings (None: the whole history)."""
        if self.full_history:
            return None
        return sum(settings[p] if isinstance(p, str) else p for p in self.days)

    def describe(self, settings: Mapping[str, float | int] = DEFAULT_SETTINGS) -> str:
        """In words, e.g. ``"assessments (phq9): the last 14 days (phq9_recent_days)"``, with
        the reason when one is given."""
        what = _TABLE_WORDS[self.table] + (f" ({', '.join(self.keys)})" if self.keys else "")
        if self.full_history:
            when = "the whole history"
        else:
            n = self.length(settings)
            count = f"{n:g} day{'s' if n != 1 else ''}"
            names = self.settings()
            source = f" ({' + '.join(str(p) for p in self.days)})" if names else ""
            source = source if len(self.days) > 1 or names else ""
            if self.anchor == "last":
                when = ("the last one, however old" if not n else
                        f"the last one, however old, and the {count} up to it{source}")
            else:
                when = f"the last {count}{source}"
        return f"{what}: {when}" + (f" — {self.why}" if self.why else "")


# -- short constructors used in the declarations


def doses(*days: str | int, why: str = "") -> Window:
    """Kratom doses of the last ``days``."""
    return Window("doses", days, why=why)


def last_dose(why: str = "named in the evidence") -> Window:
    """The last kratom dose at or before as_of, however old."""
    return Window("doses", (), anchor="last", why=why)


def assessments(instrument: str, *days: str | int, why: str = "") -> Window:
    """Assessments of one instrument in the last ``days``."""
    return Window("assessments", days, (instrument,), why=why)


def side_effects(codes: tuple[str, ...], *days: str | int, why: str = "") -> Window:
    """Side-effect reports of these codes in the last ``days``."""
    return Window("side_effects", days, tuple(codes), why=why)


def labs(codes: tuple[str, ...], *days: str | int, why: str = "") -> Window:
    """Lab results of these codes in the last ``days`` (none given: the whole history)."""
    return Window("labs", days, tuple(codes), why=why)


def medications(why: str = "a medication's start and end decide whether it is current") -> Window:
    """The medication list (whole history: start and end dates decide what is current)."""
    return Window("medications", (), why=why)


def substances(*days: str | int, why: str = "") -> Window:
    """Reported substance use of the last ``days``."""
    return Window("substances", days, why=why)


def diary_days(*days: str | int, why: str = "") -> Window:
    """Diary days of the last ``days``."""
    return Window("diary_days", days, why=why)


def diary_before_last(days: int, why: str = "") -> Window:
    """The last diary day, however old, and the ``days`` before it."""
    return Window("diary_days", (days,), anchor="last", why=why)


@dataclass(frozen=True)
class Rule:
    """A safety rule, as declared with :func:`rule`.

    Attributes
    ----------
    id : str
        Stable id (``SAF-PRL-HIGH``); alerts are keyed on it.
    topic : str
    severity : str
        The most severe level its findings can have (the description says when lower).
    settings : tuple of str
        Names of the settings it reads.
    windows : tuple of Window
        The data it reads; the sweep loads no more than the union of all rules' windows.
    citations : tuple of str
        Evidence ids behind the rule (each finding cites a subset or all of them).
    function : callable
        ``function(context) -> Found | None``; its docstring documents the rule.
    version : int
        Raised whenever what the rule finds changes (condition, severity, message); each
        alert stores the version that raised it.
    area : str
        The clinical area (the module of ``speciosa.safety.rules`` it is declared in).
    """

    id: str
    topic: str
    severity: str
    settings: tuple[str, ...]
    windows: tuple[Window, ...]
    citations: tuple[str, ...]
    function: Callable[[Context], Found | None] = field(repr=False)
    version: int = 1
    area: str = ""
    order: int = field(default=0, repr=False, compare=False)

    def _doc(self) -> tuple[str, str]:
        text = inspect.cleandoc(self.function.__doc__ or "")
        summary, _, details = text.partition("\n\n")
        return " ".join(summary.split()), details.strip()

    def describe(self, settings: Mapping[str, float | int] = DEFAULT_SETTINGS) -> str:
        """The one-paragraph description, with these settings' values."""
        return fill(self._doc()[0], settings)

    @property
    def description(self) -> str:
        """The description with the default settings (``speciosa rules``)."""
        return self.describe()

    def details(self, settings: Mapping[str, float | int] = DEFAULT_SETTINGS) -> str:
        """The rest of the docstring (paragraphs), with these settings' values."""
        return fill(self._doc()[1], settings)

    def evaluate(self, ctx: Context) -> Finding | None:
        """Run the rule on one evaluation context."""
        found = self.function(ctx)
        if found is None:
            return None
        if RANK[found.severity] < RANK[self.severity]:
            raise RuleDeclarationError(
                f"{self.id} found {found.severity!r}, above its declared severity {self.severity!r}")
        cites = self.citations if found.citations is None else found.citations
        if found.citations is not None and not set(cites) <= set(self.citations):
            raise RuleDeclarationError(f"{self.id} cites {sorted(set(cites) - set(self.citations))}, "
                                       "which its declaration does not list")
        return Finding(self.id, self.topic, found.severity, found.message, found.evidence,
                       found.next_step, cites)

    def as_json(self) -> dict[str, Any]:
        """The rule as listed by ``speciosa rules --json``."""
        return {
            "id": self.id,
            "version": self.version,
            "topic": self.topic,
            "severity": self.severity,
            "description": self.description,
            "settings": {name: DEFAULT_SETTINGS[name] for name in self.settings},
            "citations": list(self.citations),
            "area": self.area,
            "windows": [w.describe() for w in self.windows],
        }


def fill(text: str, settings: Mapping[str, float | int]) -> str:
    """Replace ``{setting}`` with its value (``{setting:%}``: a fraction as a percentage)."""

    def value(m: re.Match) -> str:
        v = settings[m.group(1)]
        return f"{v * 100:g} %" if m.group(2) else f"{v:g}"

    return _PLACEHOLDER.sub(value, text)


class Registry:
    """Declared rules by id. :data:`REGISTRY` holds Speciosa's rules; a separate registry
    lets a test declare rules without adding them to Speciosa's."""

    def __init__(self) -> None:
        self._rules: dict[str, Rule] = {}

    def rule(self, id: str, *, topic: str, severity: str, settings: tuple[str, ...] = (),
             windows: tuple[Window, ...], citations: tuple[str, ...], version: int = 1):
        """Declare a safety rule: decorate its function with everything known about it.

        Parameters
        ----------
        id : str
            Stable id, ``SAF-`` and upper-case words (alerts are keyed on it: never rename).
        topic : str
            Lower-case, hyphenated; one rule per topic.
        severity : {"urgent", "warning", "info"}
            The highest severity its findings can have.
        settings : tuple of str
            Every setting the function reads (:mod:`speciosa.safety.settings`).
        windows : tuple of Window
            Every slice of the timeline it reads (see the constructors in this module).
        citations : tuple of str
            Evidence-registry ids (``tests/safety`` checks that each resolves).
        version : int
            1 for a new rule; raise it with every change to what the rule finds.

        Raises
        ------
        RuleDeclarationError
            At import: a malformed or duplicate id or topic, an unknown severity or setting,
            a window or docstring that depends on a setting not declared, no docstring, no
            citation.
        """

        def register(function: Callable[[Context], Found | None]) -> Callable[[Context], Found | None]:
            def fail(problem: str) -> None:
                raise RuleDeclarationError(
                    f"{id} ({function.__module__}.{function.__name__}): {problem}")

            if not _ID.fullmatch(id):
                fail("the id must look like SAF-WORD(-WORD...)")
            if id in self._rules:
                fail(f"the id is already declared by {self._rules[id].function.__qualname__}")
            if not _TOPIC.fullmatch(topic):
                fail("the topic must be lower-case words joined by hyphens")
            if topic in {r.topic for r in self._rules.values()}:
                fail(f"another rule already has the topic {topic!r}")
            if severity not in SEVERITIES:
                fail(f"severity must be one of {SEVERITIES}")
            for name in settings:
                if name not in DEFAULT_SETTINGS:
                    fail(f"unknown setting {name!r} (add it to speciosa.safety.settings)")
            if not windows:
                fail("a rule reads something: declare its windows")
            for w in windows:
                for name in w.settings():
                    if name not in settings:
                        fail(f"window {w.describe()!r} depends on {name!r}: declare it in settings")
            if not citations:
                fail("a rule cites its evidence: give citations")
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                fail("the version is a whole number from 1")
            doc = inspect.cleandoc(function.__doc__ or "")
            if not doc:
                fail("the docstring documents the rule: write one")
            for m in _PLACEHOLDER.finditer(doc):
                if m.group(1) not in settings:
                    fail(f"the docstring names {{{m.group(1)}}}: declare it in settings")
            area = function.__module__.rsplit(".", 1)[-1]
            self._rules[id] = Rule(id, topic, severity, tuple(settings), tuple(windows),
                                   tuple(citations), function, version, area, len(self._rules))
            return function

        return register

    def rules(self, areas: tuple[str, ...]) -> tuple[Rule, ...]:
        """Every declared rule, most severe first; within a severity, by area (in the order
        of ``areas``) and then in declaration order.

        Raises
        ------
        RuleDeclarationError
            For a rule declared in a module that is not one of ``areas``.
        """
        for r in self._rules.values():
            if r.area not in areas:
                raise RuleDeclarationError(
                    f"{r.id} is declared in {r.function.__module__}, which is not a listed "
                    f"area ({', '.join(areas)}): add it to speciosa.safety.rules.AREAS")
        return tuple(sorted(self._rules.values(),
                            key=lambda r: (RANK[r.severity], areas.index(r.area), r.order)))


#: Speciosa's rules.
REGISTRY = Registry()
#: Declare one of Speciosa's rules (see :meth:`Registry.rule`).
rule = REGISTRY.rule


def unit_of(setting: str) -> str:
    """The unit of a setting (for documentation)."""
    return _UNITS[setting]
