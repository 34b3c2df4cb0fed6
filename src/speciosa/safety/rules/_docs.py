"""``docs/rules.md``, written from the registry (``speciosa rules --markdown``).

The rules' sections come from their declarations and docstrings, the settings table from
:mod:`speciosa.safety.settings`; only the framing prose is kept here. A test fails when the
checked-in ``docs/rules.md`` differs from :func:`markdown`.
"""

from __future__ import annotations

from collections.abc import Iterable

from speciosa.knowledge import evidence as kevidence
from speciosa.safety.rules._registry import Rule, unit_of
from speciosa.safety.settings import DEFAULT_SETTINGS, SETTINGS

_HEAD = """\
# Safety rules (`speciosa.safety`)

<!-- Generated from the rule registry by `speciosa rules --markdown > docs/rules.md`; edit the
rules' declarations and docstrings (src/speciosa/safety/rules/), not this file. -->

Pure functions from a patient's [timeline](timeline.md) and an "as of" time to
**findings** for the supervising clinician. Each rule has a stable id, a topic, a severity
(`info`, `warning`, `urgent`), a message that says how strong the evidence is, the data that
triggered it (`evidence`), a next step phrased as a consideration (never a kratom dose) and
citations from the evidence registry (`speciosa claims`; every id resolves, checked by
`tests/safety`). Thresholds are named settings with defaults a site can change. Speciosa is
not a medical device: the findings support a clinician's decisions.

```
speciosa rules [--json | --markdown]            # every rule, its settings, windows and citations
speciosa evaluate TIMELINE.json [--as-of TIME] [--set NAME=VALUE] [--json]
```

```python
from speciosa.safety import evaluate, RULES, DEFAULT_SETTINGS
findings = evaluate(timeline, as_of, settings={"prolactin_very_high_ng_per_ml": 80})
```

`evaluate` returns findings urgent first (then warning, info; rule order within a
severity). An unknown setting name or a value that is not a positive number raises
`ValueError`. Only data at or before `as_of` is read. "Within N days" means from local
midnight of the calendar day N days before `as_of`, in the timeline's zone.

## Science first

- **Kratom and prolactin.** The direction is *up*, but the kratom-specific evidence is one
  de-challenge case report (LaBryer 2018: 24 ng/mL with a ULN of 12 during use, 6 ng/mL two
  months after stopping) plus opioid class pharmacology (mu agonists suppress
  tuberoinfundibular dopamine: JCEM 1978, Delitala 1983, Bowen 2002). No controlled study
  exists. Prolactin messages say exactly this, list the common other causes and name any
  current prolactin-raising medicine (`speciosa.knowledge.prolactin`). No rule claims kratom
  *lowers* prolactin or that prolactin drives craving (pharmacology.md, claims 1-2).
- **Pregnancy and breastfeeding** raise prolactin physiologically and the guideline advises
  against routine measurement in pregnancy (Melmed 2011), so the prolactin rules are not
  applied then. What counts for a result is the state **at the sample**: a prolactin
  taken in pregnancy, while breastfeeding, after a positive hCG, or possibly in pregnancy
  (a lab result's `sample_state`, `speciosa.clinic.pregnancy`) is neither the baseline nor
  the latest value these rules read, after the birth too. Pregnancy or breastfeeding
  recorded for a male patient is a contradiction in the record: the rules still apply and
  the interpretation says to check the record; hCG in a man is not read as pregnancy.
- **Reference ranges**: the reporting laboratory's upper limit when the result carries one
  (pharmacology.md §6.1), else the catalogue's adult range for the patient's sex
  (`speciosa.knowledge.labs`, Mayo Clinic Laboratories); with the sex unknown, the higher
  of the two limits, so nothing is called high that is normal for either sex.
- **Instruments** are scored by the one scorer (`speciosa.knowledge.instruments`); bands and
  flags (COWS bands, AUDIT-C sex-specific cut-off, PHQ-9 item 9) are read from the
  definitions, not copied.
- **Defaults that are Speciosa's own design choices** (windows, the 50 % rises) say so
  in the settings table; they are settings precisely because the literature does not fix
  them.

## Declaring a rule

A rule is one function in the module of its clinical area (`src/speciosa/safety/rules/`),
declared once with everything known about it:

```python
from speciosa.safety.rules._context import Context
from speciosa.safety.rules._registry import Found, assessments, last_dose, rule

@rule(
    "SAF-EXAMPLE",                       # stable id: alerts are keyed on it
    topic="example-topic",               # one rule per topic
    severity="warning",                  # the highest severity it can find
    settings=("phq9_recent_days",),      # every setting it reads (speciosa.safety.settings)
    windows=(assessments("phq9", "phq9_recent_days"), last_dose()),  # all it reads
    citations=("kroenke-2001-phq9",),    # evidence-registry ids
)
def example(ctx: Context) -> Found | None:
    \"\"\"One paragraph for `speciosa rules`; {phq9_recent_days} is filled in.

    Further paragraphs: when it fires and on what evidence, for this file.
    \"\"\"
    rows = ctx.assessments("phq9", ctx.settings["phq9_recent_days"])
    ...
    return Found("warning", message, evidence, next_step)   # id, topic, citations added
```

The sweep loads only the union of the declared windows (`speciosa.safety.data_windows`,
used by `speciosa.clinic.alerts.lookback`), so a rule reads the timeline only through the
`Context` methods, inside its windows; `tests/safety/test_registry.py` replays every rule
through a recording context on generated timelines to check it. A new area module is added
to `speciosa.safety.rules.AREAS`, which also orders rules of the same severity.
"""

_TAIL = """\
## Changes

Each rule has a **version** (above), raised when what it finds changes; every alert stores
the version and the values of the settings that produced it, and the settings in force are
on the page `/safety-settings/` (administrators change them there, with a reason, audited).

Issue 13:

- Alerts no longer close themselves when a rule stops firing: the alert stays open, shows
  "no longer firing since ...", and only a clinician resolves it, with a reason.
- `SAF-SUICIDE` version 2: the latest PHQ-9 stored as a total only (or without item 9)
  raises an **info** finding that item 9 is unknown and should be asked (version 1 was
  silent).
- New `SAF-DEPRESSION-SEVERE` (PHQ-9 total 20-27) and `SAF-ANXIETY-SEVERE` (GAD-7 total
  15-21), bands read from the instrument definitions, whatever item 9 says. Version 2
  (adversarial pass): a response with items left unanswered (an imported in-progress
  PHQ-9 whose item 9 the patient skipped) has no total and raised nothing even at 24
  points; it now raises the finding when the least total it can have is in the band, saying
  "at least" and which items are unanswered.
- `SAF-WD-MOD` version 2: a SOWS at or above `sows_moderate_points` (default 32, half the
  scale's maximum: a site convention, not a validated band) raises the finding, the first
  SOWS included, besides the existing rise rule. Version 3 (adversarial pass): a COWS or
  SOWS with items left unanswered (an imported in-progress response) has no total and raised
  nothing; the least total it can have is now read against the thresholds ("COWS at least
  26 ... item(s) unanswered").
- Lab values reach every rule as one canonical value with one range in the same unit
  (a result entered in umol/L, ukat/L or mIU/L used to be read against the catalogue range as
  if that range were in the entered unit); the reporting laboratory's range, a prolactin
  assay factor and comparators (`<5`) are read when given.
- `SAF-LIVER` version 2: the drug-induced liver injury criteria of Aithal 2011 (ALT at least
  5 x ULN; **ALP at least 2 x ULN**, so a cholestatic injury such as ALP 5 x ULN is found;
  ALT or AST at least 3 x ULN with bilirubin above 2 x ULN, sampled at most
  `liver_samples_max_days_apart` days apart), the R ratio pattern (hepatocellular, mixed,
  cholestatic), **Hy's law only from concurrent samples with ALP below 2 x ULN** (version 1
  called any raised aminotransferase with any raised bilirubin of the last 90 days Hy's law,
  without ALP); urgent also for ALT or AST at least 20 x ULN and INR above 1.5 with liver
  injury; itching joins dark urine and yellow eyes (itching alone: info). Thresholds are now
  "at least" (version 1: "above") for aminotransferases and ALP. Version 3 (adversarial
  pass): the INR makes liver injury urgent only when sampled at most
  `liver_samples_max_days_apart` days from one of the liver tests it is read with (an INR of
  two months before today's ALT used to make it urgent); an INR above 1.5 measured apart is
  named and asked to be repeated.
- `SAF-DDI-CYP3A` version 2: methadone and buprenorphine (CYP3A substrates in the FDA table
  that are opioids) are considered (info), brand names and strengths included.
- New `SAF-QT` (`qt-risk`): current kratom use with a QT-prolonging medication (known risk;
  methadone first), or a recorded QTc at or above `qtc_warning_ms` (450; urgent from
  `qtc_urgent_ms`, 500; Krantz 2009), with the references' ECG advice. The QTc is the lab
  code `qtc` (ms). Version 3 (adversarial pass): a QTc reported as an upper bound
  (`< 460 ms`) was read as at least its value (a warning); it now meets no threshold.
- New `SAF-7OH-PRODUCT` (`potent-7oh-product`): a 7-OH product in a dose's product name, the
  medication list or reported use (FDA 2025 recommendation); the exposure model does not
  cover direct 7-OH intake. Version 2: a dose recorded in the unit `mg_7oh` (mg of 7-OH from
  a 7-OH product's label: diary form, API, FHIR import, `speciosa evaluate`) fires too. Such
  a dose is kratom use for every rule (current use, co-use, pregnancy, days with kratom) and
  is shown apart from leaf doses; it is never converted to mitragynine (the exposure
  estimate lists it as not included).
- `SAF-PRL-VHIGH` version 2: a prolactin above `prolactin_prolactinoma_ng_per_ml` (250
  ng/mL) is a **warning** asking for a prompt endocrinology referral and pituitary MRI, not
  urgent same-day care (version 1 was urgent). Prolactin has no critical value anywhere: the
  flag stored with a result is at most `high` (it used to be `critical` above 250 ng/mL).
- Prolactin in pregnancy or breastfeeding: the stored flag is empty ("not flagged: the
  non-pregnant reference range does not apply") and the interpretation (`speciosa
  interpret --pregnant/--breastfeeding`, the PDF report) says so and stops: nothing about
  confirming hyperprolactinaemia, macroprolactin, prolactinoma or MRI. The prolactin rules
  were already not applied then.
- The state at the sample, not today's (prolactin results keep `sample_state`, with a note
  in words, shown on the patient page, in the PDF and the API; `speciosa evaluate` reads
  `sample_state` on a prolactin): a sample taken on or after the day pregnancy
  (`pregnant_since`, default the day it is recorded) or breastfeeding was known is taken
  in pregnancy (or while breastfeeding) and stays so after the box is unticked; one taken
  in the `hcg_positive_valid_days` (280) before that day, or before a positive hCG with no
  negative hCG in between, is *possibly taken in pregnancy*, not flagged, and says to
  check the dates; one after a positive hCG (no box ticked) is taken after a positive hCG.
  Recording pregnancy, breastfeeding or an hCG (or correcting one) reads the patient's
  samples again; each change is audited and the rules run again. A pregnancy test is
  recorded as positive or negative (urine hCG, LOINC 2106-3); a quantitative hCG counts
  only above the reporting laboratory's upper limit (the catalogue has no hCG cut-off).
  hCG in a male patient is a tumour marker, never pregnancy.
- Help for the patient in the moment (not a rule, and no alert waits for it): a diary that
  reports a seizure, dark urine or yellow eyes, or oversedation or slow breathing shows at
  once (after saving, and already on a page that asks a question before saving, such as an
  unusual dose; the API's answer carries it as `urgent_help`) the emergency number, the
  crisis line and how to reach the clinic
  (`speciosa.clinic.crisis`; site settings with US defaults 911 and 988,
  `docs/configuration.md`); the side-effect checklist gains oversedation or slow breathing,
  confusion, palpitations or chest pain. These symptoms are urgent flags of the checklist;
  `SAF-SEIZURE` and `SAF-LIVER` read the seizure and liver symptoms and raise the
  clinician's alert as before.
- Re-measuring prolactin after stopping kratom: no sooner than about five half-lives of
  mitragynine after repeated doses (the pharmacology model's 67.9 h, Huestis 2024: about 14
  days, two weeks or more), and only within a supervised taper, because stopping brings
  withdrawal; the "about 3 days after stopping" of the guideline summaries is for other drugs.

Issue 19:

- Treatment episodes of medication for opioid use disorder (buprenorphine, methadone,
  naltrexone: `speciosa.clinic.treatment`, docs/medications.md) reach the rules as current
  medications of their drug while the episode is on: the sedative co-use rule
  (`SAF-COUSE-SED`: buprenorphine and methadone are opioids), the CYP3A rule
  (`SAF-DDI-CYP3A`: both are CYP3A substrates), `SAF-QT` (methadone) and the new rule below
  read them without a medication-list entry being typed as well.
- New `SAF-NALTREXONE-KRATOM` (`naltrexone-kratom`, warning): kratom use in the last
  `kratom_current_use_days` while on naltrexone (a treatment episode or the medication list)
  needs review: the blocked effect, precipitated withdrawal, and the overdose risk when
  naltrexone stops, is missed or wears off (lost tolerance; evidence from other opioids).
- New setting `methadone_confirm_above_mg` (100 mg/day, a site convention: the dose above
  which Krantz 2009 advises an ECG, not a maximum): a methadone episode above it needs the
  clinician's confirmation before it is stored.

## Drug lists

The co-use and CYP3A rules, and the prolactin rules' list of prolactin-raising medicines,
look medication and substance names up in the one drug knowledge table,
`speciosa.knowledge.drugs` (documented in `docs/drugs.md`): word by word,
case-insensitively, with strengths and forms ignored (`"Xanax 1 mg"` is alprazolam,
`"Oxycodone 5 mg"` is oxycodone); class names such as `benzodiazepine` or `opioid` match
substances reported by class. Until the table, `speciosa.safety.drugs` and the prolactin
interpretation kept two opioid lists 17 names apart. What changed with the table:

- Brand names are recognised (Xanax, Klonopin, Subutex, Suboxone, Dolophine, OxyContin,
  Percocet, Neurontin, Lyrica...); a combination brand gives each ingredient.
- 7-hydroxymitragynine (7-OH) is an opioid: a reported 7-OH product with current kratom
  use raises the co-use finding. Naltrexone and naloxone are antagonists, not opioids.
- CYP3A: the FDA lists midazolam and triazolam as sensitive index substrates, not as
  narrow-therapeutic-range substrates; they still raise a warning (the index substrates,
  and midazolam is the drug kratom was shown to raise). Everolimus, which the old
  narrow-margin list held, is an FDA sensitive substrate without a narrow-range listing:
  it now gives info, not warning. Oxycodone keeps its warning through its label's boxed
  warning on CYP3A4 inhibitors. Methadone and buprenorphine are CYP3A substrates in the
  table; this rule does not consider them yet.
- Prolactin: every full mu-opioid agonist of the opioid list (tapentadol, oxymorphone,
  levorphanol, sufentanil...) is prolactin-raising, as the claim `opioids-raise-prolactin`
  states for mu agonists; buprenorphine (partial agonist) and the antagonists are not.
- A name the table does not know is reported as not classified by
  `speciosa.knowledge.drugs.classify` (`unknown`).

## Cost

Rules never scan the whole history: lists are sorted once when the timeline is built, each
rule bisects to its window, and only the first and latest prolactin are converted. A
year-long daily timeline (1,095 doses, 157 assessments, 48 labs, 365 diary days) evaluates
in about 0.14-0.2 ms, and building the `Timeline` (sorting, indexes) adds about 0.1 ms, on
the 2-core development machine (best of repeated runs; `tests/safety/test_safety_speed.py`,
run with `-s` to see the number). The mitragynine estimate is computed only when it can
differ from the amount (mixed units or products) or when the escalation rule fires.
"""


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _cites(ids: Iterable[str]) -> str:
    out = []
    for i in ids:
        try:
            ref = kevidence.resolve(i)
        except KeyError:
            out.append(f"`{i}`")
            continue
        label = ref.short() if isinstance(ref, kevidence.Citation) else f"claim: {ref.statement}"
        out.append(f"`{i}` ({_cell(label)})")
    return "; ".join(out) if out else "—"


def _rule_section(r: Rule) -> str:
    lines = [f"### `{r.id}` — `{r.topic}` ({r.severity})", "", r.description, ""]
    details = r.details()
    if details:
        lines += [" ".join(p.split()) + "\n" for p in details.split("\n\n")]
    lines.append(f"- **Area**: `speciosa.safety.rules.{r.area}`; **version** {r.version}")
    lines.append("- **Reads**:")
    lines += [f"  - {w.describe()}" for w in r.windows]
    if r.settings:
        shown = ", ".join(f"`{n}` = {DEFAULT_SETTINGS[n]:g} {unit_of(n)}" for n in r.settings)
        lines.append(f"- **Settings**: {shown}")
    lines.append(f"- **Evidence**: {_cites(r.citations)}")
    return "\n".join(lines) + "\n"


def markdown(rules: Iterable[Rule]) -> str:
    """``docs/rules.md`` for these rules (normally :data:`speciosa.safety.rules.RULES`)."""
    rules = tuple(rules)
    parts = [_HEAD, "## Rules\n",
             "| id | topic | highest severity | area | description |",
             "|---|---|---|---|---|"]
    for r in rules:
        parts.append(f"| [`{r.id}`](#{_anchor(r)}) | `{r.topic}` | {r.severity} | "
                     f"`{r.area}` | {_cell(r.description)} |")
    parts.append("\nSeverity of a rule (`speciosa rules`) is the highest its findings can have; "
                 "each rule's text gives the lower levels.\n")
    for r in rules:
        parts.append(_rule_section(r))
    parts += [
        "## Settings\n",
        "Each is a name a site can change (`evaluate(..., settings=...)`, `--set NAME=VALUE`, "
        "the\nDjango site settings). `speciosa rules --json` lists them with the same text.\n",
        "| setting | default | unit | what it does | why this default | evidence |",
        "|---|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        cites = ", ".join(s.citations) if s.citations else "—"
        parts.append(f"| `{s.name}` | {s.default:g} | {s.unit} | {_cell(s.description)} | "
                     f"{_cell(s.source)} | {cites} |")
    parts.append("")
    parts.append(_TAIL)
    return "\n".join(parts)


def _anchor(r: Rule) -> str:
    """The GitHub anchor of a rule's heading."""
    text = f"{r.id} — {r.topic} ({r.severity})".lower()
    return "".join(c for c in text.replace(" ", "-") if c.isalnum() or c in "-_")
