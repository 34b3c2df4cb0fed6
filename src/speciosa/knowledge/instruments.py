"""Clinical instruments as data, and the one scorer that scores them all.

Each instrument (COWS, SOWS, PHQ-9, ...) is a TOML definition file under
``speciosa/knowledge/data/instruments/``: its items, the allowed values of each item with
their anchor text, how it is scored, its bands, its flags, citations and licence note. This
module loads those files once (validating them, with errors that name the file and the
field), and :func:`score` scores a response to any of them. A new questionnaire is a new
definition file, not new code. The format is documented in ``docs/instruments.md``.

A site may add definitions, replace them, or load licensed wording onto the packaged ones
(an *overlay*) from the directory named by the environment variable
``SPECIOSA_INSTRUMENT_DIR``.

The module imports nothing from Django and does no I/O after the definitions are loaded.

References
----------
.. [1] Wesson DR, Ling W. The Clinical Opiate Withdrawal Scale (COWS).
   J Psychoactive Drugs 2003;35(2):253-259. doi:10.1080/02791072.2003.10400007
.. [2] Handelsman L, Cochrane KJ, Aronson MJ, Ness R, Rubinstein KJ, Kanof PD. Two new rating
   scales for opiate withdrawal. Am J Drug Alcohol Abuse 1987;13(3):293-308.
.. [3] Kroenke K, Spitzer RL, Williams JBW. The PHQ-9: validity of a brief depression severity
   measure. J Gen Intern Med 2001;16:606-613.
.. [4] Spitzer RL, Kroenke K, Williams JBW, Lowe B. A brief measure for assessing generalized
   anxiety disorder. Arch Intern Med 2006;166:1092-1097.
.. [5] Bush K et al. The AUDIT alcohol consumption questions (AUDIT-C).
   Arch Intern Med 1998;158(16):1789-1795.
.. [6] McGahuey CA et al. The Arizona Sexual Experience Scale (ASEX): reliability and
   validity. J Sex Marital Ther 2000;26(1):25-40. doi:10.1080/009262300278623
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "SITE_DIR_ENV",
    "SEXES",
    "AllowedValue",
    "Band",
    "Condition",
    "DefinitionError",
    "Flag",
    "Instrument",
    "InstrumentError",
    "InstrumentTranslation",
    "Item",
    "Localized",
    "Measurement",
    "Score",
    "all_instruments",
    "clinician_recorded",
    "cows_pulse_score",
    "flags_for_total",
    "get_instrument",
    "load_definitions",
    "localized",
    "score",
]

#: Environment variable naming a directory of site definition files (``*.toml``).
SITE_DIR_ENV = "SPECIOSA_INSTRUMENT_DIR"

#: Values accepted for ``sex`` by :func:`score` (used by sex-specific cut-offs).
SEXES = ("female", "male")

#: Who fills an instrument in, in Speciosa: ``"clinician"``, the clinician rates what they
#: observe (COWS); ``"patient"``, the patient answers at a visit and the clinician records
#: the answers (PHQ-9); ``"patient-diary"``, the patient answers in their own diary (SOWS).
COMPLETED_BY = ("clinician", "patient", "patient-diary")
#: The ``completed_by`` values whose responses a clinician records.
CLINICIAN_RECORDS = ("clinician", "patient")
SCORING_KINDS = ("sum", "sum-prorated")


class InstrumentError(ValueError):
    """A response, or a request, that does not fit an instrument.

    Parameters
    ----------
    message : str
        What is wrong and what is allowed, in words a person can act on.
    item : str or None
        The item id concerned, when there is one.
    allowed : tuple of int or None
        The allowed values of that item, when they are a finite set worth naming.
    """

    def __init__(
        self, message: str, *, item: str | None = None, allowed: tuple[int, ...] | None = None
    ) -> None:
        super().__init__(message)
        self.item = item
        self.allowed = allowed


class DefinitionError(ValueError):
    """An instrument definition file is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class AllowedValue:
    """One value an item accepts, with its anchor text ("" for an unanchored scale point)."""

    value: int
    anchor: str


@dataclass(frozen=True)
class Measurement:
    """A raw measurement an item accepts in place of its score, and how it converts.

    ``bins`` are ``(up_to, score)`` pairs in increasing order: a measurement ``x`` scores the
    first bin with ``x <= up_to``; above the last bin it scores ``above``.
    """

    key: str
    unit: str
    minimum: float
    maximum: float
    bins: tuple[tuple[float, int], ...]
    above: int

    def convert(self, measured: float, *, instrument: str = "", item: str = "") -> int:
        """Convert a measurement to the item's score.

        Raises
        ------
        InstrumentError
            If the measurement is not a finite number within ``[minimum, maximum]``.
        """
        where = f"{instrument} item '{item}' ({self.key})".strip()
        if isinstance(measured, bool) or not isinstance(measured, int | float):
            raise InstrumentError(
                f"{where}: {measured!r} is not a number of {self.unit}", item=item or None
            )
        if not math.isfinite(measured) or not self.minimum <= measured <= self.maximum:
            raise InstrumentError(
                f"{where}: {measured!r} {self.unit} is outside the plausible range "
                f"{_fmt_num(self.minimum)}-{_fmt_num(self.maximum)} {self.unit}",
                item=item or None,
            )
        for up_to, value in self.bins:
            if measured <= up_to:
                return value
        return self.above


@dataclass(frozen=True)
class Item:
    """One item of an instrument.

    Attributes
    ----------
    id, label : str
        Stable id and a short neutral label (never licensed wording).
    values : tuple of AllowedValue
        The allowed values, in increasing order, each with its anchor text.
    text : str or None
        The full wording, when it may be shipped or a licensed site loaded it.
    scored : bool
        Whether the item counts towards the total.
    required : bool
        Whether a response is incomplete without it.
    measurement : Measurement or None
        A raw measurement accepted in place of the score (COWS pulse in beats/min).
    """

    id: str
    label: str
    values: tuple[AllowedValue, ...]
    text: str | None = None
    scored: bool = True
    required: bool = True
    measurement: Measurement | None = None

    @property
    def allowed(self) -> tuple[int, ...]:
        """The allowed integer values, in increasing order."""
        return tuple(v.value for v in self.values)

    def anchor(self, value: int) -> str:
        """The anchor text of ``value`` ("" when that scale point has none)."""
        for v in self.values:
            if v.value == value:
                return v.anchor
        raise InstrumentError(
            f"item '{self.id}': {value!r} is not allowed; allowed values are "
            f"{_fmt_allowed(self.allowed)}",
            item=self.id,
            allowed=self.allowed,
        )


@dataclass(frozen=True)
class Band:
    """A published interpretation band: ``label`` covers totals ``min`` to ``max`` inclusive."""

    label: str
    min: int
    max: int


@dataclass(frozen=True)
class Condition:
    """One condition of a flag.

    ``kind`` is one of

    - ``"item"``: item ``item`` was answered with a value >= ``threshold``;
    - ``"items"``: at least ``count`` scored items were answered with values >= ``threshold``;
    - ``"total"``: the total exists and is >= ``threshold``;
    - ``"total-by-sex"``: the total exists and is >= the cut-off for the patient's sex
      (``by_sex``). With the sex unknown, the condition holds when the total reaches every
      cut-off; when it reaches only some, the flag ``<flag id>-depends-on-sex`` is raised
      instead.
    """

    kind: str
    threshold: int | None = None
    item: str | None = None
    count: int | None = None
    by_sex: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Flag:
    """A named finding raised when any of its conditions holds."""

    id: str
    description: str
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Instrument:
    """An instrument definition (see ``docs/instruments.md``).

    Attributes
    ----------
    id, name, version : str
        Stable id, display name, definition version (stored with every response).
    completed_by : str
        ``"clinician"``, ``"patient"`` or ``"patient-diary"`` (see :data:`COMPLETED_BY`).
    items : tuple of Item
        In the order they are asked.
    bands : tuple of Band
        Published bands, in increasing order; empty when there are none.
    citations : tuple of str
        Evidence-registry citation ids.
    licence : str
        Licence note (what may be shipped, who holds the copyright, what is unconfirmed).
    description : str
        What it measures, time frame, caveats.
    band_note : str or None
        What a total without a band means (e.g. COWS 0-4; SOWS has no bands at all).
    scoring : str
        ``"sum"``, or ``"sum-prorated"`` (an incomplete response with at least
        ``min_answered`` scored items answered gets a prorated total).
    min_answered : int or None
        For ``"sum-prorated"``.
    flags : tuple of Flag
        Findings the scorer raises.
    short_name : str
        Abbreviation used in messages (``COWS``); defaults to the upper-cased id.
    prompt : str
        What the patient is asked before each item, with the time frame ("Over the last 2
        weeks, how often have you been bothered by:"); "" when the items stand alone.
    source : str
        The file the definition came from (and any overlay applied to it).
    translation : str
        ``"validated-only"`` (the default) or ``"own-wording"`` (:data:`TRANSLATION_KINDS`).
    translations : mapping
        Language code to :class:`InstrumentTranslation`, from language overlays.
    """

    id: str
    name: str
    version: str
    completed_by: str
    items: tuple[Item, ...]
    bands: tuple[Band, ...]
    citations: tuple[str, ...]
    licence: str
    description: str = ""
    band_note: str | None = None
    scoring: str = "sum"
    min_answered: int | None = None
    flags: tuple[Flag, ...] = ()
    short_name: str = ""
    prompt: str = ""
    source: str = field(default="", compare=False)
    translation: str = "validated-only"
    #: The language overlays loaded onto it, by language (see :func:`localized`).
    translations: Mapping[str, InstrumentTranslation] = field(default_factory=dict, compare=False)

    def item(self, item_id: str) -> Item:
        """Return the item ``item_id``; :class:`InstrumentError` names the known items."""
        for it in self.items:
            if it.id == item_id:
                return it
        raise InstrumentError(
            f"{self.label} has no item {item_id!r}; its items are "
            + ", ".join(it.id for it in self.items),
            item=item_id,
        )

    @property
    def label(self) -> str:
        """Short display name (``COWS``, ``PHQ-9``...); the upper-cased id if none is given."""
        return self.short_name or self.id.upper()

    @property
    def min_total(self) -> int:
        """The lowest possible total."""
        return sum(min(it.allowed) for it in self.items if it.scored)

    @property
    def max_total(self) -> int:
        """The highest possible total."""
        return sum(max(it.allowed) for it in self.items if it.scored)

    def band_for(self, total: int | None) -> Band | None:
        """The band covering ``total``, or None (no total, or no band for it)."""
        if total is None:
            return None
        for band in self.bands:
            if band.min <= total <= band.max:
                return band
        return None


@dataclass(frozen=True)
class Score:
    """The result of scoring one response.

    ``total`` is None when the response is incomplete (unless the instrument prorates);
    ``band`` is None when there is no total or no band covers it; ``missing`` lists the
    required items not answered; ``flags`` the ids of the flags raised.
    """

    instrument: str
    version: str
    total: int | None
    band: str | None
    complete: bool
    flags: tuple[str, ...]
    missing: tuple[str, ...]


# --------------------------------------------------------------------------- loading


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _fmt_allowed(allowed: tuple[int, ...]) -> str:
    if len(allowed) > 12 and allowed == tuple(range(allowed[0], allowed[-1] + 1)):
        return f"the integers {allowed[0]} to {allowed[-1]}"
    return ", ".join(str(v) for v in allowed)


class _Reader:
    """Typed access to one TOML table, raising DefinitionError naming file and field."""

    def __init__(self, source: str, path: str, data: Any) -> None:
        self.source = source
        self.path = path
        if not isinstance(data, dict):
            self.fail(path, "expected a table")
        self.data: dict[str, Any] = data

    def fail(self, where: str, problem: str) -> None:
        raise DefinitionError(f"{self.source}: {where or '(top level)'}: {problem}")

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def check_keys(self, allowed: Iterable[str]) -> None:
        unknown = sorted(set(self.data) - set(allowed))
        if unknown:
            self.fail(self._where(unknown[0]), f"unknown field (allowed: {', '.join(allowed)})")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                self.fail(self._where(key), "missing required field")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            ok = False
        else:
            ok = isinstance(value, kinds)
        if not ok:
            names = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            self.fail(self._where(key), f"expected {names}, got {value!r}")
        return value

    def text(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, str, default)
        if key in self.data and not value.strip():
            self.fail(self._where(key), "must not be empty")
        return value

    def integer(self, key: str, default: Any = ...) -> Any:
        return self.get(key, int, default)

    def number(self, key: str, default: Any = ...) -> Any:
        return self.get(key, (int, float), default)

    def table(self, key: str) -> _Reader:
        return _Reader(self.source, self._where(key), self.get(key, dict))

    def tables(self, key: str, default: Any = ...) -> list[_Reader]:
        rows = self.get(key, list, default)
        if rows is None:
            return []
        return [_Reader(self.source, f"{self._where(key)}[{i}]", row) for i, row in enumerate(rows)]


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", dict: "a table",
               list: "an array", bool: "true or false"}

_TOP_KEYS = ("id", "name", "short_name", "version", "completed_by", "description", "prompt", "citations", "licence",
             "band_note", "scoring", "scales", "items", "bands", "flags", "translation")
_OVERLAY_KEYS = ("overlay", "licence", "prompt", "items")
#: The fields of a language overlay (an overlay with ``language``).
_LANGUAGE_OVERLAY_KEYS = (*_OVERLAY_KEYS, "language", "status", "name", "short_name",
                          "translated_by", "reviewed_by", "reviewed_at", "validated_source")
#: How an instrument may be translated: ``"validated-only"`` (a validated or copyrighted
#: instrument: only a validated translation a site loads, never one Speciosa writes) or
#: ``"own-wording"`` (Speciosa's own wording: shipped translations, reviewed like content).
TRANSLATION_KINDS = ("validated-only", "own-wording")
#: Languages an instrument may be shown in besides English.
LANGUAGES = ("es", "th")
#: A language overlay's status: a translation of Speciosa's own wording is ``draft`` or
#: ``reviewed``; one of a validated instrument is ``validated`` (and names its source).
LANGUAGE_STATUSES = {"own-wording": ("draft", "reviewed"), "validated-only": ("validated",)}


def _parse_values(r: _Reader) -> tuple[AllowedValue, ...]:
    """Parse either ``values = [{value, anchor}, ...]`` or ``range = {min, max, anchors}``."""
    if r.has("values") == r.has("range"):
        r.fail(r.path, "give exactly one of 'values' or 'range' (or 'scale' on an item)")
    if r.has("values"):
        values = []
        for row in r.tables("values"):
            row.check_keys(("value", "anchor"))
            values.append(AllowedValue(row.integer("value"), row.text("anchor")))
        if not values:
            r.fail(f"{r.path}.values", "must list at least one value")
    else:
        rng = r.table("range")
        rng.check_keys(("min", "max", "anchors"))
        lo, hi = rng.integer("min"), rng.integer("max")
        if hi <= lo:
            rng.fail(f"{rng.path}.max", f"must be greater than min ({lo})")
        anchors_raw = rng.get("anchors", dict, {})
        anchors: dict[int, str] = {}
        for key, text in anchors_raw.items():
            try:
                number = int(key)
            except ValueError:
                number = None
            if number is None or not lo <= number <= hi:
                rng.fail(f"{rng.path}.anchors.{key}", f"must be an integer from {lo} to {hi}")
            if not isinstance(text, str) or not text.strip():
                rng.fail(f"{rng.path}.anchors.{key}", "expected a non-empty string")
            anchors[number] = text
        values = [AllowedValue(v, anchors.get(v, "")) for v in range(lo, hi + 1)]
    numbers = [v.value for v in values]
    if numbers != sorted(set(numbers)):
        r.fail(f"{r.path}.values", "values must be distinct and in increasing order")
    return tuple(values)


def _parse_measurement(r: _Reader, allowed: tuple[int, ...]) -> Measurement:
    r.check_keys(("key", "unit", "min", "max", "bins", "above"))
    bins = []
    for row in r.tables("bins"):
        row.check_keys(("up_to", "value"))
        bins.append((float(row.number("up_to")), row.integer("value")))
    if not bins:
        r.fail(f"{r.path}.bins", "must list at least one bin")
    if [b[0] for b in bins] != sorted({b[0] for b in bins}):
        r.fail(f"{r.path}.bins", "up_to must increase from bin to bin")
    above = r.integer("above")
    for value in [b[1] for b in bins] + [above]:
        if value not in allowed:
            r.fail(f"{r.path}.bins", f"score {value} is not an allowed value of the item")
    lo, hi = float(r.number("min")), float(r.number("max"))
    if hi <= lo:
        r.fail(f"{r.path}.max", "must be greater than min")
    return Measurement(r.text("key"), r.text("unit"), lo, hi, tuple(bins), above)


def _parse_condition(r: _Reader, items: dict[str, Item]) -> Condition:
    r.check_keys(("item", "at_least", "count", "total_at_least", "total_at_least_by_sex"))
    if r.has("total_at_least_by_sex"):
        by = r.table("total_at_least_by_sex")
        by.check_keys(SEXES)
        cutoffs = tuple((sex, by.integer(sex)) for sex in SEXES)
        return Condition("total-by-sex", by_sex=cutoffs)
    if r.has("total_at_least"):
        return Condition("total", threshold=r.integer("total_at_least"))
    threshold = r.integer("at_least")
    if r.has("item"):
        item_id = r.text("item")
        if item_id not in items:
            r.fail(f"{r.path}.item", f"no item {item_id!r} in this instrument")
        return Condition("item", threshold=threshold, item=item_id)
    count = r.integer("count")
    if count < 1:
        r.fail(f"{r.path}.count", "must be at least 1")
    return Condition("items", threshold=threshold, count=count)


def _parse_definition(data: dict[str, Any], source: str) -> Instrument:
    """Build an :class:`Instrument` from a parsed definition file, validating every field."""
    r = _Reader(source, "", data)
    r.check_keys(_TOP_KEYS)
    inst_id = r.text("id")
    completed_by = r.text("completed_by")
    if completed_by not in COMPLETED_BY:
        r.fail("completed_by", f"must be one of {', '.join(COMPLETED_BY)}, got {completed_by!r}")

    scales: dict[str, tuple[AllowedValue, ...]] = {}
    if r.has("scales"):
        scales_r = r.table("scales")
        for name in scales_r.data:
            sr = scales_r.table(name)
            sr.check_keys(("values", "range"))
            scales[name] = _parse_values(sr)

    items: list[Item] = []
    for ir in r.tables("items"):
        ir.check_keys(("id", "label", "text", "values", "range", "scale", "scored", "required",
                       "measurement"))
        if ir.has("scale"):
            if ir.has("values") or ir.has("range"):
                ir.fail(ir.path, "give 'scale' or 'values'/'range', not both")
            name = ir.text("scale")
            if name not in scales:
                ir.fail(f"{ir.path}.scale", f"no scale {name!r} under [scales]")
            values = scales[name]
        else:
            values = _parse_values(ir)
        allowed = tuple(v.value for v in values)
        item = Item(
            id=ir.text("id"),
            label=ir.text("label"),
            values=values,
            text=ir.text("text", None),
            scored=ir.get("scored", bool, True),
            required=ir.get("required", bool, True),
            measurement=_parse_measurement(ir.table("measurement"), allowed)
            if ir.has("measurement") else None,
        )
        if item.scored and not item.required:
            ir.fail(f"{ir.path}.required", "a scored item must be required")
        if item.id in {it.id for it in items}:
            ir.fail(f"{ir.path}.id", f"duplicate item id {item.id!r}")
        items.append(item)
    if not items:
        r.fail("items", "an instrument needs at least one item")
    by_id = {it.id: it for it in items}
    keys = [it.measurement.key for it in items if it.measurement]
    clash = set(keys) & set(by_id) or {k for k in keys if keys.count(k) > 1}
    if clash:
        r.fail("items", f"measurement key {sorted(clash)[0]!r} clashes with another key")

    scoring = r.table("scoring") if r.has("scoring") else _Reader(source, "scoring", {})
    scoring.check_keys(("kind", "min_answered"))
    kind = scoring.text("kind", "sum")
    if kind not in SCORING_KINDS:
        scoring.fail("scoring.kind", f"must be one of {', '.join(SCORING_KINDS)}, got {kind!r}")
    min_answered = scoring.integer("min_answered", None)
    n_scored = sum(it.scored for it in items)
    if kind == "sum-prorated":
        if min_answered is None or not 1 <= min_answered <= n_scored:
            scoring.fail("scoring.min_answered",
                         f"'sum-prorated' needs min_answered between 1 and {n_scored}")
    elif min_answered is not None:
        scoring.fail("scoring.min_answered", "only used with kind = 'sum-prorated'")

    lo = sum(min(it.allowed) for it in items if it.scored)
    hi = sum(max(it.allowed) for it in items if it.scored)
    bands: list[Band] = []
    for br in r.tables("bands", []):
        br.check_keys(("label", "min", "max"))
        band = Band(br.text("label"), br.integer("min"), br.integer("max"))
        if band.max < band.min:
            br.fail(f"{br.path}.max", f"must be >= min ({band.min})")
        if band.min < lo or band.max > hi:
            br.fail(br.path, f"band {band.min}-{band.max} is outside the possible totals {lo}-{hi}")
        if bands and band.min <= bands[-1].max:
            br.fail(f"{br.path}.min", "bands must be in increasing order and must not overlap")
        bands.append(band)

    flags: list[Flag] = []
    for fr in r.tables("flags", []):
        fr.check_keys(("id", "description", "when_any"))
        conditions = tuple(_parse_condition(c, by_id) for c in fr.tables("when_any"))
        if not conditions:
            fr.fail(f"{fr.path}.when_any", "a flag needs at least one condition")
        flags.append(Flag(fr.text("id"), fr.text("description"), conditions))

    citations = r.get("citations", list, [])
    for i, c in enumerate(citations):
        if not isinstance(c, str) or not c.strip():
            r.fail(f"citations[{i}]", "expected a citation id (string)")

    return Instrument(
        id=inst_id,
        name=r.text("name"),
        version=r.text("version"),
        completed_by=completed_by,
        items=tuple(items),
        bands=tuple(bands),
        citations=tuple(citations),
        licence=r.text("licence"),
        description=r.text("description", ""),
        band_note=r.text("band_note", None),
        scoring=kind,
        min_answered=min_answered,
        flags=tuple(flags),
        short_name=r.text("short_name", ""),
        prompt=r.text("prompt", ""),
        source=source,
        translation=_translation_kind(r),
    )


def _translation_kind(r: _Reader) -> str:
    kind = r.text("translation", "validated-only")
    if kind not in TRANSLATION_KINDS:
        r.fail("translation", f"must be one of {', '.join(TRANSLATION_KINDS)}, got {kind!r}")
    return kind


def _apply_overlay(base: Instrument, data: dict[str, Any], source: str) -> Instrument:
    """Load wording (item ``text``, ``label``, anchors) and a licence note onto ``base``.

    An overlay can change words only: never values, scoring, bands or flags.
    """
    r = _Reader(source, "", data)
    r.check_keys(_LANGUAGE_OVERLAY_KEYS if "language" in data else _OVERLAY_KEYS)
    items = {it.id: it for it in base.items}
    for ir in r.tables("items", []):
        ir.check_keys(("id", "text", "label", "anchors"))
        item_id = ir.text("id")
        if item_id not in items:
            ir.fail(f"{ir.path}.id", f"{base.id} has no item {item_id!r}")
        item = items[item_id]
        anchors = dict((v.value, v.anchor) for v in item.values)
        if ir.has("anchors"):
            ar = ir.table("anchors")
            for key, text in ar.data.items():
                try:
                    number = int(key)
                except ValueError:
                    number = None
                if number not in anchors:
                    ar.fail(f"{ar.path}.{key}",
                            f"not an allowed value of {item_id} ({_fmt_allowed(item.allowed)})")
                if not isinstance(text, str) or not text.strip():
                    ar.fail(f"{ar.path}.{key}", "expected a non-empty string")
                anchors[number] = text
        items[item_id] = replace(
            item,
            text=ir.text("text", item.text),
            label=ir.text("label", item.label),
            values=tuple(AllowedValue(v, a) for v, a in anchors.items()),
        )
    return replace(
        base,
        items=tuple(items[it.id] for it in base.items),
        licence=r.text("licence", base.licence),
        prompt=r.text("prompt", base.prompt),
        source=f"{base.source} + {source}",
    )


@dataclass(frozen=True)
class InstrumentTranslation:
    """An instrument in another language, from a language overlay.

    ``status`` is ``draft`` or ``reviewed`` (Speciosa's own wording) or ``validated`` (a
    validated translation a site loaded, named by ``validated_source``)."""

    language: str
    status: str
    instrument: Instrument
    validated_source: str = ""
    translated_by: str = ""
    reviewed_by: str = ""
    reviewed_at: str = ""
    source: str = ""


#: Where the packaged definitions live (a language overlay of a validated instrument from
#: here is refused: those come only from a site).
_PACKAGED_PREFIX = "speciosa/knowledge/data/instruments/"


def _language_overlay(base: Instrument, data: dict[str, Any], source: str) -> InstrumentTranslation:
    """Check a language overlay and build the instrument in that language."""
    r = _Reader(source, "", data)
    r.check_keys(_LANGUAGE_OVERLAY_KEYS)
    language = r.text("language")
    if language not in LANGUAGES:
        r.fail("language", f"must be one of {', '.join(LANGUAGES)}, got {language!r}")
    status = r.text("status")
    allowed = LANGUAGE_STATUSES[base.translation]
    if status not in allowed:
        if base.translation == "validated-only":
            r.fail("status", f"{base.label} is a validated instrument: only a validated "
                   f"translation can be loaded (status = \"validated\", with "
                   f"validated_source naming it), never one written for Speciosa")
        r.fail("status", f"must be one of {', '.join(allowed)}, got {status!r}")
    if base.translation == "validated-only":
        if source.startswith(_PACKAGED_PREFIX):
            r.fail("overlay", f"a translation of {base.label} is not shipped with Speciosa: "
                   "a site loads its validated translation from SPECIOSA_INSTRUMENT_DIR")
        r.text("validated_source")
    reviewed_by, reviewed_at = r.text("reviewed_by", ""), str(r.get("reviewed_at", (str, dt.date), ""))
    if status == "reviewed" and not (reviewed_by and reviewed_at):
        r.fail("reviewed_by", "a reviewed translation names its reviewer and reviewed_at")
    if status == "draft" and (reviewed_by or reviewed_at):
        r.fail("reviewed_by", "a draft has no reviewer; set status = \"reviewed\"")
    if base.translation == "own-wording":
        # Speciosa's own wording is translated whole: every item's label and anchor
        missing = [it.id for it in base.items
                   if it.id not in {str(x.get("id")) for x in data.get("items", ())
                                    if isinstance(x, dict) and "label" in x}]
        if missing:
            r.fail("items", f"no translated label for {', '.join(missing)}")
    words = {k: v for k, v in data.items() if k in _OVERLAY_KEYS}
    inst = _apply_overlay(base, words, source)
    inst = replace(inst, name=r.text("name", base.name),
                   short_name=r.text("short_name", base.short_name), translations={})
    return InstrumentTranslation(
        language=language, status=status, instrument=inst,
        validated_source=r.text("validated_source", ""), translated_by=r.text("translated_by", ""),
        reviewed_by=reviewed_by, reviewed_at=reviewed_at, source=source)


@dataclass(frozen=True)
class Localized:
    """An instrument as a reader of ``requested`` sees it.

    ``note`` is ``""`` (English asked for, or a reviewed or validated translation),
    ``"draft"`` (a translation of Speciosa's own wording not reviewed yet),
    ``"not-validated"`` (a validated instrument with no validated translation loaded for the
    language: shown with its English short labels) or ``"missing"`` (Speciosa's own
    instrument, not translated into the language)."""

    instrument: Instrument
    requested: str
    language: str
    status: str = ""
    note: str = ""


def localized(instrument: Instrument | str, language: str | None) -> Localized:
    """``instrument`` in ``language`` when a language overlay gives it, else in English."""
    inst = instrument if isinstance(instrument, Instrument) else get_instrument(instrument)
    requested = (language or "en").replace("_", "-").split("-", 1)[0].lower() or "en"
    if requested == "en":
        return Localized(inst, "en", "en")
    found = inst.translations.get(requested)
    if found is None:
        note = "not-validated" if inst.translation == "validated-only" else "missing"
        return Localized(inst, requested, "en", note=note)
    return Localized(found.instrument, requested, requested, found.status,
                     "draft" if found.status == "draft" else "")


def _read_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(f"{source}: not valid TOML: {exc}") from exc


def load_definitions(
    files: Iterable[tuple[str, str]], base: Mapping[str, Instrument] | None = None
) -> dict[str, Instrument]:
    """Parse definition files into instruments, on top of ``base``.

    Parameters
    ----------
    files : iterable of (source, text)
        File name (for error messages) and TOML text, in load order.
    base : mapping, optional
        Instruments already loaded. A full definition with the same id replaces one of
        these; an overlay (``overlay = "id"``) loads wording onto one of these or onto a
        definition in ``files``.

    Returns
    -------
    dict
        Instruments by id, base first, then new ones in file order.

    Raises
    ------
    DefinitionError
        Naming the file and the field at fault.
    """
    result = dict(base or {})
    seen: dict[str, str] = {}
    overlays: list[tuple[str, dict[str, Any]]] = []
    for source, text in files:
        data = _read_toml(text, source)
        if "overlay" in data:
            overlays.append((source, data))
            continue
        inst = _parse_definition(data, source)
        if inst.id in seen:
            raise DefinitionError(f"{source}: id: {inst.id!r} is already defined in {seen[inst.id]}")
        seen[inst.id] = source
        result[inst.id] = inst
    languages: list[tuple[str, dict[str, Any]]] = []
    for source, data in overlays:
        target = data["overlay"]
        if not isinstance(target, str) or target not in result:
            raise DefinitionError(
                f"{source}: overlay: no instrument {target!r} to overlay "
                f"(known: {', '.join(sorted(result))})"
            )
        if "language" in data:  # applied after the wording: a translation of the final text
            languages.append((source, data))
            continue
        result[target] = _apply_overlay(result[target], data, source)
    for source, data in languages:
        base = result[data["overlay"]]
        found = _language_overlay(base, data, source)
        result[base.id] = replace(base, translations={**base.translations, found.language: found})
    return result


def _packaged_files() -> list[tuple[str, str]]:
    folder = resources.files("speciosa.knowledge").joinpath("data", "instruments")
    entries = sorted((e for e in folder.iterdir() if e.name.endswith(".toml")), key=lambda e: e.name)
    files = [(f"{_PACKAGED_PREFIX}{e.name}", e.read_text("utf-8")) for e in entries]
    # translations of Speciosa's own instruments (language overlays), one folder a language
    translated = folder.joinpath("translations")
    for lang in LANGUAGES if translated.is_dir() else ():
        sub = translated.joinpath(lang)
        if sub.is_dir():
            files += [(f"{_PACKAGED_PREFIX}translations/{lang}/{e.name}", e.read_text("utf-8"))
                      for e in sorted(sub.iterdir(), key=lambda e: e.name) if e.name.endswith(".toml")]
    return files


@functools.lru_cache(maxsize=1)
def _packaged() -> dict[str, Instrument]:
    return load_definitions(_packaged_files())


@functools.lru_cache(maxsize=8)
def _registry(site_dir: str | None) -> dict[str, Instrument]:
    if not site_dir:
        return _packaged()
    folder = Path(site_dir)
    if not folder.is_dir():
        raise DefinitionError(f"{SITE_DIR_ENV}={site_dir}: not a directory")
    files = [(str(p), p.read_text("utf-8")) for p in sorted(folder.glob("*.toml"))]
    return load_definitions(files, base=_packaged())


def _instruments() -> dict[str, Instrument]:
    return _registry(os.environ.get(SITE_DIR_ENV) or None)


def all_instruments() -> list[Instrument]:
    """Every instrument: packaged ones (by file name), then a site's additions."""
    return list(_instruments().values())


def clinician_recorded() -> list[Instrument]:
    """The instruments a clinician records for a patient (``completed_by`` "clinician" or
    "patient"): the clinician-rated ones first, then the questionnaires, each by id. The web
    page and the API both offer these; the diary instruments are the patient's own."""
    chosen = [i for i in all_instruments() if i.completed_by in CLINICIAN_RECORDS]
    return sorted(chosen, key=lambda i: (CLINICIAN_RECORDS.index(i.completed_by), i.id))


def get_instrument(instrument_id: str) -> Instrument:
    """Return the instrument ``instrument_id``; an unknown id raises :class:`InstrumentError`."""
    registry = _instruments()
    try:
        return registry[instrument_id]
    except (KeyError, TypeError):
        raise InstrumentError(
            f"unknown instrument {instrument_id!r}; known instruments are "
            + ", ".join(registry)
        ) from None


# --------------------------------------------------------------------------- scoring


def _validated(inst: Instrument, responses: Mapping[str, Any]) -> dict[str, int]:
    """Check every response against the definition; convert measurements to scores."""
    if not isinstance(responses, Mapping):
        raise InstrumentError(
            f"{inst.label}: responses must be a mapping of item id to value, "
            f"got {type(responses).__name__}"
        )
    by_measure = {it.measurement.key: it for it in inst.items if it.measurement}
    values: dict[str, int] = {}
    for key, value in responses.items():
        if key in by_measure:
            item = by_measure[key]
            if item.id in responses:
                raise InstrumentError(
                    f"{inst.label} item '{item.id}': give either the score '{item.id}' "
                    f"or the measurement '{key}', not both",
                    item=item.id, allowed=item.allowed,
                )
            assert item.measurement is not None
            values[item.id] = item.measurement.convert(value, instrument=inst.label, item=item.id)
            continue
        item = inst.item(key) if isinstance(key, str) else inst.item(repr(key))
        if isinstance(value, bool) or not isinstance(value, int):
            raise InstrumentError(
                f"{inst.label} item '{item.id}': {value!r} is not an integer; allowed values "
                f"are {_fmt_allowed(item.allowed)}",
                item=item.id, allowed=item.allowed,
            )
        if value not in item.allowed:
            raise InstrumentError(
                f"{inst.label} item '{item.id}': {value} is not allowed; allowed values are "
                f"{_fmt_allowed(item.allowed)}",
                item=item.id, allowed=item.allowed,
            )
        values[item.id] = value
    return values


def _check_sex(sex: str | None) -> None:
    if sex is not None and sex not in SEXES:
        raise InstrumentError(f"sex must be one of {', '.join(SEXES)} (or omitted), got {sex!r}")


def _condition_holds(cond: Condition, values: Mapping[str, int], scored: list[str],
                     total: int | None, sex: str | None) -> bool | None:
    """True or False; None when only the patient's sex would decide it."""
    threshold = cond.threshold if cond.threshold is not None else 0
    if cond.kind == "item":
        answer = values.get(cond.item or "")
        return answer is not None and answer >= threshold
    if cond.kind == "items":
        n = sum(1 for i in scored if i in values and values[i] >= threshold)
        return n >= (cond.count or 1)
    if total is None:
        return False
    if cond.kind == "total":
        return total >= threshold
    cutoffs = dict(cond.by_sex)  # total-by-sex
    if sex is not None:
        return total >= cutoffs[sex]
    if total >= max(cutoffs.values()):
        return True
    return None if total >= min(cutoffs.values()) else False


def _flags(inst: Instrument, values: Mapping[str, int], total: int | None,
           sex: str | None) -> tuple[str, ...]:
    raised: list[str] = []
    scored = [it.id for it in inst.items if it.scored]
    for flag in inst.flags:
        results = [_condition_holds(c, values, scored, total, sex) for c in flag.conditions]
        if any(r is True for r in results):
            raised.append(flag.id)
        elif any(r is None for r in results):
            raised.append(f"{flag.id}-depends-on-sex")
    return tuple(raised)


def score(
    instrument: Instrument | str, responses: Mapping[str, int], *, sex: str | None = None
) -> Score:
    """Score one response to an instrument.

    Parameters
    ----------
    instrument : Instrument or str
        The instrument, or its id.
    responses : mapping of str to int
        Item id to the chosen value. An item with a measurement also accepts the raw
        measurement under the measurement's key (COWS: ``"pulse-bpm": 96``).
    sex : {"female", "male"}, optional
        Needed by sex-specific cut-offs (AUDIT-C).

    Returns
    -------
    Score
        ``total`` is the sum of the scored items, or None when a required item is missing
        (unless the instrument prorates and enough items are answered: then the sum scaled
        to all scored items, rounded half up). ``band`` is the label of the band covering the
        total, or None. ``flags`` holds the ids of the flags raised; item conditions are
        checked on the answered items even when the response is incomplete.

    Raises
    ------
    InstrumentError
        For an unknown instrument or item, a non-integer value, a value the item does not
        allow (the message names the item and the allowed values), or an unknown ``sex``.

    References
    ----------
    .. [1] Wesson DR, Ling W. J Psychoactive Drugs 2003;35(2):253-259 (COWS scoring).
    .. [2] McGahuey CA et al. J Sex Marital Ther 2000;26(1):25-40 (ASEX item rules).
    .. [3] Bush K et al. Arch Intern Med 1998;158(16):1789-1795 (AUDIT-C).
    """
    inst = instrument if isinstance(instrument, Instrument) else get_instrument(instrument)
    _check_sex(sex)
    values = _validated(inst, responses)
    missing = tuple(it.id for it in inst.items if it.required and it.id not in values)
    scored = [it for it in inst.items if it.scored]
    answered = [values[it.id] for it in scored if it.id in values]
    total: int | None
    if not missing:
        total = sum(answered)
    elif inst.scoring == "sum-prorated" and len(answered) >= (inst.min_answered or len(scored)):
        total = int(sum(answered) * len(scored) / len(answered) + 0.5)
    else:
        total = None
    band = inst.band_for(total)
    return Score(
        instrument=inst.id,
        version=inst.version,
        total=total,
        band=band.label if band else None,
        complete=not missing,
        flags=_flags(inst, values, total, sex),
        missing=missing,
    )


def flags_for_total(
    instrument: Instrument | str, total: int, *, sex: str | None = None
) -> tuple[str, ...]:
    """The flags of a response recorded as a total only (an import, a paper form).

    The same conditions, with the same precedence, as :func:`score`: a flag is raised when
    any of its total conditions holds, and ``<flag id>-depends-on-sex`` only when none holds
    and a sex-specific cut-off is reached for some sexes but not others (sex not given).
    Conditions on items cannot be checked without the items and raise nothing here: a
    caller that needs them (PHQ-9 item 9) must say that they are unknown.

    Parameters
    ----------
    instrument : Instrument or str
        The instrument, or its id.
    total : int
        Within the instrument's range of totals.
    sex : {"female", "male"}, optional
        Needed by sex-specific cut-offs (AUDIT-C).

    Raises
    ------
    InstrumentError
        For an unknown instrument, a total that is not an integer or is outside the
        instrument's range (the message gives the range), or an unknown ``sex``.

    Examples
    --------
    >>> flags_for_total("audit-c", 4, sex="male")
    ('audit-c-positive',)
    >>> flags_for_total("audit-c", 3)
    ('audit-c-positive-depends-on-sex',)
    """
    inst = instrument if isinstance(instrument, Instrument) else get_instrument(instrument)
    _check_sex(sex)
    if isinstance(total, bool) or not isinstance(total, int):
        raise InstrumentError(f"{inst.label}: a total must be an integer, got {total!r}")
    if not inst.min_total <= total <= inst.max_total:
        raise InstrumentError(
            f"{inst.label} totals run from {inst.min_total} to {inst.max_total}, not {total}")
    return _flags(inst, {}, total, sex)


def cows_pulse_score(bpm: float) -> int:
    """Convert a resting pulse in beats/min to the COWS pulse item score.

    80 or below scores 0; 81-100 scores 1; 101-120 scores 2; above 120 scores 4 (a
    non-integer rate is compared as given: 80.5 scores 1). The bins are read from the COWS
    definition file.

    Raises
    ------
    InstrumentError
        If ``bpm`` is not a finite number in the plausible range of the definition.

    References
    ----------
    .. [1] Wesson DR, Ling W. The Clinical Opiate Withdrawal Scale (COWS).
       J Psychoactive Drugs 2003;35(2):253-259, item 1 "Resting pulse rate".
    """
    measurement = _packaged()["cows"].item("pulse").measurement
    assert measurement is not None
    return measurement.convert(bpm, instrument="COWS", item="pulse")
