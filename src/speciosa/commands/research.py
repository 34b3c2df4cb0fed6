"""``speciosa export research`` and ``speciosa analyze``: de-identified research data.

``speciosa export research --out DIR --purpose TEXT --researcher USERNAME [--key-env VAR]``
writes the de-identified tables of the consented patients (Parquet and CSV), the data
dictionary, the 42 CFR Part 2 notice, the de-identification report (k achieved, patients
suppressed or generalised, records left out) and a manifest into a new directory, and
records one audit entry naming the researcher who receives it (the entry's user), the
operating-system account that ran the command, what was exported and the purpose of use.
The site's research secret is read from ``SPECIOSA_RESEARCH_KEY`` (or the variable named
by ``--key-env``), else from the file ``SPECIOSA_RESEARCH_KEY_FILE`` (default
``$SPECIOSA_DATA_DIR/research-key``, which ``speciosa demo`` writes). The research page
(``/research/exports/``) makes the same export for the signed-in researcher, as a zip.

``speciosa analyze [--json] [--out DIR]`` fits the cohort models (exposure and prolactin;
prolactin and craving; prolactin and withdrawal) on the same de-identified data and prints
effect sizes with 95% confidence intervals, the numbers of patients and observations and a
plain statement of what the data can and cannot show; ``--out`` also writes the results as
JSON, a text report and one SVG plot per model.

Invalid input exits 2 with the reason on standard error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from speciosa.cli import UsageError


def register(subparsers: Any) -> None:
    """Add ``export research`` and ``analyze``."""
    from speciosa.commands.interop import export_subparsers

    p = export_subparsers(subparsers).add_parser(
        "research", help="de-identified research data set (consented patients only)",
        description="Write the de-identified, analysis-ready tables of the patients who "
        "consented to research (measured de-identification, k-anonymous; 42 CFR Part 2 "
        "notice) and audit the export with its recipient and purpose. The research secret "
        "comes from SPECIOSA_RESEARCH_KEY, else from the file SPECIOSA_RESEARCH_KEY_FILE "
        "(default $SPECIOSA_DATA_DIR/research-key; 'speciosa demo' writes one). A researcher "
        "can make the same export on the research page (/research/exports/), as a zip.")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="a new (or empty) directory for the export")
    p.add_argument("--purpose", required=True, metavar="TEXT",
                   help="purpose of use (e.g. the approved study), recorded in the audit trail")
    p.add_argument("--researcher", required=True, metavar="USERNAME",
                   help="the Speciosa account (researcher role) that receives the export; "
                   "recorded in the audit trail as the export's user")
    p.add_argument("--key-env", default="SPECIOSA_RESEARCH_KEY", metavar="VAR",
                   help="environment variable holding the site's research secret "
                   "(default: SPECIOSA_RESEARCH_KEY; when it is unset, the key file is read)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_export_research)

    a = subparsers.add_parser(
        "analyze", help="cohort analysis: exposure, prolactin, craving and withdrawal",
        description="Mixed-effects models (patient as random effect; sex and time in care as "
        "covariates) on the de-identified data of consented patients. Observational "
        "associations only; never a dose recommendation.")
    a.add_argument("--json", action="store_true", help="print the results as JSON")
    a.add_argument("--out", metavar="DIR", help="also write analysis.json, report.txt and SVG plots")
    a.set_defaults(func=cmd_analyze)


def _require_tables() -> None:
    """Refuse, with the fix, a database that has not been migrated."""
    from django.db import connection

    if "clinic_patient" not in connection.introspection.table_names():
        raise UsageError("the database has no Speciosa tables yet: run 'speciosa migrate' "
                         "(and 'speciosa demo' for the synthetic demo clinic)")


def _recipient(username: str):
    """The active researcher account named ``username``, or a usage error saying why not."""
    from django.contrib.auth import get_user_model

    from speciosa.clinic import access

    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise UsageError(f"--researcher: no account named {username!r}; give the username of "
                         "the researcher who receives the export")
    if not access.can_receive_research_export(user):
        raise UsageError(f"--researcher: {username!r} is not an active account with the "
                         "researcher role; research exports are made for researchers only")
    return user


def _deid_options():
    from speciosa.research import dataset

    try:
        return dataset.options_from_settings()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_export_research(args: argparse.Namespace) -> int:
    import getpass

    from speciosa.commands.server import setup_django
    from speciosa.research import deid

    purpose = (args.purpose or "").strip()
    if not purpose:
        raise UsageError("--purpose must not be empty: say what the data will be used for")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists and is not an empty directory; choose a new directory")
    setup_django()
    from django.conf import settings

    key_file = settings.RESEARCH_KEY_FILE if args.key_env == deid.KEY_ENV_DEFAULT else None
    try:
        key = deid.load_key(args.key_env, key_file=key_file)
    except deid.ResearchKeyError as exc:
        raise UsageError(str(exc)) from None
    _require_tables()
    from speciosa.research import dataset

    user = _recipient(args.researcher)
    try:
        ds = dataset.export_research(out, purpose=purpose, key=key, user=user,
                                     os_user=getpass.getuser(), options=_deid_options())
    except dataset.ConsentChanged as exc:  # nothing written; a new run leaves the patient out
        print(f"speciosa export research: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"out": str(out), "patients": ds.n_exported,
                          "patients_consented": ds.n_consented, "rows": ds.counts,
                          "purpose": purpose, "researcher": user.username,
                          "deidentification": ds.report}, indent=2))
    else:
        print(f"Wrote the de-identified research export of {ds.n_exported} of "
              f"{ds.n_consented} consented patients to {out}, for {user.username}:")
        for name, n in ds.counts.items():
            print(f"  {name:<15} {n:>7} rows  ({name}.parquet, {name}.csv)")
        print("  NOTICE.txt, data_dictionary.md, data_dictionary.json, deid_report.json, "
              "manifest.json")
        print(_deid_summary(ds.report))
        print("The export is recorded in the audit trail with its recipient and purpose. It "
              "is subject to 42 CFR Part 2: see NOTICE.txt.")
    return 0


def _deid_summary(report: dict[str, Any]) -> str:
    """Two lines on what de-identification did: k, generalisation, suppressed, left out."""
    k = report["k_anonymity"]
    patients = report["patients"]
    left = report["records_left_out"]
    generalised = ", ".join(f"{col}: {level}" for col, level in k["generalisation"].items()
                            if level != "kept")
    left_text = "; ".join(f"{reason}: " + ", ".join(f"{n} {kind}" for kind, n in kinds.items())
                          for reason, kinds in left.items() if kinds) or "none"
    return (f"k-anonymity: k = {k['k']} (required {k['k_required']}) on "
            f"{', '.join(k['quasi_identifiers'])}; {generalised}; "
            f"{patients['suppressed']} patients suppressed, "
            f"{patients['implausible_entry_or_birth_date']} with an implausible entry or birth "
            f"date left out.\nRecords left out: {left_text}.")


def cmd_analyze(args: argparse.Namespace) -> int:
    from speciosa.commands.server import setup_django
    from speciosa.research import deid

    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; --out needs a directory")
    key = None
    if os.environ.get(deid.KEY_ENV_DEFAULT):
        try:
            key = deid.load_key()
        except deid.ResearchKeyError as exc:
            raise UsageError(str(exc)) from None
    setup_django()
    _require_tables()
    import getpass

    from speciosa.clinic import writes
    from speciosa.clinic.models import AuditEntry
    from speciosa.research import analysis

    ds, result = analysis.run_cohort_analysis(key, options=_deid_options())
    writes.audit(None, AuditEntry.Action.VIEW, None, model="ResearchAnalysis",
                   reason="cohort analysis (speciosa analyze), de-identified data",
                   after={"purpose": "research: cohort analysis", "os_user": getpass.getuser(),
                          "cohort": result.cohort, "k": ds.report["k_anonymity"]["k"]})
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "analysis.json").write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
        (out / "report.txt").write_text(analysis.results_text(result) + "\n", encoding="utf-8")
        for m in result.models:
            (out / f"{m.name}.svg").write_text(analysis.scatter_svg(m), encoding="utf-8")
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(analysis.results_text(result))
        if out is not None:
            print(f"\nWrote analysis.json, report.txt and {len(result.models)} SVG plots to {out}.")
    return 0
