"""The rule registry: one declaration per rule, checked when it is made, and everything
derived from it (docs/rules.md, descriptions, the windows the sweep loads) kept true."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from speciosa.cli import main
from speciosa.safety import RULES, data_windows, timeline_from_json
from speciosa.safety.rules import AREAS, markdown
from speciosa.safety.rules._context import Context
from speciosa.safety.rules._registry import (
    Found,
    Registry,
    RuleDeclarationError,
    Window,
    assessments,
    doses,
    last_dose,
)
from speciosa.safety.settings import DEFAULT_SETTINGS, resolve_settings
from speciosa.safety.timeline import Patient, Timeline

from .timeline_cases import SETTINGS_OVERRIDE, as_ofs, case

DOCS = Path(__file__).resolve().parents[2] / "docs"


# ------------------------------------------------------------------ what is derived


def test_the_checked_in_docs_rules_md_is_generated_from_the_registry():
    assert (DOCS / "rules.md").read_text("utf-8") == markdown(), (
        "docs/rules.md is out of date: run `speciosa rules --markdown > docs/rules.md`")


def test_speciosa_rules_markdown_prints_the_generated_file(capsys):
    assert main(["rules", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out == markdown()
    for r in RULES:
        assert f"### `{r.id}` — `{r.topic}` ({r.severity})" in out
        assert r.description in out


def test_rules_keep_their_order_most_severe_first_then_by_area():
    assert [r.id for r in RULES] == [
        "SAF-SUICIDE", "SAF-SEIZURE", "SAF-WD-MOD", "SAF-LIVER", "SAF-QT",
        "SAF-DEPRESSION-SEVERE", "SAF-ANXIETY-SEVERE", "SAF-PREG", "SAF-COUSE-SED",
        "SAF-DDI-CYP3A", "SAF-NALTREXONE-KRATOM", "SAF-UDS-UNEXPECTED",
            "SAF-DOSE-ESC", "SAF-7OH-PRODUCT", "SAF-PRL-VHIGH", "SAF-PRL-SYMPT",
        "SAF-PRL-HIGH",
        "SAF-PRL-RISE", "SAF-MED-UNCLASSIFIED", "SAF-PRL-DUE", "SAF-DIARY-GAP"]
    assert {r.area for r in RULES} == set(AREAS)


def test_a_description_follows_the_settings_in_force():
    rule = next(r for r in RULES if r.id == "SAF-DIARY-GAP")
    assert rule.description == ("No diary for 7 days from a patient who wrote it on at least 20 "
                                "of the 28 days before.")
    assert rule.describe({**DEFAULT_SETTINGS, "diary_gap_days": 10}).startswith(
        "No diary for 10 days")
    rise = next(r for r in RULES if r.id == "SAF-PRL-RISE")
    assert "at least 50 % above" in rise.description
    assert "at least 75 % above" in rise.describe({**DEFAULT_SETTINGS,
                                                    "prolactin_rise_fraction": 0.75})


def test_the_data_windows_are_the_union_of_the_declarations_and_follow_the_settings():
    w = data_windows()
    assert w.instruments() == {"phq9": 14, "cows": 3, "sows": 31, "audit-c": 365, "gad7": 14}
    assert w.days["doses"] == 28 and w.before_last == {"doses": 0, "diary_days": 28}
    assert w.days["side_effects"] == 90 and w.days["substances"] == 30
    assert w.full_history == {"labs", "medications"}
    wider = data_windows({"kratom_current_use_days": 60, "sows_baseline_days": 60,
                          "symptom_recent_days": 120})
    assert wider.days["doses"] == 60 and wider.instruments()["sows"] == 63
    assert wider.days["side_effects"] == 120
    with pytest.raises(ValueError, match="unknown safety setting"):
        data_windows({"diary_gap": 3})


# ------------------------------------------------------------------ declarations


def _declare(registry: Registry, rule_id: str = "SAF-TEST", *,
             doc: str = "A test rule for the last {phq9_recent_days} days.", **overrides):
    declaration = {"topic": "test-topic", "severity": "warning", "settings": ("phq9_recent_days",),
                   "windows": (assessments("phq9", "phq9_recent_days"),),
                   "citations": ("kroenke-2001-phq9",), **overrides}

    def function(ctx: Context) -> Found | None:
        return ctx.memo.get("found")

    function.__doc__ = doc
    return registry.rule(rule_id, **declaration)(function)


def test_it_refuses_a_second_rule_with_the_same_id():
    registry = Registry()
    _declare(registry)
    with pytest.raises(RuleDeclarationError, match="already declared"):
        _declare(registry, topic="other-topic")


def test_it_refuses_a_second_rule_with_the_same_topic():
    registry = Registry()
    _declare(registry)
    with pytest.raises(RuleDeclarationError, match="already has the topic"):
        _declare(registry, "SAF-TEST-TWO")


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"rule_id": "saf-lower"}, "the id must look like"),
    ({"topic": "Not A Topic"}, "lower-case words"),
    ({"severity": "critical"}, "severity must be one of"),
    ({"settings": ("phq9_recent_days", "phq9_days")}, "unknown setting 'phq9_days'"),
    ({"settings": ()}, "depends on 'phq9_recent_days': declare it in settings"),
    ({"windows": ()}, "declare its windows"),
    ({"citations": ()}, "give citations"),
    ({"doc": ""}, "write one"),
    ({"doc": "Fires after {diary_gap_days} days."}, "names {diary_gap_days}: declare it"),
])
def test_it_refuses_a_declaration_that_cannot_be_right(overrides, problem):
    rule_id = overrides.pop("rule_id", "SAF-TEST")
    with pytest.raises(RuleDeclarationError, match=problem):
        _declare(Registry(), rule_id, **overrides)


def test_it_refuses_a_window_on_an_unknown_table_or_setting():
    with pytest.raises(RuleDeclarationError, match="window table 'vitals'"):
        Window("vitals", (3,))
    with pytest.raises(RuleDeclarationError, match="'cows_days' is not a setting"):
        doses("cows_days")
    with pytest.raises(RuleDeclarationError, match="anchor"):
        Window("doses", (3,), anchor="first")


def test_it_refuses_a_rule_declared_outside_the_listed_areas():
    registry = Registry()
    _declare(registry)  # declared in this test module, which is no area
    with pytest.raises(RuleDeclarationError, match="not a listed area"):
        registry.rules(AREAS)


def _context() -> Context:
    timeline = Timeline(patient=Patient(sex=None, birth_date=None))
    return Context(timeline, datetime(2025, 6, 30, tzinfo=UTC), resolve_settings(None))


def test_a_finding_gets_the_declared_id_topic_and_citations():
    registry = Registry()
    _declare(registry)
    rule = registry.rules(("test_registry",))[0]
    ctx = _context()
    ctx.memo["found"] = Found("info", "message", {"x": 1}, "step")
    f = rule.evaluate(ctx)
    assert (f.rule, f.topic, f.severity, f.citations) == (
        "SAF-TEST", "test-topic", "info", ("kroenke-2001-phq9",))


def test_a_finding_above_the_declared_severity_is_an_error():
    registry = Registry()
    _declare(registry)
    ctx = _context()
    ctx.memo["found"] = Found("urgent", "message", {}, "step")
    with pytest.raises(RuleDeclarationError, match="above its declared severity 'warning'"):
        registry.rules(("test_registry",))[0].evaluate(ctx)


def test_a_finding_citing_evidence_the_declaration_does_not_list_is_an_error():
    registry = Registry()
    _declare(registry)
    ctx = _context()
    ctx.memo["found"] = Found("info", "message", {}, "step", ("labryer-2018",))
    with pytest.raises(RuleDeclarationError, match="labryer-2018"):
        registry.rules(("test_registry",))[0].evaluate(ctx)


# ------------------------------------------------------------------ what rules read


class _Settings(Mapping):
    """The settings in force, remembering which were read."""

    def __init__(self, values: Mapping) -> None:
        self.values, self.read = values, set()

    def __getitem__(self, name):
        self.read.add(name)
        return self.values[name]

    def __iter__(self):
        return iter(self.values)

    def __len__(self):
        return len(self.values)


class _Recording(Context):
    """A context that records every read of the timeline: (table, key, start), where start
    is the earliest time read, None for the whole history, or "last"."""

    __slots__ = ("reads",)

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.reads: list[tuple[str, str | None, object]] = []

    def doses_between(self, start, end=None):
        self.reads.append(("doses", None, start))
        return super().doses_between(start, end)

    def last_dose(self):
        self.reads.append(("doses", None, "last"))
        return super().last_dose()

    def labs(self, code, days=None):
        self.reads.append(("labs", code, None if days is None else self.ago(days)))
        return super().labs(code, days)

    def assessments(self, instrument, days):
        self.reads.append(("assessments", instrument, self.ago(days)))
        return super().assessments(instrument, days)

    def assessments_before(self, instrument, moment, days):
        self.reads.append(("assessments", instrument, moment - timedelta(days=days)))
        return super().assessments_before(instrument, moment, days)

    def side_effects(self, code, days):
        self.reads.append(("side_effects", code, self.ago(days)))
        return super().side_effects(code, days)

    def substances(self, days):
        self.reads.append(("substances", None, self.ago(days)))
        return super().substances(days)

    def diary_days(self):
        self.reads.append(("diary_days", None, "last"))
        return super().diary_days()

    def current_medications(self):
        self.reads.append(("medications", None, None))
        return super().current_medications()


def _covered(ctx: Context, settings: Mapping, windows: tuple[Window, ...], read) -> bool:
    table, key, start = read
    for w in windows:
        if w.table != table or (w.keys and key not in w.keys):
            continue
        if start == "last":
            if w.anchor == "last":
                return True
            continue
        if w.full_history:
            return True
        if start is None or w.anchor != "as_of":
            continue
        # an hour of slack: a wall-clock subtraction across a daylight-saving change
        if start >= ctx.ago(w.length(settings)) - timedelta(hours=1):
            return True
    return False


def test_every_rule_reads_only_the_windows_and_settings_it_declares():
    overrides = dict(p.split("=") for p in SETTINGS_OVERRIDE if p != "--set")
    overrides = {k: float(v) if "." in v else int(v) for k, v in overrides.items()}
    reads = 0
    for seed in range(0, 400, 2):
        raw = case(seed)
        timeline = timeline_from_json(raw)
        for settings in (None, overrides):
            for as_of in as_ofs(raw)[:2]:
                for rule in RULES:
                    values = resolve_settings(settings)
                    tracked = _Settings(values)
                    ctx = _Recording(timeline, as_of, tracked)
                    rule.evaluate(ctx)
                    assert tracked.read <= set(rule.settings), (rule.id, tracked.read)
                    for read in ctx.reads:
                        assert _covered(ctx, values, rule.windows, read), (rule.id, read, seed)
                    reads += len(ctx.reads)
    assert reads > 10_000


def test_the_recording_check_catches_a_read_outside_the_declared_windows():
    raw = case(3)
    values = resolve_settings(None)
    ctx = _Recording(timeline_from_json(raw), as_ofs(raw)[0], values)
    ctx.assessments("phq9", 30)
    ctx.last_dose()
    assert not _covered(ctx, values, (assessments("phq9", "phq9_recent_days"),), ctx.reads[0])
    assert not _covered(ctx, values, (assessments("cows", 30),), ctx.reads[0])
    assert _covered(ctx, values, (assessments("phq9", 30),), ctx.reads[0])
    assert not _covered(ctx, values, (doses(28),), ctx.reads[1])
    assert _covered(ctx, values, (doses(28), last_dose()), ctx.reads[1])
