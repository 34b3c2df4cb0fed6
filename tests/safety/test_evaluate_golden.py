"""`speciosa evaluate` gives the same findings as before the rules moved into a registry.

400 generated timelines (``timeline_cases``: every rule's inputs on both sides of its
thresholds) are evaluated each at three times, with the default settings and with a set of
overrides. The SHA-256 of each case's findings (JSON, keys sorted) is compared with
``data/evaluate-golden.json``, which was written by the code before the registry refactor
(commit b88d6ea).

A change of behaviour that is meant (a new rule, a corrected message) changes digests: check
the new findings, then bless them with::

    .venv/bin/python -m tests.safety.test_evaluate_golden --bless

and say in the commit which cases changed and why.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from speciosa.cli import main
from speciosa.safety import RULES, evaluate, evaluate_many, timeline_from_json

from .timeline_cases import CASES, SETTINGS_OVERRIDE, as_ofs, case

GOLDEN = Path(__file__).resolve().parent / "data" / "evaluate-golden.json"


def _settings(pairs: list[str]) -> dict:
    out = {}
    for name, value in (p.split("=") for p in pairs if p != "--set"):
        number = float(value)
        out[name] = int(number) if number.is_integer() else number
    return out


def outputs(seed: int) -> list:
    """Every evaluation of one case: three times, default settings, then the overrides."""
    raw = case(seed)
    timeline = timeline_from_json(raw)
    out = []
    for settings in (None, _settings(SETTINGS_OVERRIDE)):
        for as_of in as_ofs(raw):
            out.append([f.as_json() for f in evaluate(timeline, as_of, settings)])
    return out


def digest(value) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def current_digests() -> dict[str, str]:
    return {str(seed): digest(outputs(seed)) for seed in range(CASES)}


def test_the_generated_cases_give_every_rule_work():
    fired: dict[str, int] = {}
    for seed in range(CASES):
        for findings in outputs(seed):
            for f in findings:
                fired[f["rule"]] = fired.get(f["rule"], 0) + 1
    assert {r.id for r in RULES} <= set(fired), fired
    assert min(fired.values()) >= 5, fired


def test_evaluate_gives_the_findings_it_gave_before_the_registry():
    golden = json.loads(GOLDEN.read_text("utf-8"))
    now = current_digests()
    changed = [seed for seed in golden if now.get(seed) != golden[seed]]
    assert not changed, (
        f"{len(changed)} of {len(golden)} cases changed (first: case({changed[0]}) -> "
        f"{json.dumps(outputs(int(changed[0]))[0], indent=1)[:3000]})")


def test_the_command_line_prints_the_same_findings_as_evaluate(capsys, tmp_path):
    for seed in range(0, CASES, 37):
        raw = case(seed)
        path = tmp_path / f"case{seed}.json"
        path.write_text(json.dumps(raw), "utf-8")
        as_of = as_ofs(raw)[0]
        assert main(["evaluate", str(path), "--as-of", as_of.isoformat(), "--json"]) == 0
        printed = json.loads(capsys.readouterr().out)["findings"]
        direct = [f.as_json() for f in evaluate(timeline_from_json(raw), as_of)]
        assert printed == json.loads(json.dumps(direct, default=str)), seed


def test_evaluating_many_timelines_at_once_gives_each_its_own_findings():
    """``evaluate_many`` (the sweep: a batch of patients, some work in arrays across them)
    gives every golden case exactly the findings ``evaluate`` gives it alone."""
    by_zone: dict[str, dict[int, object]] = {}
    raws = {}
    for seed in range(CASES):
        raws[seed] = raw = case(seed)
        by_zone.setdefault(raw["tz"], {})[seed] = timeline_from_json(raw)
    escalations = mitragynine = 0
    for settings in (None, _settings(SETTINGS_OVERRIDE)):
        for timelines in by_zone.values():
            for k in range(3):
                as_of = as_ofs(raws[next(iter(timelines))])[k]
                many = evaluate_many(timelines, as_of, settings)
                assert set(many) == set(timelines)
                for seed, tl in timelines.items():
                    alone = [f.as_json() for f in evaluate(tl, as_of, settings)]
                    assert [f.as_json() for f in many[seed]] == alone, (seed, k)
                    for f in alone:
                        if f["rule"] == "SAF-DOSE-ESC":
                            escalations += 1
                            mitragynine += "mitragynine_mg" in f["evidence"]["last_14_days"]
    assert escalations >= 5 and mitragynine >= 1, (escalations, mitragynine)


if __name__ == "__main__":
    if sys.argv[1:] != ["--bless"]:
        sys.exit("usage: python -m tests.safety.test_evaluate_golden --bless")
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(current_digests(), indent=0, sort_keys=True) + "\n", "utf-8")
    print(f"wrote {GOLDEN}")
