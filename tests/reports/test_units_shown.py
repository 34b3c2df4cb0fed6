"""Units as a clinician reads them: a TSH entered in mIU/L and a bilirubin in µmol/L showed
their canonical value and range as raw UCUM (``m[IU]/L``) in the chart title, the chart's
table and the PDF's latest-results table, beside the entered ``mIU/L``."""

from __future__ import annotations

import datetime as dt

import pytest
from pypdf import PdfReader

from speciosa.clinic import services
from speciosa.reports import charts, pdf
from speciosa.reports.data import chart_data

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 1, 18, 0, tzinfo=dt.UTC)
AT = dt.datetime(2026, 2, 20, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def labs(clinic):
    p = clinic.patient_a
    services.record_lab(clinic.clinician_a, p, {"lab": "tsh", "collected_at": AT,
                                                "value": "0.85", "unit": "mIU/L"})
    services.record_lab(clinic.clinician_a, p, {"lab": "bilirubin", "collected_at": AT,
                                                "value": "15", "unit": "µmol/L"})
    return p


def test_charts_and_their_table_show_units_as_people_write_them(labs):
    data = chart_data(labs, now=NOW, with_exposure=False)
    others = charts.clinician_specs(data)["labs"]
    tsh = next(p for p in others["vconcat"] if p["title"]["text"].startswith("Thyroid"))
    assert tsh["title"]["text"].startswith("Thyroid") and "(mIU/L)" in tsh["title"]["text"]
    assert "[IU]" not in str(tsh)
    table = next(t for t in charts.payload(data)["tables"] if t["id"] == "labs")
    rows = {row[1]: row for row in table["rows"]}
    tsh_row = next(r for name, r in rows.items() if name.startswith("Thyroid"))
    assert tsh_row[2] == "0.85 mIU/L" and tsh_row[3] == "0.85 mIU/L"
    assert tsh_row[4].endswith("mIU/L")
    bili = rows["Bilirubin, total"]
    assert bili[2] == "15 µmol/L" and bili[3] == "0.88 mg/dL"
    assert "[IU]" not in str(table)


def test_the_pdf_latest_results_show_mIU_per_L_not_ucum_brackets(labs):
    text = "\n".join(page.extract_text() for page in
                     PdfReader(__import__("io").BytesIO(pdf.visit_report(labs, now=NOW))).pages)
    tsh = next(line for line in text.splitlines() if "0.85" in line)
    assert tsh.count("mIU/L") == 3, tsh  # result, canonical, range
    assert "m[IU]/L" not in text
    assert "15 µmol/L 0.88 mg/dL 0-1.2 mg/dL" in text  # the µ drawn (Noto Sans), not "u"
