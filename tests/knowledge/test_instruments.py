"""Instruments as data and the one scorer.

Expected values come from shared/reference/instruments.md, written out here by hand so the
tests check the definition files against the reference rather than against themselves.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from speciosa.knowledge import instruments as kinstruments
from speciosa.knowledge.instruments import (
    DefinitionError,
    InstrumentError,
    all_instruments,
    cows_pulse_score,
    flags_for_total,
    get_instrument,
    score,
)

# ------------------------------------------------------------------ reference oracles

COWS_ALLOWED = {
    "pulse": (0, 1, 2, 4),
    "sweating": (0, 1, 2, 3, 4),
    "restlessness": (0, 1, 3, 5),
    "pupil": (0, 1, 2, 5),
    "bone-joint-aches": (0, 1, 2, 4),
    "runny-nose-tearing": (0, 1, 2, 4),
    "gi-upset": (0, 1, 2, 3, 5),
    "tremor": (0, 1, 2, 4),
    "yawning": (0, 1, 2, 4),
    "anxiety-irritability": (0, 1, 2, 4),
    "gooseflesh": (0, 3, 5),
}
SOWS_ITEMS = (
    "anxious", "yawning", "perspiring", "eyes-tearing", "nose-running", "gooseflesh",
    "shaking", "hot-flashes", "cold-flashes", "bones-muscles-ache", "restless", "nauseous",
    "like-vomiting", "muscles-twitch", "stomach-cramps", "urge-to-use",
)
PHQ9_ITEMS = ("interest", "mood", "sleep", "energy", "appetite", "self-worth",
              "concentration", "psychomotor", "self-harm")
GAD7_ITEMS = ("nervous", "uncontrolled-worry", "excessive-worry", "trouble-relaxing",
              "restless", "irritable", "afraid")
AUDITC_ITEMS = ("frequency", "typical-quantity", "heavy-episodes")
ASEX_ITEMS = ("drive", "arousal", "lubrication-erection", "orgasm-ability",
              "orgasm-satisfaction")
SIDE_EFFECT_ITEMS = (
    "reduced-sex-drive", "sexual-dysfunction", "breast-enlargement-tenderness",
    "nipple-discharge", "menstrual-change", "constipation", "nausea", "itching", "insomnia",
    "dark-urine-yellow-eyes", "seizure", "oversedation-slow-breathing", "confusion",
    "palpitations-chest-pain",
)

EXPECTED_ALLOWED: dict[str, dict[str, tuple[int, ...]]] = {
    "cows": COWS_ALLOWED,
    "sows": {i: (0, 1, 2, 3, 4) for i in SOWS_ITEMS},
    "craving-nrs": {"craving": tuple(range(0, 11))},
    "craving-vas": {"craving": tuple(range(0, 101))},
    "phq9": {**{i: (0, 1, 2, 3) for i in PHQ9_ITEMS}, "difficulty": (0, 1, 2, 3)},
    "gad7": {i: (0, 1, 2, 3) for i in GAD7_ITEMS},
    "audit-c": {i: (0, 1, 2, 3, 4) for i in AUDITC_ITEMS},
    "asex": {i: (1, 2, 3, 4, 5, 6) for i in ASEX_ITEMS},
    "side-effects": {i: (0, 1) for i in SIDE_EFFECT_ITEMS},
}

ALL_ITEMS = [(inst, item, allowed)
             for inst, items in EXPECTED_ALLOWED.items()
             for item, allowed in items.items()]


def disallowed_neighbours(allowed: tuple[int, ...]) -> list[int]:
    """Integers next to an allowed value (gaps and both ends) that are not allowed."""
    near = {v + d for v in allowed for d in (-1, 1)}
    return sorted(near - set(allowed))


def full(instrument_id: str, value: int | None = None, **overrides: int) -> dict[str, int]:
    """A complete response: every scored item at ``value`` (default: its lowest)."""
    inst = get_instrument(instrument_id)
    out = {it.id: (it.allowed[0] if value is None else value) for it in inst.items if it.scored}
    out.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return out


def cows_with_total(total: int) -> dict[str, int]:
    """A complete COWS response with the given total (greedy over the sparse values)."""
    responses = {}
    remaining = total
    for item, allowed in COWS_ALLOWED.items():
        pick = max(v for v in allowed if v <= remaining)
        responses[item] = pick
        remaining -= pick
    assert remaining == 0, total
    return responses


def sum_response(items: tuple[str, ...], total: int, top: int, low: int = 0) -> dict[str, int]:
    responses = {}
    remaining = total - low * len(items)
    for item in items:
        pick = min(top - low, remaining)
        responses[item] = low + pick
        remaining -= pick
    assert remaining == 0
    return responses


# ------------------------------------------------------------------ catalogue


def test_it_ships_exactly_the_instruments_of_the_contract():
    assert sorted(i.id for i in all_instruments()) == sorted(EXPECTED_ALLOWED)


@pytest.mark.parametrize("instrument_id", sorted(EXPECTED_ALLOWED))
def test_each_instrument_lists_its_items_in_reference_order(instrument_id):
    assert [it.id for it in get_instrument(instrument_id).items] == list(
        EXPECTED_ALLOWED[instrument_id]
    )


@pytest.mark.parametrize(
    ("instrument_id", "completed_by", "min_total", "max_total"),
    [("cows", "clinician", 0, 48), ("sows", "patient-diary", 0, 64), ("phq9", "patient", 0, 27),
     ("gad7", "patient", 0, 21), ("audit-c", "patient", 0, 12), ("asex", "patient", 5, 30),
     ("craving-nrs", "patient-diary", 0, 10), ("craving-vas", "patient-diary", 0, 100),
     ("side-effects", "patient-diary", 0, 14)],
)
def test_each_instrument_has_the_reference_range_and_rater(
    instrument_id, completed_by, min_total, max_total
):
    inst = get_instrument(instrument_id)
    assert (inst.completed_by, inst.min_total, inst.max_total) == (
        completed_by, min_total, max_total)


def test_every_value_has_anchor_text_except_the_unanchored_points_of_a_numeric_scale():
    cows = get_instrument("cows")
    assert cows.item("pupil").anchor(5) == (
        "pupils so dilated that only the rim of the iris is visible")
    assert cows.item("gooseflesh").anchor(5) == "prominent piloerection"
    vas = get_instrument("craving-vas").item("craving")
    assert (vas.anchor(0), vas.anchor(50), vas.anchor(100)) == ("not at all", "", "extremely")
    for inst in all_instruments():
        if inst.id not in ("craving-nrs", "craving-vas", "asex"):
            assert all(v.anchor for it in inst.items for v in it.values), inst.id


def test_an_unknown_instrument_is_an_error_listing_the_known_ones():
    with pytest.raises(InstrumentError, match="unknown instrument 'kds'.*cows"):
        get_instrument("kds")


def test_asking_for_an_unknown_item_names_the_items_it_has():
    with pytest.raises(InstrumentError, match="no item 'pulse'.*drive") as err:
        get_instrument("asex").item("pulse")
    assert err.value.item == "pulse"


def test_asex_ships_no_licensed_wording():
    asex = get_instrument("asex")
    assert all(it.text is None for it in asex.items)
    assert "Arizona Board of Regents" in asex.licence
    # generic anchors only: the published anchor words are not shipped
    anchors = {v.anchor for it in asex.items for v in it.values}
    assert anchors == {"", "least dysfunction", "most dysfunction"}


def test_every_instrument_cites_the_evidence_registry():
    from speciosa.knowledge import evidence

    for inst in all_instruments():
        assert inst.citations, inst.id
        assert evidence.missing_references(inst.citations) == [], inst.id
    assert evidence.citation("wesson-2003-cows").pmid == "12924748"
    assert evidence.citation("mcgahuey-2000-asex").doi == "10.1080/009262300278623"


# ------------------------------------------------------------------ allowed values


@pytest.mark.parametrize(("instrument_id", "item_id", "allowed"), ALL_ITEMS)
def test_every_allowed_value_of_every_item_is_accepted(instrument_id, item_id, allowed):
    assert get_instrument(instrument_id).item(item_id).allowed == allowed
    for value in allowed:
        result = score(instrument_id, {item_id: value})
        assert result.missing == tuple(
            i for i in EXPECTED_ALLOWED[instrument_id]
            if i != item_id and get_instrument(instrument_id).item(i).required
        )


@pytest.mark.parametrize(("instrument_id", "item_id", "allowed"), ALL_ITEMS)
def test_a_neighbouring_disallowed_value_is_rejected_naming_item_and_allowed_values(
    instrument_id, item_id, allowed
):
    for value in disallowed_neighbours(allowed):
        with pytest.raises(InstrumentError) as err:
            score(instrument_id, {item_id: value})
        assert err.value.item == item_id
        assert err.value.allowed == allowed
        assert f"'{item_id}': {value} is not allowed" in str(err.value)


def test_it_rejects_a_cows_pupil_score_of_3():
    with pytest.raises(InstrumentError) as err:
        score("cows", {"pupil": 3})
    assert str(err.value) == "COWS item 'pupil': 3 is not allowed; allowed values are 0, 1, 2, 5"
    assert (err.value.item, err.value.allowed) == ("pupil", (0, 1, 2, 5))


def test_it_rejects_cows_gooseflesh_4_and_yawning_3_as_miscopied_implementations_allow():
    with pytest.raises(InstrumentError, match="allowed values are 0, 3, 5"):
        score("cows", {"gooseflesh": 4})
    with pytest.raises(InstrumentError, match="allowed values are 0, 1, 2, 4"):
        score("cows", {"yawning": 3})


def test_a_long_numeric_range_is_named_as_a_range_in_the_error():
    with pytest.raises(InstrumentError, match="allowed values are the integers 0 to 100"):
        score("craving-vas", {"craving": 101})


def test_an_unknown_item_is_rejected_naming_it():
    with pytest.raises(InstrumentError, match="COWS has no item 'heart-rate'") as err:
        score("cows", {"heart-rate": 1})
    assert err.value.item == "heart-rate"


@pytest.mark.parametrize("value", [2.0, 2.5, "2", None, True, [2]])
def test_a_non_integer_value_is_rejected(value):
    with pytest.raises(InstrumentError, match="is not an integer; allowed values are 0, 1, 2, 5"):
        score("cows", {"pupil": value})


def test_responses_must_be_a_mapping():
    with pytest.raises(InstrumentError, match="must be a mapping"):
        score("cows", [("pupil", 0)])  # type: ignore[arg-type]


# ------------------------------------------------------------------ completeness


def test_an_incomplete_response_has_no_total_and_lists_what_is_missing():
    responses = cows_with_total(20)
    del responses["pupil"], responses["gooseflesh"]
    result = score("cows", responses)
    assert (result.total, result.band, result.complete) == (None, None, False)
    assert result.missing == ("pupil", "gooseflesh")


def test_an_empty_response_is_incomplete_with_every_item_missing():
    result = score("gad7", {})
    assert result.total is None and result.missing == GAD7_ITEMS


def test_phq9_item_10_is_optional_and_not_in_the_total():
    result = score("phq9", full("phq9", 1))
    assert (result.total, result.complete, result.missing) == (9, True, ())
    assert score("phq9", {**full("phq9", 1), "difficulty": 3}).total == 9


def test_a_score_carries_the_instrument_id_and_version():
    result = score(get_instrument("sows"), full("sows", 0))
    assert (result.instrument, result.version) == ("sows", "handelsman-1987-16-item")


# ------------------------------------------------------------------ COWS totals and bands


@pytest.mark.parametrize(
    ("total", "band"),
    [(0, None), (4, None), (5, "mild"), (12, "mild"), (13, "moderate"), (24, "moderate"),
     (25, "moderately severe"), (36, "moderately severe"), (37, "severe"), (48, "severe")],
)
def test_cows_bands_at_every_boundary(total, band):
    result = score("cows", cows_with_total(total))
    assert (result.total, result.band, result.complete) == (total, band, True)


def test_cows_says_the_form_does_not_band_0_to_4():
    cows = get_instrument("cows")
    assert cows.bands[0].min == 5
    assert "no band for totals 0-4" in cows.band_note


# ------------------------------------------------------------------ COWS pulse


@pytest.mark.parametrize(
    ("bpm", "expected"),
    [(20, 0), (60, 0), (80, 0), (80.5, 1), (81, 1), (100, 1), (101, 2), (120, 2), (121, 4),
     (180, 4), (300, 4)],
)
def test_cows_pulse_converts_at_the_form_boundaries(bpm, expected):
    assert cows_pulse_score(bpm) == expected


@pytest.mark.parametrize("bpm", [0, -5, 19, 301, float("nan"), float("inf")])
def test_cows_pulse_rejects_an_implausible_rate(bpm):
    with pytest.raises(InstrumentError, match="plausible range 20-300 beats/min"):
        cows_pulse_score(bpm)


def test_cows_pulse_rejects_a_rate_that_is_not_a_number():
    with pytest.raises(InstrumentError, match="not a number of beats/min"):
        cows_pulse_score("96")  # type: ignore[arg-type]


def test_the_cows_score_accepts_a_measured_pulse_in_place_of_the_item_score():
    responses = cows_with_total(0)
    del responses["pulse"]
    result = score("cows", {**responses, "pulse-bpm": 121})
    assert (result.total, result.complete) == (4, True)
    assert score("cows", {**responses, "pulse-bpm": 80}).total == 0


def test_the_cows_score_refuses_both_a_pulse_score_and_a_measured_pulse():
    with pytest.raises(InstrumentError, match="either the score 'pulse' or the measurement"):
        score("cows", {"pulse": 0, "pulse-bpm": 90})


# ------------------------------------------------------------------ SOWS, craving


@pytest.mark.parametrize("total", [0, 1, 10, 11, 20, 21, 30, 31, 64])
def test_sows_reports_the_total_only_with_no_band(total):
    result = score("sows", sum_response(SOWS_ITEMS, total, 4))
    assert (result.total, result.band, result.flags) == (total, None, ())
    assert get_instrument("sows").bands == ()


def test_craving_scales_are_separate_instruments_with_their_own_range():
    nrs, vas = score("craving-nrs", {"craving": 7}), score("craving-vas", {"craving": 70})
    assert (nrs.instrument, nrs.total, nrs.band) == ("craving-nrs", 7, None)
    assert (vas.instrument, vas.total, vas.band) == ("craving-vas", 70, None)
    with pytest.raises(InstrumentError):
        score("craving-nrs", {"craving": 70})


# ------------------------------------------------------------------ PHQ-9, GAD-7


@pytest.mark.parametrize(
    ("total", "band"),
    [(0, "none/minimal"), (4, "none/minimal"), (5, "mild"), (9, "mild"), (10, "moderate"),
     (14, "moderate"), (15, "moderately severe"), (19, "moderately severe"), (20, "severe"),
     (27, "severe")],
)
def test_phq9_bands_at_every_boundary(total, band):
    responses = sum_response(PHQ9_ITEMS[:8], min(total, 24), 3)
    responses["self-harm"] = total - sum(responses.values())
    result = score("phq9", responses)
    assert (result.total, result.band) == (total, band)


@pytest.mark.parametrize("value", [1, 2, 3])
def test_phq9_item_9_above_0_raises_the_same_day_safety_flag(value):
    assert score("phq9", full("phq9", 0, self_harm=value)).flags == ("phq9-item9-positive",)


def test_phq9_item_9_of_0_raises_no_flag_even_with_a_severe_total():
    result = score("phq9", full("phq9", 3, self_harm=0))
    assert (result.total, result.band, result.flags) == (24, "severe", ())


def test_phq9_item_9_flag_is_raised_even_when_the_response_is_incomplete():
    result = score("phq9", {"self-harm": 1})
    assert (result.total, result.flags) == (None, ("phq9-item9-positive",))


@pytest.mark.parametrize(
    ("total", "band"),
    [(0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"),
     (14, "moderate"), (15, "severe"), (21, "severe")],
)
def test_gad7_bands_at_every_boundary(total, band):
    result = score("gad7", sum_response(GAD7_ITEMS, total, 3))
    assert (result.total, result.band) == (total, band)


# ------------------------------------------------------------------ AUDIT-C


@pytest.mark.parametrize(
    ("sex", "total", "positive"),
    [("female", 2, False), ("female", 3, True), ("male", 3, False), ("male", 4, True),
     ("female", 12, True), ("male", 0, False)],
)
def test_audit_c_cut_offs_by_sex_on_both_sides(sex, total, positive):
    result = score("audit-c", sum_response(AUDITC_ITEMS, total, 4), sex=sex)
    assert result.total == total
    assert result.flags == (("audit-c-positive",) if positive else ())


@pytest.mark.parametrize(
    ("total", "flags"),
    [(2, ()), (3, ("audit-c-positive-depends-on-sex",)), (4, ("audit-c-positive",))],
)
def test_audit_c_without_sex_says_when_the_result_depends_on_it(total, flags):
    assert score("audit-c", sum_response(AUDITC_ITEMS, total, 4)).flags == flags


def test_audit_c_incomplete_raises_no_cut_off_flag():
    assert score("audit-c", {"frequency": 4}, sex="female").flags == ()


def _items_for(inst, total):
    """Answers to every item of ``inst`` whose scored values sum to ``total`` (or None)."""
    answers, left = {}, total
    for it in inst.items:
        if not it.scored:
            answers[it.id] = min(it.allowed)
            continue
        fits = [v for v in it.allowed if v <= left] or [min(it.allowed)]
        answers[it.id] = max(fits)
        left -= answers[it.id]
    return answers if left == 0 else None


def _total_only_flag_ids(inst):
    return {f.id for f in inst.flags if all(c.kind in ("total", "total-by-sex")
                                            for c in f.conditions)}


@pytest.mark.parametrize("instrument", [i.id for i in all_instruments()])
def test_flags_from_a_total_equal_the_scorers_flags_for_the_same_total(instrument):
    inst = get_instrument(instrument)
    only_total = _total_only_flag_ids(inst)
    checked = 0
    for total in range(inst.min_total, inst.max_total + 1):
        items = _items_for(inst, total)
        if items is None:
            continue
        for sex in (None, "female", "male"):
            scored = score(inst, items, sex=sex).flags
            found = flags_for_total(inst, total, sex=sex)

            def total_only(flags):
                return tuple(f for f in flags if f.removesuffix("-depends-on-sex") in only_total)

            assert total_only(found) == total_only(scored), (total, sex)
            # a flag with item conditions too (ASEX) is raised from the total alone only
            # when its total condition holds, and then the scorer raises it as well
            assert set(found) <= set(scored), (total, sex)
            checked += 1
    assert checked


def test_flags_from_a_total_let_a_condition_that_holds_win_over_one_that_depends_on_sex():
    """Regression: the safety rules' own copy stopped at the first condition that depended
    on the sex (raising ...-depends-on-sex) although a later condition held."""
    inst = kinstruments.load_definitions([("site.toml", SITE_SCREEN)])["site-screen"]
    assert flags_for_total(inst, 4) == ("site-positive",)  # total >= 4 holds for everyone
    assert score(inst, {"a": 2, "b": 2}).flags == ("site-positive",)
    assert flags_for_total(inst, 3) == ("site-positive-depends-on-sex",)
    assert flags_for_total(inst, 3, sex="female") == ("site-positive",)
    assert flags_for_total(inst, 2) == ()


def test_flags_from_a_total_refuse_a_total_outside_the_range_or_not_an_integer():
    with pytest.raises(InstrumentError, match="AUDIT-C totals run from 0 to 12, not 13"):
        flags_for_total("audit-c", 13)
    with pytest.raises(InstrumentError, match="must be an integer"):
        flags_for_total("audit-c", 3.0)
    with pytest.raises(InstrumentError, match="must be an integer"):
        flags_for_total("audit-c", True)
    with pytest.raises(InstrumentError, match="sex must be one of"):
        flags_for_total("audit-c", 3, sex="unknown")


def test_flags_from_a_total_raise_no_item_flag():
    assert flags_for_total("phq9", 27) == ()  # item 9 cannot be read from a total


SITE_SCREEN = """
id = "site-screen"
name = "Site screen"
version = "1"
completed_by = "patient"
citations = []
licence = "test"

[scoring]
kind = "sum"

[scales.s]
values = [{ value = 0, anchor = "no" }, { value = 1, anchor = "some" }, { value = 2, anchor = "yes" }]

[[items]]
id = "a"
label = "A"
scale = "s"

[[items]]
id = "b"
label = "B"
scale = "s"

[[flags]]
id = "site-positive"
description = "Positive: >= 3 for women, >= 5 for men, or >= 4 for anyone."
when_any = [{ total_at_least_by_sex = { female = 3, male = 5 } }, { total_at_least = 4 }]
"""


def test_an_unknown_sex_is_rejected():
    with pytest.raises(InstrumentError, match="sex must be one of female, male"):
        score("audit-c", full("audit-c", 0), sex="F")


# ------------------------------------------------------------------ ASEX


def asex(*values: int) -> dict[str, int]:
    return dict(zip(ASEX_ITEMS, values, strict=True))


@pytest.mark.parametrize(
    ("values", "dysfunction"),
    [
        ((1, 1, 1, 1, 1), False),   # minimum
        ((4, 4, 1, 1, 1), False),   # only two items >= 4, total 11
        ((4, 4, 4, 4, 1), True),    # rule 3: three or more items >= 4, total 17
        ((4, 4, 4, 1, 1), True),    # rule 3 exactly: three items at 4, total only 14
        ((3, 3, 3, 3, 3), False),   # total 15, no item >= 4
        ((5, 1, 1, 1, 1), True),    # rule 2: one item >= 5, total only 9
        ((1, 1, 1, 1, 6), True),    # rule 2 on the last item
        ((4, 4, 3, 3, 3), False),   # highest total without an item rule: 17
        ((6, 6, 6, 6, 6), True),    # maximum
    ],
)
def test_asex_dysfunction_rules_are_checked_item_by_item(values, dysfunction):
    result = score("asex", asex(*values))
    assert result.total == sum(values)
    assert result.flags == (("asex-sexual-dysfunction",) if dysfunction else ())


def test_asex_flags_dysfunction_at_a_total_of_6_where_the_total_alone_would_miss_it():
    result = score("asex", asex(2, 1, 1, 1, 1))
    assert result.flags == ()
    result = score("asex", asex(1, 1, 1, 1, 5))
    assert (result.total, result.flags) == (9, ("asex-sexual-dysfunction",))
    assert result.total < 19  # a total-only rule would have said "no dysfunction"


def test_asex_item_rules_fire_on_an_incomplete_response():
    result = score("asex", {"drive": 6})
    assert (result.total, result.flags) == (None, ("asex-sexual-dysfunction",))


def test_asex_has_no_bands():
    assert score("asex", asex(3, 3, 3, 3, 3)).band is None


# ------------------------------------------------------------------ side effects


def test_the_side_effect_checklist_flags_a_seizure_and_signs_of_liver_injury():
    result = score("side-effects", full("side-effects", 0, seizure=1,
                                        dark_urine_yellow_eyes=1, constipation=1))
    assert result.total == 3
    assert set(result.flags) == {"seizure", "dark-urine-yellow-eyes"}


def test_the_side_effect_checklist_does_not_flag_non_urgent_symptoms():
    result = score("side-effects", full("side-effects", 0, reduced_sex_drive=1, itching=1))
    assert (result.total, result.band, result.flags) == (2, None, ())


def test_a_reported_seizure_is_flagged_even_if_the_checklist_is_incomplete():
    assert score("side-effects", {"seizure": 1}).flags == ("seizure",)


# ------------------------------------------------------------------ site definitions


ASEX_OVERLAY = """
overlay = "asex"
licence = "Wording used under licence (test site, agreement 42)."

[[items]]
id = "drive"
text = "Licensed wording of item one."
anchors = { 1 = "licensed anchor one", 6 = "licensed anchor six" }

[[items]]
id = "orgasm-satisfaction"
text = "Licensed wording of item five."
"""


@pytest.fixture
def site_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(kinstruments.SITE_DIR_ENV, str(tmp_path))
    yield tmp_path
    kinstruments._registry.cache_clear()


def test_a_site_directory_loads_licensed_asex_wording(site_dir):
    (site_dir / "asex-licensed.toml").write_text(ASEX_OVERLAY)
    asex_def = get_instrument("asex")
    assert asex_def.item("drive").text == "Licensed wording of item one."
    assert asex_def.item("drive").anchor(1) == "licensed anchor one"
    assert asex_def.item("drive").anchor(3) == ""
    assert asex_def.item("orgasm-satisfaction").text == "Licensed wording of item five."
    assert asex_def.item("arousal").text is None
    assert asex_def.licence.startswith("Wording used under licence")
    # wording changes nothing about scoring
    assert asex_def.item("drive").allowed == (1, 2, 3, 4, 5, 6)
    assert score(asex_def, asex(5, 1, 1, 1, 1)).flags == ("asex-sexual-dysfunction",)


def test_without_the_site_directory_the_packaged_wording_is_back(site_dir, monkeypatch):
    (site_dir / "asex-licensed.toml").write_text(ASEX_OVERLAY)
    assert get_instrument("asex").item("drive").text is not None
    monkeypatch.delenv(kinstruments.SITE_DIR_ENV)
    assert get_instrument("asex").item("drive").text is None


def test_an_overlay_cannot_anchor_a_value_the_item_does_not_allow(site_dir):
    (site_dir / "bad.toml").write_text(
        'overlay = "cows"\n[[items]]\nid = "pupil"\nanchors = { 3 = "made up" }\n')
    with pytest.raises(DefinitionError, match=r"bad\.toml: items\[0\]\.anchors\.3: not an allowed"):
        get_instrument("cows")


def test_an_overlay_of_an_unknown_instrument_is_an_error(site_dir):
    (site_dir / "kds.toml").write_text('overlay = "kds"\n')
    with pytest.raises(DefinitionError, match=r"kds\.toml: overlay: no instrument 'kds'"):
        all_instruments()


SITE_INSTRUMENT = """
id = "site-mood"
name = "Site mood check"
version = "1"
completed_by = "patient"
citations = []
licence = "Ours."

[scoring]
kind = "sum-prorated"
min_answered = 2

[scales.yn]
values = [{ value = 0, anchor = "no" }, { value = 1, anchor = "yes" }]

[[items]]
id = "a"
label = "A"
scale = "yn"

[[items]]
id = "b"
label = "B"
scale = "yn"

[[items]]
id = "c"
label = "C"
scale = "yn"

[[bands]]
label = "low"
min = 0
max = 1

[[bands]]
label = "high"
min = 2
max = 3
"""


def test_a_site_can_add_an_instrument_that_prorates(site_dir):
    (site_dir / "site-mood.toml").write_text(SITE_INSTRUMENT)
    assert [i.id for i in all_instruments()][-1] == "site-mood"
    complete = score("site-mood", {"a": 1, "b": 1, "c": 0})
    assert (complete.total, complete.band, complete.complete) == (2, "high", True)
    prorated = score("site-mood", {"a": 1, "b": 0})  # 1 of 2 answered -> 1.5 -> 2
    assert (prorated.total, prorated.band, prorated.complete) == (2, "high", False)
    assert prorated.missing == ("c",)
    too_few = score("site-mood", {"a": 1})
    assert (too_few.total, too_few.band) == (None, None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('completed_by = "patient"', 'completed_by = "nurse"'),
         r"site-mood\.toml: completed_by: must be one of clinician, patient, patient-diary"),
        (('min = 2\nmax = 3', 'min = 1\nmax = 3'),
         r"bands\[1\]\.min: bands must be in increasing order and must not overlap"),
        (('min = 2\nmax = 3', 'min = 2\nmax = 4'),
         r"bands\[1\]: band 2-4 is outside the possible totals 0-3"),
        (('scale = "yn"\n\n[[items]]\nid = "c"', 'scale = "yes-no"\n\n[[items]]\nid = "c"'),
         r"items\[1\]\.scale: no scale 'yes-no'"),
        (('id = "c"', 'id = "b"'), r"items\[2\]\.id: duplicate item id 'b'"),
        (('min_answered = 2', 'min_answered = 4'),
         r"scoring\.min_answered: 'sum-prorated' needs min_answered between 1 and 3"),
        (('name = "Site mood check"', 'name = 7'), r"name: expected a string, got 7"),
        (('version = "1"', ''), r"version: missing required field"),
        (('licence = "Ours."', 'licence = "Ours."\nbands_note = "x"'), r"bands_note: unknown field"),
        (('[scoring]', '[scoring'), r"site-mood\.toml: not valid TOML"),
    ],
)
def test_an_invalid_site_definition_is_an_error_naming_file_and_field(site_dir, change, message):
    old, new = change
    assert old in SITE_INSTRUMENT
    (site_dir / "site-mood.toml").write_text(SITE_INSTRUMENT.replace(old, new, 1))
    with pytest.raises(DefinitionError, match=message):
        all_instruments()


def test_a_site_definition_with_the_packaged_id_replaces_it(site_dir):
    (site_dir / "craving.toml").write_text(
        SITE_INSTRUMENT.replace('id = "site-mood"', 'id = "craving-nrs"'))
    assert get_instrument("craving-nrs").name == "Site mood check"


def test_a_missing_site_directory_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(kinstruments.SITE_DIR_ENV, str(tmp_path / "nowhere"))
    try:
        with pytest.raises(DefinitionError, match="not a directory"):
            all_instruments()
    finally:
        kinstruments._registry.cache_clear()


def test_the_packaged_definitions_are_loaded_once():
    assert get_instrument("cows") is get_instrument("cows")


# ------------------------------------------------------------------ purity


def test_nothing_in_the_knowledge_package_imports_django():
    package = Path(kinstruments.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.name}: {n}" for n in names
                          if n == "django" or n.startswith("django.")]
    assert offenders == []


def test_the_documented_definition_and_overlay_examples_load():
    import re

    doc = (Path(__file__).parents[2] / "docs" / "instruments.md").read_text(encoding="utf-8")
    example, overlay = re.findall(r"```toml\n(.*?)```", doc, re.S)
    defs = kinstruments.load_definitions(
        [("example.toml", example), ("asex-licensed.toml", overlay)],
        base={"asex": get_instrument("asex")},
    )
    assert score(defs["example"], {"first": 1, "second": 3, "rating": 50,
                                   "pulse-bpm": 90}).total == 55
    assert defs["asex"].item("drive").text == "<licensed wording of item 1>"


def test_the_instruments_a_clinician_records_follow_who_completes_them():
    recorded = {i.id: i.completed_by for i in kinstruments.clinician_recorded()}
    assert recorded == {"cows": "clinician", "asex": "patient", "audit-c": "patient",
                        "gad7": "patient", "phq9": "patient"}
    assert list(recorded)[0] == "cows"  # the clinician-rated ones first
    diary = {i.id for i in all_instruments() if i.completed_by == "patient-diary"}
    assert diary == {"sows", "craving-nrs", "craving-vas", "side-effects"}


def test_a_site_questionnaire_answered_at_a_visit_is_one_a_clinician_records(site_dir):
    (site_dir / "site-mood.toml").write_text(SITE_INSTRUMENT)
    assert "site-mood" in [i.id for i in kinstruments.clinician_recorded()]
    (site_dir / "site-mood.toml").write_text(
        SITE_INSTRUMENT.replace('completed_by = "patient"', 'completed_by = "patient-diary"'))
    kinstruments._registry.cache_clear()
    assert "site-mood" not in [i.id for i in kinstruments.clinician_recorded()]
