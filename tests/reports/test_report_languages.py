"""The visit report and the consent PDF in Thai and Spanish (issue 17): the labels follow
the language asked for, Thai and accented Latin text is drawn from the embedded Noto fonts
(text extraction finds it), and a Thai line is never broken between a consonant and its
vowel or tone mark. ``SPECIOSA_PDF_DIR=<dir>`` keeps the PDFs made, to look at."""

from __future__ import annotations

import io
import os
import unicodedata
from pathlib import Path

import pytest
from pypdf import PdfReader

from speciosa.reports import pdf

from .conftest import NOW

pytestmark = pytest.mark.django_db

THAI = "กรุณาทานยาตามที่แพทย์สั่ง ผู้ป่วยที่มีอาการชักต้องได้รับการดูแลทันที"


def _keep(name: str, body: bytes) -> None:
    folder = os.environ.get("SPECIOSA_PDF_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_bytes(body)


def _read(body: bytes) -> tuple[str, set[str]]:
    reader = PdfReader(io.BytesIO(body))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    fonts = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descendant = font["/DescendantFonts"][0].get_object()
            embedded = "/FontFile2" in descendant["/FontDescriptor"].get_object()
            fonts.add(f"{font['/BaseFont']}{'' if embedded else ' (not embedded)'}")
    return text, fonts


def test_the_visit_report_renders_in_thai(charted):
    patient = charted.patient
    patient.given_name, patient.family_name = "มาลี", "ใจดี"
    patient.save()
    body = pdf.visit_report(patient, now=NOW, language="th")
    _keep("visit-report-th.pdf", body)
    text, fonts = _read(body)
    assert "มาลี ใจดี" in text  # the record's Thai, shaped and extractable
    assert "การแจ้งเตือนปัจจุบัน" in text  # "Current alerts"
    assert "ผลการตรวจทางห้องปฏิบัติการล่าสุด" in text  # "Latest laboratory results"
    assert "มี.ค." in text  # the month in Thai (01 มี.ค. 2026)
    assert "41.7" in text  # values as recorded
    # Latin text drawn after Thai text in the same font and size comes out as written (fpdf2
    # drew it through another font's subset, garbled, before each text selected its font)
    assert "Prolactin 41.7 ng/mL is above the reference range." in text
    assert any("NotoSansThai" in f for f in fonts) and all("not embedded" not in f for f in fonts)
    assert "Current alerts" not in text


def test_the_visit_report_renders_in_spanish(charted):
    body = pdf.visit_report(charted.patient, now=NOW, language="es")
    _keep("visit-report-es.pdf", body)
    text, fonts = _read(body)
    assert "Alertas actuales" in text and "Últimos resultados de laboratorio" in text
    assert "mar 2026" in text.lower()
    assert any("NotoSans" in f for f in fonts) and all("not embedded" not in f for f in fonts)


def test_by_default_the_report_is_in_english(charted):
    text, _fonts = _read(pdf.visit_report(charted.patient, now=NOW))
    assert "Current alerts" in text and "Latest laboratory results" in text


def test_a_thai_line_is_never_broken_before_a_vowel_or_tone_mark():
    report = pdf._Report()
    report.add_page()
    report.set_font(pdf.FONT, "", 9)
    for width in (8, 12, 19, 27, 40):
        lines = report._wrap(THAI, width)
        assert "".join(lines).replace(" ", "") == THAI.replace(" ", "")
        for line in lines[1:]:
            first = line[0]
            assert not unicodedata.combining(first) and unicodedata.category(first) != "Mn", (width, line)


def test_the_consent_pdf_prints_a_thai_consent_as_written(clinic):
    from speciosa.clinic import consents, integrity
    from speciosa.clinic.models import ConsentSignature

    patient = clinic.patient_a
    patient.given_name, patient.family_name = "มาลี", "ใจดี"
    patient.save()
    doc = consents.latest_document(patient.site, "research")
    type(doc).objects.filter(pk=doc.pk).update(title="ความยินยอมเพื่อการวิจัย", body=THAI)
    doc.refresh_from_db()
    from django.utils import translation

    with translation.override("th"):
        sig = consents.sign(patient.user, patient, doc,
                            {"typed_name": "มาลี ใจดี",
                             "signed_on": integrity.site_today(patient.site).isoformat()})
    body = bytes(ConsentSignature.objects.get(pk=sig.pk).pdf)
    _keep("consent-th.pdf", body)
    text, fonts = _read(body)
    assert "ความยินยอมเพื่อการวิจัย" in text and "มาลี ใจดี" in text
    assert "ลงนามแล้ว" in text  # "Signed"
    assert f"{sig.signed_at:%Y} " in text and " UTC" in text  # Latin after Thai cells, not garbled
    with translation.override("th"):  # the choices are translated too (how it was signed)
        assert sig.get_source_display() in text
    assert any("NotoSansThai" in f for f in fonts)


def test_the_report_follows_the_clinicians_language_unless_they_choose_the_patients(
        charted, clinic, login):
    clinician = clinic.clinician_a
    clinician.profile.language = "es"
    clinician.profile.save()
    patient_user = charted.patient.user
    patient_user.profile.language = "th"
    patient_user.profile.save()
    client = login(clinician)
    url = f"/patients/{charted.patient.pk}/report.pdf"
    form = client.get(url).content.decode()
    assert '<option value="es" selected>' in form and "ไทย (the patient's language)" in form
    mine = client.get(url + "?purpose=treatment")
    assert mine.status_code == 200 and "Alertas actuales" in _read(mine.content)[0]
    theirs = client.get(url + "?purpose=treatment&language=th")
    assert "การแจ้งเตือนปัจจุบัน" in _read(theirs.content)[0]
    odd = client.get(url + "?purpose=treatment&language=xx")  # not a language: the clinician's
    assert "Alertas actuales" in _read(odd.content)[0]
