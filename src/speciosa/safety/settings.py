"""Named thresholds of the safety rules: defaults, units and where each default comes from.

A site can change any of them (``evaluate(..., settings={"name": value})``); an unknown
name is an error, so a typo never silently leaves the default in force. Defaults taken
from the literature cite it; defaults that are Speciosa's own design choices say so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from speciosa.knowledge import prolactin as kprolactin

__all__ = ["DEFAULT_SETTINGS", "SETTINGS", "Setting", "resolve_settings"]


@dataclass(frozen=True)
class Setting:
    """One named threshold.

    Attributes
    ----------
    name : str
        Stable name, with its unit in it (``..._ng_per_ml``, ``..._days``).
    default : int or float
    unit : str
    description : str
        What the threshold does.
    source : str
        Why the default is what it is.
    citations : tuple of str
        Evidence-registry ids behind the default (empty for a pure design choice).
    """

    name: str
    default: int | float
    unit: str
    description: str
    source: str
    citations: tuple[str, ...] = ()


SETTINGS: tuple[Setting, ...] = (
    # ---------------------------------------------------------------- prolactin
    Setting(
        "prolactin_very_high_ng_per_ml",
        kprolactin.DRUG_INDUCED_USUAL_MAX_NG_PER_ML,
        "ng/mL",
        "Prolactin above this is 'very high': drug-induced (including opioid) "
        "hyperprolactinaemia is usually below it.",
        "Vilar 2014: drug-induced hyperprolactinaemia is usually < 100 ng/mL "
        "(pharmacology.md §6.4); value from speciosa.knowledge.prolactin.",
        ("vilar-2014", "melmed-2011-endocrine-society"),
    ),
    Setting(
        "prolactin_prolactinoma_ng_per_ml",
        kprolactin.PROLACTINOMA_SUGGESTIVE_NG_PER_ML,
        "ng/mL",
        "Prolactin above this: prolactin-very-high asks for a prompt endocrinology referral "
        "and pituitary MRI (still a warning: prolactin has no critical value).",
        "Vilar 2014: > 200-250 ng/mL is highly suggestive of prolactinoma; JCEM 2023 work-up "
        "figure: > 250 ug/L with an overt syndrome -> prolactinoma, MRI (pharmacology.md §6.4); "
        "value from speciosa.knowledge.prolactin.",
        ("vilar-2014", "jcem-2023-prolactin-workup"),
    ),
    Setting(
        "prolactin_mild_uln_multiple",
        kprolactin.MILD_ELEVATION_MAX_FACTOR,
        "x ULN",
        "prolactin-high is 'info' below this multiple of the upper reference limit "
        "(repeat before labelling) and 'warning' at or above it.",
        "A single mildly raised value (< 2 x ULN) should be repeated before the patient is "
        "labelled (review quoted in pharmacology.md §6.6, software implications); "
        "secondary source; value from speciosa.knowledge.prolactin.",
        ("majumdar-mangal-2013", "melmed-2011-endocrine-society"),
    ),
    Setting(
        "prolactin_rise_fraction",
        0.5,
        "fraction",
        "prolactin-rising fires when the latest result is at least this fraction above the "
        "patient's first (baseline) result.",
        "Speciosa design default (50 %), named in the issue. No published threshold for a "
        "within-patient rise exists; prolactin is pulsatile and rises with sleep and stress, "
        "so smaller changes are within sampling noise.",
        ("sassin-1972", "levine-2018-stress-hyperprolactinemia"),
    ),
    Setting(
        "prolactin_monitoring_interval_days",
        365,
        "days",
        "A prolactin result older than this is out of date: the prolactin rules ignore it "
        "and prolactin-test-due asks for a new one in a regular kratom user.",
        "Speciosa design default. No guideline sets a monitoring interval for kratom users; "
        "the link rests on one case report and opioid class pharmacology.",
        ("labryer-2018", "jcem-1978-opiates-prolactin"),
    ),
    Setting(
        "prolactin_symptom_window_days",
        90,
        "days",
        "Symptoms linked to high prolactin count when reported within this many days; a "
        "symptomatic patient needs a prolactin within the same window.",
        "Speciosa design default (about one clinic review cycle).",
    ),
    Setting(
        "regular_use_days_per_28",
        14,
        "days",
        "Kratom taken on at least this many of the last 28 days is 'regular use'.",
        "Speciosa design default (every other day). Frequency of use, more than amount, "
        "predicted withdrawal and kratom use disorder in a US cohort (instruments.md §4.3).",
        ("rogers-2024-kratom-cohort",),
    ),
    Setting(
        "kratom_current_use_days",
        14,
        "days",
        "A dose within this many days counts as current kratom use (co-use, CYP3A "
        "interaction, pregnancy).",
        "About five mitragynine half-lives: the longest mean half-life after 15 daily doses "
        "was 67.9 h (Huestis 2024), 5 x 68 h = 14 days.",
        ("huestis-2024",),
    ),
    # ---------------------------------------------------------------- withdrawal
    Setting(
        "withdrawal_cows_moderate",
        13,
        "COWS points",
        "COWS total at or above this: moderate withdrawal (warning).",
        "COWS bands: 13-24 moderate (Wesson & Ling 2003; instruments.md §1.2).",
        ("wesson-2003-cows",),
    ),
    Setting(
        "withdrawal_cows_urgent",
        25,
        "COWS points",
        "COWS total at or above this: moderately severe or severe withdrawal (urgent).",
        "COWS bands: 25-36 moderately severe, > 36 severe (Wesson & Ling 2003).",
        ("wesson-2003-cows",),
    ),
    Setting(
        "withdrawal_recent_days",
        3,
        "days",
        "Only a COWS or SOWS completed within this many days is read (withdrawal changes "
        "within hours).",
        "Speciosa design default.",
    ),
    Setting(
        "sows_rise_points",
        10,
        "SOWS points",
        "A marked SOWS rise: the latest total at least this many points above the lowest "
        "SOWS of the baseline window.",
        "SOWS (0-64) has no validated bands. In a US kratom cohort SOWS was 13.5 (SD 11.9) "
        "(Rogers 2024), so 10 points is close to one standard deviation; Speciosa default.",
        ("handelsman-1987-sows", "rogers-2024-kratom-cohort"),
    ),
    Setting(
        "sows_moderate_points",
        32,
        "SOWS points",
        "A SOWS total at or above this raises withdrawal-moderate (warning), the patient's "
        "first SOWS included.",
        "Site convention, not a validated band: half the scale's maximum (16 items x 4 = 64). "
        "The SOWS has no validated severity bands (Handelsman 1987; instruments.md §2.1); in a "
        "US kratom cohort SOWS was 13.5 (SD 11.9) (Rogers 2024), so 32 is about 1.6 SD above "
        "that mean.",
        ("handelsman-1987-sows", "rogers-2024-kratom-cohort"),
    ),
    Setting(
        "sows_baseline_days",
        28,
        "days",
        "The SOWS baseline is the lowest total in this many days before the latest SOWS.",
        "Speciosa design default.",
    ),
    # ---------------------------------------------------------------- dose escalation
    Setting(
        "dose_escalation_fraction",
        0.5,
        "fraction",
        "dose-escalation fires when the last 14 days' kratom amount (same unit) or estimated "
        "mitragynine is at least this fraction above the 14 days before.",
        "Speciosa design default (50 %). Tolerance is reported by 87 % of regular users "
        "(Singh 2019), and liver injury appears weeks after starting or increasing use "
        "(Schimmel & Dart 2020).",
        ("singh-2019-kratom-dependence", "schimmel-dart-2020"),
    ),
    Setting(
        "dose_escalation_min_days",
        4,
        "days",
        "The earlier fortnight needs doses on at least this many days to serve as a "
        "comparison (otherwise starting or resuming use would read as escalation).",
        "Speciosa design default.",
    ),
    # ---------------------------------------------------------------- co-use
    Setting(
        "co_use_lookback_days",
        30,
        "days",
        "Reported substance use and positive urine screens count within this many days.",
        "Speciosa design default (one month).",
    ),
    Setting(
        "audit_c_valid_days",
        365,
        "days",
        "A positive AUDIT-C counts for this many days.",
        "Speciosa design default; AUDIT-C asks about usual drinking, not a single day.",
        ("bush-1998-auditc",),
    ),
    # ---------------------------------------------------------------- liver
    Setting(
        "liver_aminotransferase_uln_multiple",
        3.0,
        "x ULN",
        "ALT or AST at or above this multiple of the upper reference limit: raised, and with "
        "bilirubin above liver_bilirubin_uln_multiple a drug-induced liver injury criterion "
        "and the first half of Hy's law.",
        "Hy's law: ALT or AST >= 3 x ULN (FDA 2009); Aithal 2011's third criterion, ALT >= 3 "
        "x ULN with bilirubin > 2 x ULN (read from a secondary summary, care.md section 1).",
        ("fda-2009-dili-guidance", "aithal-2011-dili-criteria"),
    ),
    Setting(
        "liver_alt_dili_uln_multiple",
        5.0,
        "x ULN",
        "ALT (AST when no ALT was measured) at or above this multiple of the upper limit "
        "meets the drug-induced liver injury criteria on its own.",
        "Aithal 2011 case criteria: ALT >= 5 x ULN.",
        ("aithal-2011-dili-criteria",),
    ),
    Setting(
        "liver_alp_dili_uln_multiple",
        2.0,
        "x ULN",
        "ALP at or above this multiple of the upper limit meets the drug-induced liver injury "
        "criteria (kratom injury is mostly cholestatic or mixed); below it, Hy's law can apply.",
        "Aithal 2011 case criteria: ALP >= 2 x ULN; Hy's law excludes raised ALP (FDA 2009).",
        ("aithal-2011-dili-criteria", "fda-2009-dili-guidance", "schimmel-dart-2020"),
    ),
    Setting(
        "liver_samples_max_days_apart",
        7,
        "days",
        "Aminotransferase, bilirubin, ALP and INR count as one picture (Hy's law, the R ratio, "
        "the third criterion, INR with liver injury) only from samples at most this many days "
        "apart.",
        "Site convention (issue 13), not a published window: Hy's law means the values are "
        "raised together.",
    ),
    Setting(
        "liver_aminotransferase_urgent_uln_multiple",
        20.0,
        "x ULN",
        "ALT or AST at or above this multiple of the upper limit is urgent.",
        "Site convention (issue 13), not a published Speciosa reference.",
    ),
    Setting(
        "liver_inr_urgent",
        1.5,
        "ratio",
        "INR above this with liver injury is urgent.",
        "INR 1.5 is the cut of the DILIN and Expert Working Group severity scales "
        "(care.md section 1).",
        ("dili-severity-inr",),
    ),
    Setting(
        "liver_bilirubin_uln_multiple",
        2.0,
        "x ULN",
        "Total bilirubin above this multiple of the upper reference limit.",
        "FDA 2009 (Hy's law); Aithal 2011.",
        ("fda-2009-dili-guidance", "aithal-2011-dili-criteria"),
    ),
    Setting(
        "lab_recent_days",
        90,
        "days",
        "Liver tests older than this are not read.",
        "Speciosa design default; the kratom liver-injury window is about 1-7 weeks after "
        "starting or increasing use (pharmacology.md §8.1).",
        ("schimmel-dart-2020",),
    ),
    Setting(
        "symptom_recent_days",
        30,
        "days",
        "Reported dark urine, yellow eyes or skin, or itching counts within this many days.",
        "Speciosa design default.",
    ),
    # ---------------------------------------------------------------- others
    Setting(
        "qtc_warning_ms",
        450,
        "ms",
        "A recorded QTc at or above this raises qt-risk (warning).",
        "Krantz 2009 (methadone QTc screening): QTc over 450 to under 500 ms, discuss risks "
        "and benefits and monitor more often (care.md §5).",
        ("krantz-2009-methadone-qtc",),
    ),
    Setting(
        "qtc_urgent_ms",
        500,
        "ms",
        "A recorded QTc at or above this makes qt-risk urgent.",
        "Krantz 2009: QTc over 500 ms, consider reducing or stopping methadone, removing "
        "contributors or changing drug (care.md §5).",
        ("krantz-2009-methadone-qtc",),
    ),
    Setting(
        "qtc_recent_days",
        365,
        "days",
        "A QTc older than this is not read.",
        "Speciosa design default: Krantz 2009 advises a yearly ECG in methadone treatment.",
        ("krantz-2009-methadone-qtc",),
    ),
    Setting(
        "methadone_confirm_above_mg",
        100,
        "mg/day",
        "A methadone treatment episode with a daily dose above this needs the clinician to "
        "confirm the dose before it is stored (a check against typing errors and a prompt, "
        "not a maximum dose).",
        "Site convention (Speciosa design default): 100 mg/day is the dose above which "
        "Krantz 2009 advises an ECG (care.md §5); it is not a published maximum. A site sets "
        "its own.",
        ("krantz-2009-methadone-qtc",),
    ),
    Setting(
        "hcg_positive_valid_days",
        280,
        "days",
        "A positive hCG counts as a current pregnancy for this many days unless a later "
        "hCG is negative.",
        "Length of a pregnancy (40 weeks); Speciosa design default.",
    ),
    Setting(
        "phq9_recent_days",
        14,
        "days",
        "A PHQ-9 completed within this many days is read.",
        "The PHQ-9 asks about the last 2 weeks (Kroenke 2001).",
        ("kroenke-2001-phq9",),
    ),
    Setting(
        "gad7_recent_days",
        14,
        "days",
        "A GAD-7 completed within this many days is read.",
        "The GAD-7 asks about the last 2 weeks (Spitzer 2006).",
        ("spitzer-2006-gad7",),
    ),
    Setting(
        "seizure_recent_days",
        14,
        "days",
        "A seizure reported within this many days raises an urgent finding.",
        "Speciosa design default.",
    ),
    Setting(
        "diary_gap_days",
        7,
        "days",
        "diary-missed fires after this many days without a diary entry.",
        "Named in the issue; Speciosa design default.",
    ),
    Setting(
        "diary_usual_days_per_28",
        20,
        "days",
        "A patient 'usually writes' the diary with entries on at least this many of the 28 "
        "days before the gap.",
        "Speciosa design default (5 days a week).",
    ),
)

#: Setting name -> default value (read-only).
DEFAULT_SETTINGS: Mapping[str, int | float] = MappingProxyType(
    {s.name: s.default for s in SETTINGS}
)


def resolve_settings(overrides: Mapping[str, float | int] | None) -> Mapping[str, float | int]:
    """Merge a site's overrides onto the defaults.

    Parameters
    ----------
    overrides : Mapping or None

    Returns
    -------
    Mapping
        Every setting, with overrides applied.

    Raises
    ------
    ValueError
        For an unknown setting name, or a value that is not a positive number.
    """
    if overrides is None or overrides is DEFAULT_SETTINGS:
        return DEFAULT_SETTINGS
    unknown = sorted(set(overrides) - DEFAULT_SETTINGS.keys())
    if unknown:
        raise ValueError(
            f"unknown safety setting {unknown[0]!r}; known settings: {', '.join(DEFAULT_SETTINGS)}"
        )
    for name, value in overrides.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"safety setting {name!r} must be a positive number, got {value!r}")
    merged = dict(DEFAULT_SETTINGS)
    merged.update(overrides)
    return merged
