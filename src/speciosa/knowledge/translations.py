"""Clinical content in other languages: translation overlays keyed by content id and language.

Clinical content (education pages, the decision aid, the patient's explanation of a lab
result, the help shown after an urgent symptom) is data, written in English. A translation
is an *overlay* of one content unit in one language: a TOML file that pairs each English
string of the unit with its translation, and says who reviewed it::

    content = "education/kratom-basics"   # the content id (see CONTENT_KINDS)
    language = "th"
    status = "draft"                        # "draft" or "reviewed"
    translated_by = "..."                   # optional: who wrote it
    reviewed_by = ""                        # required when status = "reviewed"
    reviewed_at = ""                        # YYYY-MM-DD, required when status = "reviewed"

    [[text]]
    en = "What kratom is"
    th = "กระท่อมคืออะไร"

The English is the key: a translation can only replace a string that it names, so the
citations and evidence ids of a statement (which are not in the file) stay the same in every
language, and an English string changed since the translation was written has no
translation. A unit with any English string untranslated is shown in English, saying so:
nothing is shown half in one language, and a reviewed translation never covers a sentence
the reviewer did not see. Numbers are not translated by hand: a translated string must hold
the same numbers and the same ``{placeholders}`` as its English (the loader refuses one that
does not), and values and units are filled in from the same data in every language.

Shipped overlays live in ``speciosa/knowledge/data/translations/<language>/``; a site adds or
replaces them (a reviewed copy of a shipped draft, say) in the directory named by
:data:`SITE_DIR_ENV`. Translations of questionnaires go through the instrument overlay
instead (:mod:`speciosa.knowledge.instruments`, ``language = ...``): a validated instrument
is never translated here. ``docs/translation.md`` describes the review workflow.

The module imports nothing from Django.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = [
    "CONTENT_KINDS",
    "LANGUAGES",
    "SITE_DIR_ENV",
    "STATUSES",
    "Shown",
    "Translation",
    "TranslationError",
    "all_translations",
    "language_of",
    "load_file",
    "shown",
    "translation",
]

#: The languages content may be translated into (English is the original).
LANGUAGES = ("es", "th")
#: Review states of a translation.
STATUSES = ("draft", "reviewed")
#: Environment variable naming a directory of the site's translation files (``*.toml``).
SITE_DIR_ENV = "SPECIOSA_TRANSLATION_DIR"
#: The first part of a content id, and what it names.
CONTENT_KINDS = {
    "education": "an education page (education/<page id>)",
    "decision-aid": "the decision aid's options and priorities (decision-aid/options)",
    "record": "the patient's explanations of lab results (record/lab-results)",
    "alerts": "help shown to the patient after an urgent symptom (alerts/urgent-help)",
}

_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


class TranslationError(ValueError):
    """A translation file is malformed; the message names the file and what to fix."""


@dataclass(frozen=True)
class Translation:
    """One content unit in one language."""

    content: str
    language: str
    status: str
    texts: Mapping[str, str]
    reviewed_by: str = ""
    reviewed_at: dt.date | None = None
    translated_by: str = ""
    source: str = field(default="", compare=False)

    @property
    def reviewed(self) -> bool:
        return self.status == "reviewed"

    def missing(self, english: Iterable[str]) -> list[str]:
        """The English strings of ``english`` that this translation does not translate."""
        return [e for e in dict.fromkeys(english) if _key(e) not in self.texts]

    def get(self, english: str) -> str | None:
        return self.texts.get(_key(english))


@dataclass(frozen=True)
class Shown:
    """In which language a content unit is shown, and what the reader is told about it.

    ``note`` is ``""`` (English asked for, or a reviewed translation), ``"draft"`` (a
    translation not yet reviewed) or ``"missing"`` (no complete translation: shown in
    English).
    """

    requested: str
    language: str
    translation: Translation | None = None

    @property
    def note(self) -> str:
        if self.requested == "en":
            return ""
        if self.translation is None:
            return "missing"
        return "" if self.translation.reviewed else "draft"

    def text(self, english: str) -> str:
        """``english`` in the shown language."""
        if self.translation is None:
            return english
        return self.translation.get(english) or english


def _key(text: str) -> str:
    return " ".join(text.split())


def language_of(code: str | None) -> str:
    """The primary language of a language code (``"th-TH"`` -> ``"th"``; None -> ``"en"``)."""
    return (code or "en").replace("_", "-").split("-", 1)[0].lower() or "en"


def _check_same(en: str, text: str, where: str) -> None:
    if sorted(_PLACEHOLDER.findall(en)) != sorted(_PLACEHOLDER.findall(text)):
        raise TranslationError(
            f"{where}: the translation must keep the placeholders of the English "
            f"{sorted(_PLACEHOLDER.findall(en))}, it has {sorted(_PLACEHOLDER.findall(text))}")
    numbers = sorted(n.replace(",", ".") for n in _NUMBER.findall(_PLACEHOLDER.sub("", en)))
    found = sorted(n.replace(",", ".") for n in _NUMBER.findall(_PLACEHOLDER.sub("", text)))
    if numbers != found:
        raise TranslationError(
            f"{where}: the translation must hold the same numbers as the English "
            f"({', '.join(numbers) or 'none'}), it has {', '.join(found) or 'none'}")


def load_file(name: str, text: str) -> Translation:
    """Parse one translation file (``name`` is used in messages).

    Raises
    ------
    TranslationError
        On malformed TOML, an unknown field, content kind, language or status, a reviewed
        translation without its reviewer and date, a string given twice, or a translation
        whose numbers or placeholders differ from its English.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TranslationError(f"{name}: not valid TOML: {exc}") from exc
    allowed = {"content", "language", "status", "translated_by", "reviewed_by", "reviewed_at",
               "text"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise TranslationError(f"{name}: unknown field {unknown[0]!r} "
                               f"(allowed: {', '.join(sorted(allowed))})")
    content = str(data.get("content", "")).strip()
    if content.split("/", 1)[0] not in CONTENT_KINDS or "/" not in content:
        raise TranslationError(f"{name}: content {content!r} must be one of "
                               + "; ".join(CONTENT_KINDS.values()))
    language = str(data.get("language", ""))
    if language not in LANGUAGES:
        raise TranslationError(f"{name}: language {language!r} must be one of {', '.join(LANGUAGES)}")
    status = str(data.get("status", ""))
    if status not in STATUSES:
        raise TranslationError(f"{name}: status {status!r} must be one of {', '.join(STATUSES)}")
    reviewed_by = str(data.get("reviewed_by", "")).strip()
    raw_at = data.get("reviewed_at", "")
    reviewed_at: dt.date | None = None
    if isinstance(raw_at, dt.date):
        reviewed_at = raw_at
    elif str(raw_at).strip():
        try:
            reviewed_at = dt.date.fromisoformat(str(raw_at).strip())
        except ValueError:
            raise TranslationError(f"{name}: reviewed_at {raw_at!r} must be a date, "
                                   "YYYY-MM-DD") from None
    if status == "reviewed" and not (reviewed_by and reviewed_at):
        raise TranslationError(f"{name}: a reviewed translation names its reviewer "
                               "(reviewed_by) and the date of the review (reviewed_at)")
    if status == "draft" and (reviewed_by or reviewed_at):
        raise TranslationError(f"{name}: a draft has no reviewer; set status = \"reviewed\" "
                               "with reviewed_by and reviewed_at, or remove them")
    texts: dict[str, str] = {}
    rows = data.get("text", [])
    if not isinstance(rows, list) or not rows:
        raise TranslationError(f"{name}: no [[text]] entries")
    for i, row in enumerate(rows, 1):
        where = f"{name} [[text]] {i}"
        if not isinstance(row, dict) or set(row) != {"en", language}:
            raise TranslationError(f"{where}: give exactly 'en' and '{language}'")
        en, tr = _key(str(row["en"])), _key(str(row[language]))
        if not en or not tr:
            raise TranslationError(f"{where}: empty text")
        if en in texts:
            raise TranslationError(f"{where}: the English {en[:60]!r} is translated twice")
        _check_same(en, tr, where)
        texts[en] = tr
    return Translation(content=content, language=language, status=status, texts=texts,
                       reviewed_by=reviewed_by, reviewed_at=reviewed_at,
                       translated_by=str(data.get("translated_by", "")).strip(), source=name)


def _packaged_files() -> list[tuple[str, str]]:
    root = resources.files("speciosa.knowledge").joinpath("data", "translations")
    out = []
    for lang in LANGUAGES:
        folder = root.joinpath(lang)
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".toml"):
                out.append((f"speciosa/knowledge/data/translations/{lang}/{entry.name}",
                            entry.read_text("utf-8")))
    return out


@functools.lru_cache(maxsize=8)
def _registry(site_dir: str | None) -> dict[tuple[str, str], Translation]:
    files = _packaged_files()
    if site_dir:
        folder = Path(site_dir)
        if not folder.is_dir():
            raise TranslationError(f"{SITE_DIR_ENV}={site_dir}: not a directory")
        files += [(str(p), p.read_text("utf-8")) for p in sorted(folder.glob("*.toml"))]
    out: dict[tuple[str, str], Translation] = {}
    seen: dict[tuple[str, str], str] = {}
    for name, text in files:
        site = not name.startswith("speciosa/")
        try:
            t = load_file(name, text)
        except TranslationError:
            if not site:
                raise  # a shipped file is checked by the tests: it always loads
            # A site's file that does not load (a number changed, a placeholder lost) is left
            # out, logged, never a page error: every page of every unit in that language
            # (the urgent help's crisis numbers with them) failed while it was there.
            log.exception("site translation file left out", extra={"file": name})
            continue
        key = (t.content, t.language)
        if key in seen and not (site and seen[key].startswith("speciosa/")):
            raise TranslationError(f"{name}: {t.content} in {t.language} is already "
                                   f"translated in {seen[key]}")
        seen[key] = name
        out[key] = t  # a site's file replaces the shipped one
    return out


def all_translations() -> list[Translation]:
    """Every translation, shipped and the site's (a site's replaces a shipped one)."""
    return list(_registry(os.environ.get(SITE_DIR_ENV) or None).values())


def translation(content: str, language: str) -> Translation | None:
    """The translation of ``content`` into ``language``, or None."""
    return _registry(os.environ.get(SITE_DIR_ENV) or None).get((content, language_of(language)))


def shown(content: str, language: str | None, english: Iterable[str]) -> Shown:
    """How the unit ``content``, whose English strings are ``english``, is shown to a reader
    of ``language``: translated when a translation covers every string, else in English."""
    requested = language_of(language)
    if requested == "en":
        return Shown("en", "en")
    found = translation(content, requested) if requested in LANGUAGES else None
    if found is None or found.missing(english):
        return Shown(requested, "en")
    return Shown(requested, requested, found)
