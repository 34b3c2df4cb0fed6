"""Urine drug test panels read against what is expected (issue 19).

References
----------
.. [1] Jarvis M et al. (ASAM) J Addict Med 2017: results are presumptive, no irreversible
   decision on a test alone (care.md §6).
.. [2] Accurso AJ et al. 2017: buprenorphine without norbuprenorphine suggests tampering.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from speciosa.knowledge import drug_panels
from speciosa.safety.rules._common import iso
from speciosa.safety.rules._context import Context
from speciosa.safety.rules._registry import Found, doses, labs, medications, rule

#: Every analyte a panel can hold.
PANEL_ANALYTES = tuple(dict.fromkeys(a for p in drug_panels.PANELS for a in p.analytes))

#: Panels collected in this many days before are read (with the kratom window, the doses it
#: reads stay within the 28 days the other rules load).
PANEL_DAYS = 21

#: Reported kratom doses in this many days before collection make mitragynine expected
#: (Speciosa's choice; no detection window in the references: UNCONFIRMED).
KRATOM_WINDOW_DAYS = 7


def _taken_on(medication, day) -> bool:
    """Whether ``medication`` was taken on ``day``: current then, or stopped since (a
    stopped course with its stop date was taken up to that date)."""
    if medication.start > day or (medication.end is not None and medication.end < day):
        return False
    return medication.is_current(day) or (medication.status == "stopped"
                                          and medication.end is not None)


@rule(
    "SAF-UDS-UNEXPECTED",
    topic="uds-unexpected",
    severity="warning",
    windows=(labs(PANEL_ANALYTES, PANEL_DAYS), medications(),
             doses(PANEL_DAYS, KRATOM_WINDOW_DAYS,
                   why="kratom reported in the 7 days before a panel makes mitragynine expected")),
    citations=("urine-result-not-proof", "buprenorphine-without-norbuprenorphine",
               "methadone-without-eddp", "jarvis-2017-asam-drug-testing"),
)
def uds_unexpected(ctx: Context) -> Found | None:
    """The last urine drug test panel of the last 21 days has an
    unexpected or a missing expected result.

    Reads the last panel (analytes recorded together) against what is expected: a current
    medication or treatment episode (buprenorphine with
    norbuprenorphine, methadone with EDDP, fentanyl, a benzodiazepine, morphine or codeine
    on the opiates screen) and kratom doses reported in the 7 days before (mitragynine).
    A warning when buprenorphine is found without norbuprenorphine or methadone without
    EDDP (the drug may have been added to the specimen); info for any other unexpected
    positive or missing expected result. Never proof: every finding says "discuss with the
    patient; confirm before acting". A panel whose specimen was out of range is not read.
    Evidence: urine-result-not-proof, buprenorphine-without-norbuprenorphine,
    methadone-without-eddp, jarvis-2017-asam-drug-testing.
    """
    rows = [r for code in PANEL_ANALYTES
            for r in ctx.labs(code, PANEL_DAYS)
            if r.panel is not None]
    if not rows:
        return None
    last = max(rows, key=lambda r: (r.at, r.panel))
    analytes = [r for r in rows if r.panel == last.panel]
    if last.specimen_invalid:
        return None
    # what was expected when the specimen was collected (as the panel's page reads it), not
    # today: a buprenorphine stopped since made the positive of its own time 'unexpected'
    day = last.at.astimezone(ctx.tz).date()
    expected = drug_panels.expected_from_medications(
        m.lookup for m in ctx.timeline.medications if _taken_on(m, day))
    if ctx.doses_between(last.at - timedelta(days=KRATOM_WINDOW_DAYS), last.at):
        expected.setdefault("uds-mitragynine", "kratom reported")
    results = {r.lab: (r.result or "") for r in analytes}
    reading = drug_panels.read_panel(results, expected)
    if not reading.flagged:
        return None
    tampering = any("added to the specimen" in c for c in reading.caveats)
    ev: dict[str, Any] = {
        "collected_at": iso(last.at),
        "results": results,
        "flags": {a.lab: a.flag for a in reading.analytes if a.flag in (
            "unexpected", "missing-expected")},
        "expected": expected,
    }
    parts = []
    unexpected = [lab for lab, f in ev["flags"].items() if f == "unexpected"]
    missing = [lab for lab, f in ev["flags"].items() if f == "missing-expected"]
    if unexpected:
        parts.append("unexpected positive: " + ", ".join(unexpected))
    if missing:
        parts.append("expected but not found: " + ", ".join(missing))
    message = (f"Urine drug test panel of {day}: " + "; ".join(parts) + ". "
               + (reading.caveats[0] + " " if tampering else "")
               + "Results are presumptive; " + drug_panels.DISCUSS + ".")
    step = "Discuss the result with the patient; confirm with a definitive test before acting."
    return Found("warning" if tampering else "info", message, ev, step)
