"""The sweep's batches run without the cyclic garbage collector (issue 18), and give it back."""

from __future__ import annotations

import datetime as dt
import gc

import pytest

from speciosa import safety


def test_paused_inside_and_resumed_after(collector):
    with safety.paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_inner_block_leaves_the_outer_one_paused(collector):
    with safety.paused_gc():
        with safety.paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block's exit must not resume it
    assert gc.isenabled()


def test_a_collector_disabled_by_the_caller_stays_disabled(collector):
    gc.disable()
    with safety.paused_gc():
        pass
    assert not gc.isenabled()


def test_resumed_after_an_exception(collector):
    with pytest.raises(RuntimeError), safety.paused_gc():
        raise RuntimeError("a rule that raises")
    assert gc.isenabled()


def test_evaluate_many_runs_its_rules_with_the_collector_paused(collector, monkeypatch):
    from speciosa.safety import rules

    seen = []
    steps = [lambda batch: seen.append(gc.isenabled())]
    monkeypatch.setattr(rules, "BATCH_STEPS", steps)
    tl = safety.Timeline(patient=safety.Patient(sex="female", birth_date=None))
    assert rules.evaluate_many({1: tl}, dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) == {1: []}
    assert seen == [False]
    assert gc.isenabled()

