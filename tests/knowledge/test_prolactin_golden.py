"""`prolactin.interpret` gives the same interpretation as before it became a table of
considerations.

A grid of inputs (values on both sides of every threshold in every unit, both sexes,
pregnancy and breastfeeding, medication lists, recent TSH and kidney results, symptoms, the
laboratory's own range and IU factor) is interpreted; the SHA-256 of each interpretation
(every field, considerations in order) is compared with ``data/prolactin-golden.json``,
written by the code before the split (commit b88d6ea) and re-blessed for issue 13 (no
critical flag; pregnancy and breastfeeding stop the interpretation; kratom's re-measurement
interval; the prompt referral above 250 ng/mL).

A change that is meant changes digests: check the new output, then bless it with::

    .venv/bin/python tests/knowledge/test_prolactin_golden.py --bless
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import sys
from pathlib import Path

from speciosa.knowledge.prolactin import interpret

GOLDEN = Path(__file__).resolve().parent / "data" / "prolactin-golden.json"

VALUES_NG = (0.0, 3.9, 10.0, 15.2, 15.3, 23.4, 30.3, 30.4, 60.0, 100.0, 100.1, 250.0, 250.1, 400.0,
             6000.0)
UNITS = ("ng/mL", "ug/L", "mIU/L")
# Names the prolactin table knew before the drug table, and names it did not know.
MEDICATIONS = ((), ("kratom",), ("risperidone 2 mg",), ("Methadone", "kratom"), ("paracetamol",),
               ("aripiprazole", "sertraline"), ("h2 blocker",), ("mitragyna speciosa",),
               ("oestrogen", "cannabis", "amphetamine"))
RECENT = (None, {"tsh": (2.0, "m[IU]/L"), "creatinine": (0.9, "mg/dL")},
          {"tsh": (9.5, "m[IU]/L"), "egfr": (40.0, "mL/min/{1.73_m2}")},
          {"creatinine": (221.0, "umol/L")})
SYMPTOMS = ((), ("headache",), ("galactorrhoea",), ("visual disturbance", "headache"))
STATES = ((False, False), (True, False), (False, True))
LAB = ((None, None), ((2.0, 12.0), None), (None, 25.0))


def grid():
    """(label, kwargs) for every combination kept (the full product has 116,640)."""
    for i, (value, unit, sex) in enumerate(itertools.product(VALUES_NG, UNITS, ("female", "male"))):
        amount = value * 21.2 if unit == "mIU/L" else value
        for j, (meds, recent, symptoms, state, lab) in enumerate(
                itertools.product(MEDICATIONS, RECENT, SYMPTOMS, STATES, LAB)):
            if (i + j) % 31:  # one combination in 31, spread over the product
                continue
            reference, iu_factor = lab
            kwargs = {"sex": sex, "pregnant": state[0], "breastfeeding": state[1],
                      "medications": meds, "recent_labs": recent, "symptoms": symptoms,
                      "reference": reference, "iu_factor": iu_factor if unit == "mIU/L" else None}
            yield f"{i}-{j}", (round(amount, 3), unit), kwargs


def outputs() -> dict[str, str]:
    out = {}
    for label, (value, unit), kwargs in grid():
        result = interpret(value, unit, **kwargs)
        text = json.dumps(dataclasses.asdict(result), sort_keys=True, ensure_ascii=False)
        out[label] = hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]
    return out


def test_interpret_gives_the_interpretations_it_gave_before_the_split():
    golden = json.loads(GOLDEN.read_text("utf-8"))
    now = outputs()
    assert set(now) == set(golden)
    changed = sorted(k for k in golden if now[k] != golden[k])
    assert not changed, f"{len(changed)} of {len(golden)} interpretations changed: {changed[:10]}"


def test_the_grid_reaches_every_consideration():
    seen = set()
    for _, (value, unit), kwargs in grid():
        seen.update(interpret(value, unit, **kwargs).codes())
    assert seen == {
        "check-value", "unit-conversion", "pregnancy", "breastfeeding", "single-value-confirms",
        "sampling-conditions", "exclude-pregnancy", "medications", "above-drug-induced-range",
        "within-drug-induced-range", "medication-history", "kratom", "kratom-remeasure", "check-tsh",
        "hypothyroidism", "check-kidney-function", "kidney-function", "prolactinoma-suggested",
        "macroprolactin", "symptoms", "hypogonadism", "hook-effect", "status-contradiction"}


if __name__ == "__main__":
    if sys.argv[1:] != ["--bless"]:
        sys.exit("usage: python tests/knowledge/test_prolactin_golden.py --bless")
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(outputs(), indent=0, sort_keys=True) + "\n", "utf-8")
    print(f"wrote {GOLDEN}")
