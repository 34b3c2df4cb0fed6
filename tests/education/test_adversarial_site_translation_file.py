"""A site's translation file that does not load is left out, never a page error (issue 17,
adversarial pass). A site file whose translation changed a number (here "alert(1)" in a
heading, which also tries a script) raised TranslationError from every translated page in
every language other than English: the education pages, the record, and the home page with
its crisis numbers answered 500 until the file was removed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from speciosa.clinic.models import Profile
from speciosa.knowledge import translations

pytestmark = pytest.mark.django_db

BAD = '''content = "education/naloxone"
language = "th"
status = "draft"

[[text]]
en = "What naloxone is"
th = "<script>alert(1)</script>นาล็อกโซน"
'''


@pytest.fixture
def bad_site_file(tmp_path, monkeypatch):
    (tmp_path / "th-naloxone.toml").write_text(BAD, "utf-8")
    monkeypatch.setenv(translations.SITE_DIR_ENV, str(tmp_path))
    translations._registry.cache_clear()
    yield
    translations._registry.cache_clear()


def test_a_bad_site_file_leaves_the_thai_pages_and_the_crisis_numbers_up(clinic, login,
                                                                        bad_site_file, caplog):
    Profile.objects.filter(user=clinic.patient_a.user).update(language="th")
    client = login(clinic.patient_a.user)
    for url in (reverse("me"), "/learn/naloxone/"):
        r = client.get(url)
        assert r.status_code == 200, url
        html = r.content.decode()
        assert "<script>alert" not in html
    assert "นาล็อกโซนคืออะไร" in html  # the shipped Thai translation, not the site's
    assert "site translation file left out" in caplog.text
