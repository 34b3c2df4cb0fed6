"""The staff pages in the login's language (issue 17, Languages): a clinician whose profile
says Spanish or Thai reads the patient page, the patient list and the worklist in it, while
the API keeps speaking English and a login without a choice keeps the English pages."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from tests.conftest import issue_token, verified_login

pytestmark = pytest.mark.django_db


def _speaking(user, language):
    from speciosa.clinic.models import Profile

    Profile.objects.filter(user=user).update(language=language)
    return verified_login(Client(), user)


def test_the_patient_page_in_spanish(clinic, open_alert):
    open_alert(clinic.patient_a, severity="urgent")
    page = _speaking(clinic.clinician_a, "es").get(
        reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    assert '<html lang="es">' in page
    for text in ("Cronología", "Medicación", "Tratamiento del trastorno por consumo de opioides",
                 "Análisis de drogas en orina", "Plan de reducción", "Consentimientos",
                 "Requiere atención", "Marcar como vista", "Lista de trabajo",
                 ">urgente</span>", "Educación y decisiones", "Recordatorios", "Gráficos",
                 "<strong>Urgente:</strong>", "abrir la lista de trabajo</a>"):
        assert text in page, text
    # the rule's own message stays as the rule wrote it (English)
    assert "Prolactin 41.7 ng/mL is above the reference range." in page
    assert "Timeline" not in page and "Needs attention" not in page


def test_the_worklist_and_the_patient_list_in_thai(clinic, open_alert):
    open_alert(clinic.patient_a)
    client = _speaking(clinic.clinician_a, "th")
    worklist = client.get(reverse("worklist")).content.decode()
    assert "รายการงาน" in worklist and "(เปิดอยู่ 1)" in worklist and ">เตือน</span>" in worklist
    patients = client.get(reverse("patient_list")).content.decode()
    assert "ผู้ป่วยของฉัน" in patients
    # the attention reasons: one alert, no diary for a week
    assert "1 การแจ้งเตือน" in patients and "ไม่มีบันทึกประจำวัน 7 วันขึ้นไป" in patients


def test_one_open_alert_is_singular_in_spanish(clinic, open_alert):
    open_alert(clinic.patient_a)
    page = _speaking(clinic.clinician_a, "es").get(reverse("worklist")).content.decode()
    assert "(1 abierta)" in page
    open_alert(clinic.patient_a, rule="other-rule")
    page = _speaking(clinic.clinician_a, "es").get(reverse("worklist")).content.decode()
    assert "(2 abiertas)" in page


def test_the_api_stays_english_for_a_thai_login(clinic, open_alert):
    from speciosa.clinic.models import Profile

    open_alert(clinic.patient_a)
    Profile.objects.filter(user=clinic.clinician_a).update(language="th")
    client = Client(headers={"authorization": f"Token {issue_token(clinic.clinician_a)}"})
    rows = client.get("/api/v1/patients/").json()
    row = rows["results"][0] if isinstance(rows, dict) else rows[0]
    assert "no diary for 7+ days" in row["abnormal"] and "1 alert" in row["abnormal"]


def test_a_login_without_a_language_keeps_the_english_pages(clinic, open_alert):
    open_alert(clinic.patient_a)
    page = verified_login(Client(), clinic.clinician_a).get(
        reverse("patient_detail", args=[clinic.patient_a.pk])).content.decode()
    assert '<html lang="en">' in page and "Timeline" in page and "Needs attention" in page


@pytest.mark.parametrize(("name", "language", "texts"), [
    ("medication_new", "es", ("Medicamento (nombre genérico o comercial)", ">lo toma</option>",
                              "Guardar el medicamento", "— unidad —")),
    ("episode_new", "th", ("เริ่มช่วงการรักษา", ">บูพรีนอร์ฟีน</option>", "ยาฉีดออกฤทธิ์นาน",
                           "บันทึกช่วงการรักษา")),
    ("taper_plan_new", "es", ("Introducir un plan de reducción", "Speciosa no propone dosis",
                              "Paso 1", "Añadir un paso")),
    ("lab_new", "es", ("Resultado de laboratorio", "Informado como", ">el valor</option>",
                       "Guardar el resultado")),
    ("urine_panel_new", "th", ("บันทึกชุดตรวจสารเสพติดในปัสสาวะ", "ความถูกต้องของสิ่งส่งตรวจ",
                               ">บวก</option>", "บันทึกชุดตรวจ")),
])
def test_the_clinical_forms_in_the_logins_language(clinic, name, language, texts):
    page = _speaking(clinic.clinician_a, language).get(
        reverse(name, args=[clinic.patient_a.pk])).content.decode()
    for text in texts:
        assert text in page, text


def test_a_service_message_is_in_the_page_language_and_english_in_the_api(clinic, open_alert):
    from speciosa.clinic.models import Alert

    alert = open_alert(clinic.patient_a)
    client = _speaking(clinic.clinician_a, "es")
    page = client.post(reverse("alert_resolve", args=[alert.pk]), {"note": "  "}).content.decode()
    assert "Indique cómo se abordó esta alerta." in page
    assert Alert.objects.get(pk=alert.pk).status == "open"  # nothing stored
    # the API is English for the same Spanish login, whatever its browser says
    api = Client(headers={"authorization": f"Token {issue_token(clinic.clinician_a)}",
                          "accept-language": "es"})
    response = api.get("/api/v1/patients/")
    assert response.headers["Content-Language"] == "en"


def test_the_fhir_formulation_text_stays_english_under_a_thai_request():
    from django.utils import translation

    from speciosa.interop import treatment

    with translation.override("th"):
        dosage = treatment.episode_dosage({"drug": "buprenorphine", "formulation": "sublingual",
                                           "dose_mg": 8})
    assert dosage["text"] == "8 mg a day (sublingual tablet)"


@pytest.mark.parametrize(("who", "url", "language", "texts"), [
    ("clinician_a", "patient_new", "es", ("Registrar un paciente", "Dónde recibe atención",
                                          "Registrar y crear el enlace de configuración")),
    ("clinician_a", "safety_settings", "th", ("การตั้งค่ากฎความปลอดภัย", "ค่าเริ่มต้น")),
    ("clinician_a", "evidence", "es", ("Registro de evidencia", "Afirmaciones")),
    ("clinician_a", "patient_plan", "th", ("เริ่มจากแม่แบบ", "บันทึกแผน")),
    ("researcher", "research:exports", "es", ("Exportaciones de investigación",
                                              "Hacer la exportación")),
    ("researcher", "research:cohort", "th", ("กลุ่มผู้ป่วยเพื่อการวิจัย",)),
])
def test_the_other_staff_pages_in_the_logins_language(clinic, who, url, language, texts):
    args = [clinic.patient_a.pk] if url == "patient_plan" else []
    response = _speaking(getattr(clinic, who), language).get(reverse(url, args=args))
    assert response.status_code == 200
    page = response.content.decode()
    for text in texts:
        assert text in page, text
