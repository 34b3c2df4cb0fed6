"""The clinic services' messages in the reader's language (issue 17, left over): a clinician
or a patient whose profile says Spanish or Thai gets a refused form's message from the service
(treatment, medications, taper, urine, labs, reminders, questionnaires) in that language, its
values filled in (numbers with the language's decimal separator), beside the field, and
nothing is stored. The API stays English (tests/web/test_staff_languages.py)."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from tests.conftest import form_token, verified_login
from tests.web.conftest import lab_post

from speciosa.clinic.models import (
    LabResult,
    Medication,
    Profile,
    TaperPlan,
    TreatmentEpisode,
    UrinePanel,
)
from speciosa.reminders.models import Preference
from speciosa.schedules import services as sservices
from speciosa.schedules.models import Draft

pytestmark = pytest.mark.django_db


def _text(response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def _as(user, language: str) -> Client:
    Profile.objects.filter(user=user).update(language=language)
    return verified_login(Client(), user)


def _day(n: int) -> str:
    return (timezone.localdate() + dt.timedelta(days=n)).isoformat()


def _episode(clinic):
    return reverse("episode_new", args=[clinic.patient_a.pk]), {
        "token": form_token("e1"), "drug": "methadone", "formulation": "oral-liquid",
        "dose_mg": "5000", "dispensing_clinic": "Harbour Street OTP", "start_date": _day(-14)}


def _medication(clinic):
    return reverse("medication_new", args=[clinic.patient_a.pk]), {
        "token": form_token("m1"), "drug_name": "Subutex", "dose_amount": "2",
        "dose_unit": "tablet", "start_date": _day(-10), "end_date": _day(-12),
        "status": "stopped", "stop_reason": "nausea", "prescriber": "clinic"}


def _taper(clinic):
    data = {"token": form_token("p1"), "kind": "kratom", "reason": "agreed: two weeks",
            "steps-TOTAL_FORMS": "2", "steps-INITIAL_FORMS": "0"}
    for week, (amount, per_day) in enumerate((("3", "2"), ("2", "40"))):
        data.update({f"steps-{week}-start": _day(7 * week), f"steps-{week}-end": _day(7 * week + 6),
                     f"steps-{week}-amount": amount, f"steps-{week}-unit": "g",
                     f"steps-{week}-doses_per_day": per_day})
    return reverse("taper_plan_new", args=[clinic.patient_a.pk]), data


def _urine(clinic):
    at = timezone.localtime() - dt.timedelta(hours=2)
    return reverse("urine_panel_new", args=[clinic.patient_a.pk]), {
        "token": form_token("u1"), "collected_date": at.date().isoformat(),
        "collected_time": at.strftime("%H:%M"), "panels": ["buprenorphine"], "method": "screen",
        "creatinine_mg_dl": "90", "ph": "20", "specific_gravity": "1.02",
        "temperature_in_range": "yes", "observed": "no",
        "r_uds-buprenorphine": "positive", "r_uds-norbuprenorphine": "negative"}


def _lab(clinic):
    return reverse("lab_new", args=[clinic.patient_a.pk]), lab_post(iu_factor="5")


def _reminders(clinic):
    return "/me/reminders/", {"token": form_token("r1"), "time_of_day": "12:00",
                              "time_zone": "America/Chicago", "quiet_start": "18:00",
                              "quiet_end": "09:00", "email": "on"}


def _questionnaire(clinic):
    sservices.save_plan(clinic.clinician_a, clinic.patient_a, [
        {"instrument": "phq9", "every_days": 14, "start": timezone.localdate().isoformat()}])
    return reverse("questionnaire", args=["phq9"]), {"item": "mood", "answer": "7"}


# (the form, who posts it, what must not be stored, the message in Spanish and in Thai); the
# page answers 200 with the form again (the questionnaire's one question: 400)
CASES = {
    "treatment": (_episode, "clinician_a", lambda: TreatmentEpisode.objects.exists(), {
        "es": "5000 mg al día supera 1000 mg, el límite que admite este formulario (un control "
              "contra errores de escritura); revise la dosis.",
        "th": "5000 mg ต่อวันเกิน 1000 mg ซึ่งเป็นค่าสูงสุดที่แบบฟอร์มนี้รับ (เพื่อป้องกันการพิมพ์ผิด) "
              "โปรดตรวจสอบขนาดยา"}),
    "medications": (_medication, "clinician_a", lambda: Medication.objects.exists(), {
        "es": f"La suspensión ({_day(-12)}) es anterior al inicio ({_day(-10)}); revise ambas "
              "fechas.",
        "th": f"วันที่หยุด ({_day(-12)}) อยู่ก่อนวันที่เริ่ม ({_day(-10)}) โปรดตรวจสอบทั้งสองวันที่"}),
    "taper": (_taper, "clinician_a", lambda: TaperPlan.objects.exists(), {
        "es": "Paso 2: las tomas al día son un número entero de 1 a 12.",
        "th": "ขั้นที่ 2: จำนวนครั้งต่อวันเป็นจำนวนเต็มตั้งแต่ 1 ถึง 12"}),
    "urine": (_urine, "clinician_a", lambda: UrinePanel.objects.exists(), {
        "es": "Escriba el pH entre 0 y 14.",
        "th": "ใส่ค่า pH ระหว่าง 0 ถึง 14"}),
    "labs": (_lab, "clinician_a", lambda: LabResult.objects.exists(), {
        "es": "Escriba el factor de mUI/L por ng/mL que indica el laboratorio, entre 10 y 60 (el "
              "catálogo usa 21,2, el factor del 3.er Estándar Internacional de la OMS 84/500).",
        "th": "ใส่ค่าแปลง mIU/L ต่อ ng/mL ตามที่ห้องปฏิบัติการระบุ ระหว่าง 10 ถึง 60 (แคตตาล็อกใช้ 21.2 "
              "ซึ่งเป็นค่าแปลงของสารมาตรฐานสากลที่ 3 ขององค์การอนามัยโลก 84/500)"}),
    "reminders": (_reminders, "patient_a", lambda: Preference.objects.exists(), {
        "es": "Las horas de silencio pueden durar como máximo 12 horas (estas duran 15).",
        "th": "ช่วงเวลาเงียบยาวได้ไม่เกิน 12 ชั่วโมง (ช่วงนี้ยาว 15 ชั่วโมง)"}),
    "questionnaires": (_questionnaire, "patient_a", lambda: Draft.objects.exists(), {
        "es": "Elija una de las respuestas ofrecidas (0, 1, 2, 3); 7 no es una de ellas.",
        "th": "เลือกหนึ่งในคำตอบที่มีให้ (0, 1, 2, 3) 7 ไม่ใช่คำตอบที่มีให้"}),
}


@pytest.mark.parametrize("language", ["es", "th"])
@pytest.mark.parametrize("service", list(CASES))
def test_a_refused_form_gets_the_services_message_in_the_readers_language(
        clinic, service, language):
    form, who, stored, expected = CASES[service]
    url, data = form(clinic)
    user = getattr(clinic, who)
    client = _as(user.user if who.startswith("patient") else user, language)
    response = client.post(url, data)
    assert response.status_code == (400 if service == "questionnaires" else 200), service
    page = _text(response)
    assert f'<html lang="{language}">' in response.content.decode()
    assert expected[language] in page, page[:4000]
    assert "%(" not in page  # every placeholder filled
    assert not stored()


def test_the_same_message_stays_english_for_a_login_without_a_language(clinic):
    url, data = _episode(clinic)
    response = verified_login(Client(), clinic.clinician_a).post(url, data)
    assert "5000 mg a day is beyond 1000 mg, the limit this form takes" in _text(response)
