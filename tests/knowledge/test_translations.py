"""Clinical content as translatable data (issue 17): the translation overlay's rules."""

from __future__ import annotations

import datetime as dt

import pytest

from speciosa.knowledge import translations

GOOD = """
content = "education/kratom-basics"
language = "th"
status = "draft"
[[text]]
en = "What kratom is"
th = "กระท่อมคืออะไร"
"""


def test_a_draft_file_loads_with_its_words_keyed_by_the_english():
    t = translations.load_file("x.toml", GOOD)
    assert (t.content, t.language, t.status, t.reviewed) == ("education/kratom-basics", "th", "draft", False)
    assert t.get("What  kratom is") == "กระท่อมคืออะไร"  # spacing of the English does not matter
    assert t.missing(["What kratom is", "Withdrawal"]) == ["Withdrawal"]


@pytest.mark.parametrize(("change", "message"), [
    (('status = "draft"', 'status = "reviewed"'), "names its reviewer"),
    (('status = "draft"', 'status = "done"'), "status 'done' must be one of draft, reviewed"),
    (('language = "th"', 'language = "fr"'), "language 'fr' must be one of es, th"),
    (('content = "education/kratom-basics"', 'content = "recipes/soup"'), "content 'recipes/soup'"),
    (('th = "กระท่อมคืออะไร"', 'es = "Qué es"'), "give exactly 'en' and 'th'"),
    (('status = "draft"', 'status = "draft"\nreviewed_by = "Dr A"'), "a draft has no reviewer"),
    (('status = "draft"', 'status = "draft"\nnotes = "x"'), "unknown field 'notes'"),
])
def test_a_bad_file_is_refused_saying_what_to_fix(change, message):
    with pytest.raises(translations.TranslationError, match=message):
        translations.load_file("bad.toml", GOOD.replace(*change))


def test_a_reviewed_file_names_who_reviewed_it_and_when():
    text = GOOD.replace('status = "draft"',
                        'status = "reviewed"\nreviewed_by = "Dr Somchai"\nreviewed_at = 2026-11-30')
    t = translations.load_file("r.toml", text)
    assert t.reviewed and t.reviewed_by == "Dr Somchai" and t.reviewed_at == dt.date(2026, 11, 30)


@pytest.mark.parametrize(("en", "tr", "message"), [
    ("Re-measure after 4 to 6 weeks.", "วัดซ้ำหลัง 4 ถึง 8 สัปดาห์", "same numbers"),
    ("{low} to {high} {unit}", "{low} ถึง {unit}", "placeholders"),
])
def test_numbers_and_placeholders_are_never_changed_by_hand(en, tr, message):
    text = f'content = "record/lab-results"\nlanguage = "th"\nstatus = "draft"\n' \
           f'[[text]]\nen = "{en}"\nth = "{tr}"\n'
    with pytest.raises(translations.TranslationError, match=message):
        translations.load_file("n.toml", text)


def test_a_decimal_comma_is_the_same_number():
    text = ('content = "record/lab-results"\nlanguage = "es"\nstatus = "draft"\n'
            '[[text]]\nen = "About 4.8 ng/mL."\nes = "Unos 4,8 ng/mL."\n')
    assert translations.load_file("c.toml", text).get("About 4.8 ng/mL.") == "Unos 4,8 ng/mL."


def test_a_unit_is_english_unless_every_string_is_translated():
    t = translations.load_file("x.toml", GOOD)
    assert translations.Shown("th", "th", t).note == "draft"
    assert translations.Shown("th", "en").note == "missing"
    assert translations.Shown("en", "en").note == ""
    assert translations.language_of("th-TH") == "th" and translations.language_of(None) == "en"


def test_a_site_file_replaces_the_shipped_one(tmp_path, monkeypatch):
    (tmp_path / "k.toml").write_text(GOOD.replace(
        'status = "draft"', 'status = "reviewed"\nreviewed_by = "Dr A"\nreviewed_at = 2026-12-01'),
        encoding="utf-8")
    monkeypatch.setenv(translations.SITE_DIR_ENV, str(tmp_path))
    found = translations.translation("education/kratom-basics", "th")
    assert found.reviewed and found.source == str(tmp_path / "k.toml")


def test_two_site_files_for_one_unit_are_refused(tmp_path, monkeypatch):
    (tmp_path / "a.toml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.toml").write_text(GOOD, encoding="utf-8")
    monkeypatch.setenv(translations.SITE_DIR_ENV, str(tmp_path))
    with pytest.raises(translations.TranslationError, match="already translated in"):
        translations.translation("education/kratom-basics", "th")
