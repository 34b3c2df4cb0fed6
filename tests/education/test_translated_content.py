"""Clinical content in the reader's language (issue 17): a draft translation says so, a
reviewed one does not, a missing or incomplete one falls back to English and says so; the
evidence behind each statement is the same in every language; a validated questionnaire is
shown with its English short labels and a note until a site loads a validated translation
through the instrument overlay, and then shows it."""

from __future__ import annotations

import contextlib
import html
import json
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from tests.conftest import verified_login

from speciosa.education import content
from speciosa.knowledge import instruments as kinstruments
from speciosa.knowledge import translations

pytestmark = pytest.mark.django_db

DRAFT_NOTE = "This translation has not yet been reviewed."
MISSING_NOTE = "This is not yet translated into your language, so it is shown in English."
NOT_VALIDATED = ("A validated translation of this questionnaire into your language has not been "
                 "loaded, so its questions are shown in English.")


def text(body: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


@contextlib.contextmanager
def reading_in(user, language):
    """Requests of ``user`` in ``language`` (the profile's language where it exists)."""
    profile = getattr(user, "profile", None)
    if profile is not None and hasattr(profile, "language"):
        profile.language = language
        profile.save()
    with translation.override(language):
        yield


def in_language(language, msg):
    with translation.override(language):
        return str(translation.gettext(msg))


def _write(folder, page, language="th", status="draft", skip=0):
    """A translation of ``page`` made by marking each English string (numbers kept)."""
    lines = [f'content = "education/{page.id}"', f'language = "{language}"', f'status = "{status}"']
    if status == "reviewed":
        lines += ['reviewed_by = "Dr Test Reviewer"', "reviewed_at = 2026-11-30"]
    for en in content.page_strings(page)[skip:]:
        lines += ["[[text]]", f"en = {json.dumps(en)}", f"{language} = {json.dumps(f'[{language}] {en}')}"]
    (folder / f"{page.id}.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def site_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(translations.SITE_DIR_ENV, str(tmp_path))
    return tmp_path


def test_a_page_in_a_draft_translation_says_so_and_links_to_the_english(clinic, site_dir):
    page = content.get_page("naloxone")
    _write(site_dir, page, status="draft")
    client = verified_login(Client(), clinic.patient_a.user)
    with reading_in(clinic.patient_a.user, "th"):
        body = client.get(reverse("my_learn_page", args=["naloxone"])).content.decode()
    shown = text(body)
    assert f"[th] {page.title}" in shown
    assert in_language("th", DRAFT_NOTE) in shown
    assert 'href="/me/learn/naloxone/?original=1"' in body
    assert '<article class="learn-page" aria-labelledby="page-title" lang="th">' in body
    # every statement keeps its evidence: the same strengths and sources as in English
    for st in page.statements():
        assert f"[th] {st.text}" in shown
        assert f'data-strength="{html.escape(st.strength)}"' in body
        for c in st.citations:
            assert f'href="/evidence/#{c.id}"' in body
    with reading_in(clinic.patient_a.user, "th"):
        original = client.get(reverse("my_learn_page", args=["naloxone"]) + "?original=1")
    assert page.title in text(original.content.decode()) and "[th]" not in original.content.decode()
    assert 'href="/me/learn/naloxone/"' in original.content.decode()  # back to the translation


def test_a_page_in_a_reviewed_translation_has_no_note(clinic, site_dir):
    page = content.get_page("naloxone")
    _write(site_dir, page, status="reviewed")
    client = verified_login(Client(), clinic.patient_a.user)
    with reading_in(clinic.patient_a.user, "th"):
        body = text(client.get(reverse("my_learn_page", args=["naloxone"])).content.decode())
    assert f"[th] {page.title}" in body
    assert in_language("th", DRAFT_NOTE) not in body and in_language("th", MISSING_NOTE) not in body


def test_a_translation_missing_a_string_falls_back_to_english_and_says_so(clinic, site_dir):
    page = content.get_page("naloxone")
    _write(site_dir, page, status="reviewed", skip=1)  # the English title changed since
    client = verified_login(Client(), clinic.patient_a.user)
    with reading_in(clinic.patient_a.user, "th"):
        body = client.get(reverse("my_learn_page", args=["naloxone"])).content.decode()
    assert "[th]" not in body  # nothing shown half in one language
    assert html.escape(page.title) in body
    assert in_language("th", MISSING_NOTE) in text(body)
    assert 'lang="en"' in body


def test_english_readers_see_no_note(clinic, site_dir):
    _write(site_dir, content.get_page("naloxone"))
    client = verified_login(Client(), clinic.patient_a.user)
    with reading_in(clinic.patient_a.user, "en"):
        body = text(client.get(reverse("my_learn_page", args=["naloxone"])).content.decode())
    assert "[th]" not in body and DRAFT_NOTE not in body and MISSING_NOTE not in body


# --------------------------------------------------------------------------- questionnaires

SOWS_TH = """
overlay = "sows"
language = "th"
status = "validated"
validated_source = "Thai SOWS, validated translation (test fixture, not a real one)"
licence = "Thai wording used under the site's licence (test)."
[[items]]
id = "anxious"
label = "[validated th] anxious"
"""


def _diary(client):
    return client.get(reverse("diary_today")).content.decode()


def test_a_validated_questionnaire_in_thai_shows_english_labels_with_a_note(clinic):
    client = verified_login(Client(), clinic.patient_a.user)
    with reading_in(clinic.patient_a.user, "th"):
        body = text(_diary(client))
    sows = kinstruments.get_instrument("sows")
    assert all(it.label in body for it in sows.items)
    assert in_language("th", NOT_VALIDATED) in body


def test_loading_a_validated_translation_through_the_overlay_shows_it(clinic, tmp_path, monkeypatch):
    (tmp_path / "sows-th.toml").write_text(SOWS_TH, encoding="utf-8")
    monkeypatch.setenv(kinstruments.SITE_DIR_ENV, str(tmp_path))
    shown = kinstruments.localized("sows", "th")
    assert (shown.language, shown.status, shown.note) == ("th", "validated", "")
    assert shown.instrument.item("anxious").label == "[validated th] anxious"
    # the scoring is untouched: same items, values and bands
    assert shown.instrument.items[0].values == kinstruments.get_instrument("sows").items[0].values
    client = verified_login(Client(), clinic.patient_a.user)
    with reading_in(clinic.patient_a.user, "th"):
        body = text(_diary(client))
    assert "[validated th] anxious" in body and in_language("th", NOT_VALIDATED) not in body
    with reading_in(clinic.patient_a.user, "es"):  # only Thai was loaded
        assert in_language("es", NOT_VALIDATED) in text(_diary(client))


@pytest.mark.parametrize(("change", "message"), [
    (('status = "validated"', 'status = "draft"'), "only a validated translation can be loaded"),
    (('validated_source = "Thai SOWS, validated translation (test fixture, not a real one)"\n', ""),
     "validated_source: missing required field"),
    (('language = "th"', 'language = "fr"'), "must be one of es, th"),
])
def test_a_validated_instrument_takes_only_a_named_validated_translation(change, message):
    with pytest.raises(kinstruments.DefinitionError, match=message):
        kinstruments.load_definitions([("site/sows-th.toml", SOWS_TH.replace(*change))],
                                      base={"sows": kinstruments.get_instrument("sows")})


def test_speciosa_never_ships_a_translation_of_a_validated_instrument():
    with pytest.raises(kinstruments.DefinitionError, match="not shipped with Speciosa"):
        kinstruments.load_definitions(
            [("speciosa/knowledge/data/instruments/translations/th/sows.toml", SOWS_TH)],
            base={"sows": kinstruments.get_instrument("sows")})
    shipped = [(i.id, lang) for i in kinstruments.all_instruments() for lang in i.translations]
    assert all(kinstruments.get_instrument(i).translation == "own-wording" for i, _ in shipped)


def test_the_questionnaire_page_of_a_validated_instrument_in_spanish_says_so(clinic):
    from speciosa.schedules import services

    today = timezone.localdate().isoformat()
    services.save_plan(clinic.clinician_a, clinic.patient_a,
                       [{"instrument": "phq9", "every_days": 14, "start": today}])
    client = verified_login(Client(), clinic.patient_a.user)
    with reading_in(clinic.patient_a.user, "es"):
        body = text(client.get(reverse("questionnaire", args=["phq9"])).content.decode())
    assert "Little interest or pleasure in doing things" in body and "not at all" in body
    assert in_language("es", NOT_VALIDATED) in body
