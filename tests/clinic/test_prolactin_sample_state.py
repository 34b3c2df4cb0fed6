"""Pregnancy at the prolactin sample, not today's status (issue 13).

A prolactin taken in pregnancy stays "taken in pregnancy" after the birth (the rules do not
read it as the baseline or the latest value once the box is unticked); a high prolactin taken
weeks before a pregnancy was recorded, or before a positive hCG, may have been taken in it, and
says so instead of confirming hyperprolactinaemia; a positive hCG without the pregnant box
ticked counts, and a corrected hCG undoes what it did. Each change is audited.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from pypdf import PdfReader

from speciosa.clinic import services
from speciosa.clinic.models import Alert, AuditEntry, LabResult

pytestmark = pytest.mark.django_db

WORKUP = ("confirm hyperprolactin", "macroprolactin", "prolactinoma", "MRI", "refer promptly")


def _lab(clinic, code, days_ago, patient=None, **data):
    patient = patient or clinic.patient_a
    who = clinic.clinician_a if patient == clinic.patient_a else clinic.clinician_b
    return services.record_lab(who, patient, {
        "lab": code, "collected_at": timezone.now() - dt.timedelta(days=days_ago, hours=2),
        **data})


def _prl(clinic, days_ago, value="300", **kw):
    return _lab(clinic, "prolactin", days_ago, value=Decimal(value), unit="ng/mL", **kw)


def _hcg(clinic, days_ago, result="positive", **kw):
    return _lab(clinic, "hcg", days_ago, result=result, **kw)


def _active_prolactin_alerts(patient):
    return list(Alert.objects.filter(patient=patient, topic__startswith="prolactin",
                                     status__in=Alert.ACTIVE, stopped_firing_at__isnull=True))


def _pdf_text(client, patient) -> str:
    """The PDF's prolactin interpretation (from "Latest prolactin" to the next section: the
    alerts section may still quote an open alert, which waits for a clinician)."""
    response = client.get(f"/patients/{patient.pk}/report.pdf?days=all&purpose=treatment")
    assert response.status_code == 200
    reader = PdfReader(io.BytesIO(response.content))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    start = text.index("Latest prolactin")
    return text[start:start + 600]


def test_pregnancy_recorded_after_a_high_prolactin_makes_it_possibly_in_pregnancy(clinic, login):
    row = _prl(clinic, days_ago=20)
    assert (row.flag, row.sample_state) == ("high", "")
    assert _active_prolactin_alerts(clinic.patient_a)

    patient = clinic.patient_a
    patient.pregnant = True
    patient.save()
    assert patient.pregnant_since == timezone.localdate()
    row.refresh_from_db()
    assert (row.flag, row.sample_state, row.sample_state_basis) == ("", "uncertain", "status")
    # 20 days ago, counted in the site's days (21 between 00:00 UTC and the site's midnight)
    from zoneinfo import ZoneInfo

    days = (patient.pregnant_since
            - row.collected_at.astimezone(ZoneInfo(patient.site.time_zone)).date()).days
    assert days in (20, 21)
    assert f"{days} days after this sample: it may have been taken in pregnancy" in row.sample_state_note
    entry = AuditEntry.objects.filter(model="LabResult", object_id=row.pk,
                                      action=AuditEntry.Action.CORRECT).get()
    assert entry.before == {"sample_state": "", "flag": "high"}
    assert entry.after == {"sample_state": "uncertain", "flag": ""}
    # the rules were run again and no longer read it (the open alert waits for a clinician)
    assert _active_prolactin_alerts(patient) == []

    client = login(clinic.clinician_a)
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "not flagged: Pregnancy recorded from" in page
    text = _pdf_text(client, patient)
    assert "it may have been taken in pregnancy" in text
    for word in WORKUP:
        assert word not in text, word


def test_a_sample_taken_in_pregnancy_stays_so_after_the_birth(clinic, login):
    patient = clinic.patient_a
    patient.pregnant, patient.pregnant_since = True, timezone.localdate() - dt.timedelta(days=100)
    patient.save()
    row = _prl(clinic, days_ago=30)
    assert (row.flag, row.sample_state) == ("", "pregnant")
    assert "Taken in pregnancy" in row.sample_state_note

    patient.pregnant = False  # the birth: the box is unticked
    patient.save()
    assert patient.pregnant_since is None
    row.refresh_from_db()
    assert (row.flag, row.sample_state) == ("", "pregnant")  # history, not today's status
    services.record_lab(clinic.clinician_a, patient, {  # any write re-runs the rules
        "lab": "tsh", "collected_at": timezone.now() - dt.timedelta(hours=1),
        "value": Decimal("2"), "unit": "mIU/L"})
    # 300 ng/mL would be a prompt referral outside pregnancy: not read from a pregnancy sample
    assert _active_prolactin_alerts(patient) == []
    text = _pdf_text(login(clinic.clinician_a), patient)
    assert "the non-pregnant reference range does not apply" in text
    for word in WORKUP:
        assert word not in text, word

    # a new sample after the birth is read against the range again
    after = _prl(clinic, days_ago=0)
    assert (after.flag, after.sample_state) == ("high", "")
    assert [a.topic for a in _active_prolactin_alerts(patient)] == ["prolactin-very-high"]


def test_a_positive_hcg_without_the_box_ticked_counts_and_its_correction_undoes_it(clinic):
    hcg = _hcg(clinic, days_ago=10)
    row = _prl(clinic, days_ago=5)
    assert (row.flag, row.sample_state, row.sample_state_basis) == ("", "hcg-positive", "hcg")
    assert _active_prolactin_alerts(clinic.patient_a) == []

    services.correct_record(clinic.clinician_a, hcg, {"result": "negative"},
                            "typed into the wrong field: the test was negative")
    row.refresh_from_db()
    assert (row.flag, row.sample_state) == ("high", "")
    assert [a.topic for a in _active_prolactin_alerts(clinic.patient_a)] == ["prolactin-very-high"]
    reasons = list(AuditEntry.objects.filter(model="LabResult", object_id=row.pk,
                                             action=AuditEntry.Action.CORRECT)
                   .values_list("reason", flat=True))
    assert reasons == ["Pregnancy or breastfeeding at the sample read again: neither applies."]


def test_a_later_positive_hcg_makes_an_earlier_sample_uncertain_unless_a_negative_lies_between(clinic):
    before = _prl(clinic, days_ago=40)
    negative_then = _hcg(clinic, days_ago=35, result="negative")
    assert negative_then.result == "negative"
    between = _prl(clinic, days_ago=30)
    _hcg(clinic, days_ago=2)
    before.refresh_from_db()
    between.refresh_from_db()
    # 40 days ago: a negative hCG five days later says it was not in this pregnancy
    assert (before.flag, before.sample_state) == ("high", "")
    # 30 days ago, after the negative test: possibly in the pregnancy the positive hCG shows
    assert (between.flag, between.sample_state, between.sample_state_basis) == (
        "", "uncertain", "hcg")
    assert "28 days after this sample" in between.sample_state_note


def test_a_sample_older_than_a_pregnancy_is_untouched(clinic):
    row = _prl(clinic, days_ago=300)
    patient = clinic.patient_a
    patient.pregnant = True
    patient.save()
    row.refresh_from_db()
    assert (row.flag, row.sample_state) == ("high", "")
    assert not AuditEntry.objects.filter(model="LabResult", object_id=row.pk,
                                         action=AuditEntry.Action.CORRECT).exists()


def test_pregnancy_known_from_a_stated_day(clinic):
    patient = clinic.patient_a
    patient.pregnant, patient.pregnant_since = True, timezone.localdate() - dt.timedelta(days=60)
    patient.save()
    assert _prl(clinic, days_ago=59).sample_state == "pregnant"
    assert _prl(clinic, days_ago=61).sample_state == "uncertain"
    with pytest.raises(ValidationError, match="the day the pregnancy was known"):
        patient.pregnant_since = timezone.localdate() + dt.timedelta(days=3)
        patient.save()
    patient.refresh_from_db()
    # moving the day earlier makes the uncertain sample one taken in pregnancy (more certain)
    patient.pregnant_since = timezone.localdate() - dt.timedelta(days=90)
    patient.save()
    states = sorted(LabResult.objects.current().filter(patient=patient, lab="prolactin")
                    .values_list("sample_state", flat=True))
    assert states == ["pregnant", "pregnant"]


def test_a_positive_hcg_in_a_male_patient_is_not_pregnancy(clinic):
    """hCG in a man is a tumour marker, not a pregnancy test: his prolactin stays flagged."""
    man = clinic.patient_b
    _hcg(clinic, days_ago=3, patient=man)
    row = _lab(clinic, "prolactin", 1, patient=man, value=Decimal("300"), unit="ng/mL")
    assert (row.flag, row.sample_state) == ("high", "")
    assert [a.topic for a in _active_prolactin_alerts(man)] == ["prolactin-very-high"]


def _evaluate(tmp_path, capsys, state):
    from speciosa import cli

    lab = {"lab": "prolactin", "at": "2026-11-20T09:00:00+00:00", "value": 300, "unit": "ng/mL"}
    if state is not None:
        lab["sample_state"] = state
    path = tmp_path / "timeline.json"
    path.write_text(json.dumps({"patient": {"sex": "female"}, "labs": [lab]}))
    code = cli.main(["evaluate", str(path), "--as-of", "2026-11-21T09:00:00+00:00"])
    return code, capsys.readouterr()


def test_speciosa_evaluate_reads_the_sample_state(tmp_path, capsys):
    code, out = _evaluate(tmp_path, capsys, None)
    assert code == 0 and "prolactin-very-high" in out.out
    code, out = _evaluate(tmp_path, capsys, "pregnant")
    assert code == 0 and "prolactin-very-high" not in out.out
    code, out = _evaluate(tmp_path, capsys, "pregnantish")
    assert code != 0 and "labs[0].sample_state" in out.err
