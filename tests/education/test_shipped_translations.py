"""The Spanish and Thai translations Speciosa ships (issue 17): every education page, the
decision aid, the patient's lab explanations, the urgent help and Speciosa's own instruments
are translated completely (a change to the English shows up here, naming the strings to
translate again), each a draft until a reviewer signs it; shown to a Thai or Spanish reader
with the draft note, the same evidence and the numbers from the data."""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from speciosa.clinic import crisis, services
from speciosa.education import content, results
from speciosa.education import services as eservices
from speciosa.knowledge import evidence, translations
from speciosa.knowledge import instruments as kinstruments

UNITS = ([(f"education/{p.id}", content.page_strings(p)) for p in content.all_pages()]
         + [("decision-aid/options", content.option_strings(content.all_options(),
                                                             eservices.PRIORITIES)),
            ("record/lab-results", results.strings()), ("alerts/urgent-help", crisis.strings()),
            ("education/evidence-strength", evidence.strength_vocabulary())])


def text(body: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


@pytest.mark.parametrize("language", translations.LANGUAGES)
@pytest.mark.parametrize(("content_id", "english"), UNITS, ids=[u for u, _ in UNITS])
def test_every_unit_is_translated_completely(content_id, english, language):
    found = translations.translation(content_id, language)
    assert found is not None, f"no {language} translation of {content_id}"
    missing = found.missing(english)
    assert not missing, (f"{found.source}: translate again (the English changed): {missing}")
    assert found.status in translations.STATUSES
    assert found.status == "draft" or (found.reviewed_by and found.reviewed_at)


@pytest.mark.parametrize("language", translations.LANGUAGES)
def test_speciosas_own_instruments_are_translated_and_the_validated_ones_are_not(language):
    for inst in kinstruments.all_instruments():
        shown = kinstruments.localized(inst, language)
        if inst.translation == "own-wording":
            assert shown.language == language and shown.note == "draft", inst.id
            assert all(it.label != en.label for it, en in zip(shown.instrument.items, inst.items,
                                                                strict=True)), inst.id
            assert [it.values for it in shown.instrument.items] != [it.values for it in inst.items]
            assert [it.allowed for it in shown.instrument.items] == [it.allowed for it in inst.items]
        else:
            assert (shown.language, shown.note) == ("en", "not-validated"), inst.id


@pytest.mark.django_db
def test_a_thai_reader_gets_the_page_in_thai_marked_draft_with_the_same_evidence(clinic, login):
    page = content.get_page("kratom-basics")
    user = clinic.patient_a.user
    user.profile.language = "th"
    user.profile.save()
    body = login(user).get(reverse("my_learn_page", args=[page.id])).content.decode()
    shown = text(body)
    assert "กระท่อม: คืออะไร มีผลอย่างไร และอาการถอน" in shown
    assert "คำแปลนี้ยังไม่ได้รับการตรวจทาน" in shown and "?original=1" in body
    for st in page.statements():
        for c in st.citations:
            assert f'href="/evidence/#{c.id}"' in body
        assert f'data-strength="{html.escape(st.strength)}"' in body  # English, for machines
    assert "หลักฐาน: รายงานผู้ป่วยหนึ่งราย" in shown or "หลักฐาน: แนวทางเวชปฏิบัติ" in shown
    assert "Evidence:" not in shown and "All pages" not in shown


@pytest.mark.django_db
def test_the_lab_explanation_in_spanish_takes_its_numbers_from_the_result(clinic, login):
    maya = clinic.patient_a
    maya.user.profile.language = "es"
    maya.user.profile.save()
    services.record_lab(clinic.clinician_a, maya, {
        "collected_at": timezone.now() - dt.timedelta(days=2), "lab": "prolactin",
        "value": Decimal("38"), "unit": "ng/mL", "reference_low": Decimal("4.8"),
        "reference_high": Decimal("23.3")})
    page = text(login(maya.user).get("/me/record/").content.decode())
    assert "4.8 a 23.3 ng/mL (el rango del laboratorio)" in page
    assert "por encima del rango" in page and "Prolactina" in page
    assert "La prolactina es una hormona." in page  # the education page's statement, translated
    assert "Esta traducción todavía no ha sido revisada." in page


@pytest.mark.django_db
def test_the_diary_in_thai_shows_the_checklist_in_thai_and_the_sows_in_english(clinic, login):
    user = clinic.patient_a.user
    user.profile.language = "th"
    user.profile.save()
    page = text(login(user).get(reverse("diary_today")).content.decode())
    assert "ปัสสาวะสีเข้ม หรือตาหรือผิวเหลือง" in page  # the checklist, translated (draft)
    assert "คำแปลนี้ยังไม่ได้รับการตรวจทาน" in page
    assert kinstruments.get_instrument("sows").items[0].label in page  # validated: English
    with translation.override("th"):
        note = translation.gettext("A validated translation of this questionnaire into your "
                                   "language has not been loaded, so its questions are shown in "
                                   "English.")
    assert note in page


@pytest.mark.django_db
def test_the_urgent_help_words_and_crisis_line_follow_the_language():
    assert crisis.describe(["seizure"], "th")[0] == ("อาการชัก", ("post-2019", "afzal-2020"))
    assert crisis.describe(["seizure"], "es")[0][0] == "una convulsión"
    assert crisis.describe(["seizure"])[0][0] == "a seizure"

    class Site:
        country = "TH"
    assert crisis.numbers_for(Site(), "th").crisis_name == "สายด่วนสุขภาพจิต กรมสุขภาพจิต (ตลอด 24/7)"
    assert crisis.numbers_for(Site(), "th").crisis == "1323"  # the number from the data


@pytest.mark.django_db
def test_the_decision_aid_shows_the_options_in_the_patients_language(clinic, login):
    client = login(clinic.clinician_a)
    url = reverse("decision_new", args=[clinic.patient_a.pk])
    thai = text(client.get(url + "?language=th").content.decode())
    assert "นัลเทรกโซนชนิดออกฤทธิ์นาน (ยาฉีดรายเดือน)" in thai and "คำแปลนี้ยังไม่ได้รับการตรวจทาน" in thai
    english = text(client.get(url + "?language=en").content.decode())
    assert "Extended-release naltrexone (monthly shot)" in english


@pytest.mark.django_db
def test_a_decision_is_named_in_the_readers_language(clinic):
    from speciosa.education.models import Decision

    d = Decision(patient=clinic.patient_a, choice="methadone", clinician=clinic.clinician_a)
    with translation.override("th"):
        assert d.choice_label == "เมทาโดน"
    with translation.override("es"):
        assert d.choice_label == "Metadona"
    assert d.choice_label == "Methadone"
    assert Decision(patient=clinic.patient_a, choice="gone", clinician=clinic.clinician_a).choice_label == "gone"
