"""The message catalogues: compile them and check them (docs/translation.md).

The translations live in ``src/speciosa/locale/<language>/LC_MESSAGES/`` as ``django.po``
(templates, Python: pages, forms, messages, e-mails) and ``djangojs.po`` (the patient's
scripts, served by Django's ``JavaScriptCatalog``). Developers extract with Django's
``makemessages`` (GNU gettext); everything here is pure Python (Babel), so that a fresh
machine builds the ``.mo`` files with nothing but ``make install``, and the test
``tests/test_translations.py`` runs anywhere:

- :func:`compile_catalogues` writes each ``.mo`` from its ``.po`` (fuzzy entries left out, as
  ``msgfmt`` does);
- :func:`problems` lists what keeps a catalogue from being complete: an entry untranslated,
  fuzzy, with placeholders that differ from its source, and a string marked for
  translation in the source that the catalogue does not have (run ``makemessages``).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from babel.messages import extract as bextract
from babel.messages import mofile, pofile

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/speciosa
LOCALE_DIR = PACKAGE_DIR / "locale"
# Every language but the source language (English) has a complete catalogue.
TRANSLATED = ("es", "th")
DOMAINS = ("django", "djangojs")

# The keywords of Django's makemessages (django.core.management.commands.makemessages), for
# Babel's extractors: name -> Babel's argument spec (1-based; (n, "c") is a context).
KEYWORDS = {
    "_": None, "gettext": None, "gettext_lazy": None, "gettext_noop": None,
    "ngettext": (1, 2), "ngettext_lazy": (1, 2),
    "pgettext": ((1, "c"), 2), "pgettext_lazy": ((1, "c"), 2),
    "npgettext": ((1, "c"), 2, 3), "npgettext_lazy": ((1, "c"), 2, 3),
}
# Scripts that are not ours (vendored libraries, minified builds) and the service workers,
# which have no catalogue (they run outside the page).
JS_SKIPPED = ("vendor", "workbox", ".min.js", "sw.js")


@dataclass(frozen=True)
class Message:
    """A string marked for translation: its context (or ``None``), its text, and where."""

    context: str | None
    msgid: str
    where: str


def catalogue_path(language: str, domain: str, locale_dir: Path = LOCALE_DIR) -> Path:
    return locale_dir / language / "LC_MESSAGES" / f"{domain}.po"


def read(path: Path):
    """The Babel catalogue of a ``.po`` file."""
    with path.open("rb") as f:
        return pofile.read_po(f, abort_invalid=True)


def compile_catalogues(locale_dir: Path = LOCALE_DIR, *, force: bool = False) -> list[Path]:
    """Write each ``<domain>.mo`` beside its ``.po`` when it is missing or older (always with
    ``force``); fuzzy entries are not compiled. Returns the files written."""
    written = []
    for po in sorted(locale_dir.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        if not force and mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        catalogue = read(po)
        buffer = io.BytesIO()
        mofile.write_mo(buffer, catalogue, use_fuzzy=False)
        tmp = mo.with_suffix(".mo.tmp")
        tmp.write_bytes(buffer.getvalue())
        tmp.replace(mo)  # whole or not at all: a server reading it never sees half a file
        written.append(mo)
    return written


def _templates() -> Iterator[Path]:
    for folder in PACKAGE_DIR.glob("*/templates"):
        for path in sorted(folder.rglob("*")):
            if path.suffix in (".html", ".txt") and path.is_file():
                yield path


def _python() -> Iterator[Path]:
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def _scripts() -> Iterator[Path]:
    for path in sorted(PACKAGE_DIR.rglob("*.js")):
        rel = path.relative_to(PACKAGE_DIR).as_posix()
        if not any(part in rel for part in JS_SKIPPED):
            yield path


def _extract(method: str, source: bytes, where: str) -> Iterator[Message]:
    for lineno, text, _comments, context in bextract.extract(
            method, io.BytesIO(source), keywords=KEYWORDS, comment_tags=(),
            options={"encoding": "utf-8"}, strip_comment_tags=True):
        singular = text[0] if isinstance(text, tuple) else text
        if singular:
            yield Message(context, singular, f"{where}:{lineno}")


def source_messages(domain: str) -> list[Message]:
    """The strings marked for translation in the source, as ``makemessages`` finds them:
    templates through Django's own ``templatize`` (what makemessages hands to xgettext),
    Python and scripts through Babel's extractors."""
    from django.utils.translation.template import templatize

    found: list[Message] = []
    if domain == "django":
        for path in _templates():
            where = path.relative_to(PACKAGE_DIR).as_posix()
            code = templatize(path.read_text(encoding="utf-8"), origin=str(path))
            # xgettext ignores the template's indentation, Python's tokenizer does not: the
            # lines lose it (their numbers stay; a message is one line once trimmed)
            code = "\n".join(line.lstrip() for line in code.split("\n"))
            found.extend(_extract("python", code.encode("utf-8"), where))
        for path in _python():
            where = path.relative_to(PACKAGE_DIR).as_posix()
            found.extend(_extract("python", path.read_bytes(), where))
    else:
        for path in _scripts():
            where = path.relative_to(PACKAGE_DIR).as_posix()
            found.extend(_extract("javascript", path.read_bytes(), where))
    return found


def _placeholders(text: str) -> list[str]:
    """The Python-format placeholders of a message (``%(name)s``, ``%s``, ``%d``), sorted; a
    translation must keep exactly the source's, or the page raises or shows the wrong value."""
    return sorted(m.group(0) for m in re.finditer(r"%(?:\([^)]+\))?[-#0 +]*\d*(?:\.\d+)?[sdifr%]",
                                                  text) if m.group(0) != "%%")


def catalogue_problems(catalogue, label: str,
                       expected: Iterable[Message] = ()) -> list[str]:
    """What keeps one catalogue from being complete (see the module's docstring)."""
    found = []
    for message in catalogue:
        if not message.id:
            continue  # the header
        name = message.id[0] if isinstance(message.id, tuple) else message.id
        where = f"{label}: {name!r}" + (f" (context {message.context!r})" if message.context else "")
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy:
            found.append(f"{where} is fuzzy (check the translation, then remove the flag)")
        elif not all(strings):
            found.append(f"{where} is not translated")
        sources = message.id if isinstance(message.id, tuple) else (message.id,)
        if "python-format" in message.flags or any("%(" in s for s in sources):
            want = _placeholders(sources[-1])
            for string in strings:
                if string and _placeholders(string) != want:
                    found.append(f"{where}: the translation's placeholders "
                                 f"{_placeholders(string)} differ from the source's {want}")
    have = {(m.context, m.id[0] if isinstance(m.id, tuple) else m.id) for m in catalogue}
    missing: dict[tuple[str | None, str], str] = {}
    for message in expected:
        key = (message.context, message.msgid)
        if key not in have:
            missing.setdefault(key, message.where)
    for (context, msgid), where in sorted(missing.items(), key=lambda kv: kv[1]):
        found.append(f"{label}: {msgid!r}" + (f" (context {context!r})" if context else "")
                     + f" from {where} is not in the catalogue (run makemessages)")
    return found


def problems(locale_dir: Path = LOCALE_DIR, languages: Iterable[str] = TRANSLATED,
             *, against_source: bool = True) -> list[str]:
    """Every problem of every translated catalogue; an empty list when all are complete."""
    found = []
    for domain in DOMAINS:
        expected = source_messages(domain) if against_source else []
        for language in languages:
            path = catalogue_path(language, domain, locale_dir)
            label = path.relative_to(locale_dir).as_posix()
            if not path.exists():
                found.append(f"{label} is missing (run makemessages -l {language}"
                             + (" -d djangojs" if domain == "djangojs" else "") + ")")
                continue
            found.extend(catalogue_problems(read(path), label, expected))
    return found
