"""``speciosa export fhir`` and ``speciosa import fhir``.

``speciosa export fhir --out DIR --purpose TEXT [--patient IDENTIFIER] [--site NAME]`` writes
FHIR Bulk Data NDJSON (one ``<Type>.ndjson`` file per resource type) for every patient, or one,
and records the export with its purpose of use in the audit trail.

``speciosa import fhir PATH [--site NAME] [--create-patients [--care-team NAME]]`` loads
labs, questionnaire responses, medication statements and requests and notes from a Bundle (``.json``), an NDJSON
file or a folder of them, matching patients on identifier system and value for the systems
the site trusts (demographics must agree). A file with a bad resource stores nothing; each problem is
printed on stderr with its file, line and reason, and the command exits 2.

Other modules add their own ``export``/``import`` formats with :func:`export_subparsers` /
:func:`import_subparsers`, which create the shared ``export``/``import`` command on first use
whatever the order of ``COMMAND_MODULES``::

    from speciosa.commands.interop import export_subparsers

    def register(subparsers):
        p = export_subparsers(subparsers).add_parser("research", help="...")
        p.set_defaults(func=cmd_export_research)
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from speciosa.cli import UsageError


def _group(subparsers: Any, name: str, help_text: str) -> Any:
    groups = subparsers.__dict__.setdefault("_speciosa_groups", {})
    if name not in groups:
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
        parser.set_defaults(func=lambda args, _p=parser: (_p.print_help(), 2)[1])
        groups[name] = parser.add_subparsers(dest=f"{name}_format", metavar="FORMAT")
    return groups[name]


def export_subparsers(subparsers: Any) -> Any:
    """The sub-subparsers of ``speciosa export`` (created on first call)."""
    return _group(subparsers, "export", "export data (FHIR, research datasets)")


def import_subparsers(subparsers: Any) -> Any:
    """The sub-subparsers of ``speciosa import`` (created on first call)."""
    return _group(subparsers, "import", "import data from another system")


def register(subparsers: Any) -> None:
    """Add ``export fhir`` and ``import fhir``."""
    p = export_subparsers(subparsers).add_parser(
        "fhir", help="FHIR R4 Bulk Data NDJSON, one file per resource type",
        description="Write FHIR R4 (4.0.1) NDJSON files, one per resource type, "
        "for every patient or one (--patient).")
    p.add_argument("--out", required=True, help="folder to write the .ndjson files into")
    p.add_argument("--purpose", required=True, metavar="TEXT",
                   help="purpose of use (e.g. 'transfer of care to Dr X'), recorded in the audit trail")
    p.add_argument("--patient", help="only the patient with this medical record number")
    p.add_argument("--site", help="the patient's site, when the number is used at several")
    p.add_argument("--recipient", metavar="NAME",
                   help="another party the files are for: only patients with a 42 CFR Part 2 "
                   "consent in force naming NAME are exported, each disclosure audited")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.set_defaults(func=cmd_export_fhir)

    p = import_subparsers(subparsers).add_parser(
        "fhir", help="labs, questionnaire responses, medications and notes",
        description="Import a FHIR Bundle, an NDJSON file or a folder of NDJSON files. "
        "All or nothing per file; importing the same file again changes nothing.")
    p.add_argument("path", help="Bundle .json, .ndjson file or folder")
    p.add_argument("--site", help="match patient identifiers at this site only")
    p.add_argument("--create-patients", action="store_true",
                   help="seeding a new installation: create the patients of Patient resources "
                   "whose trusted identifier matches nobody at --site (never the default)")
    p.add_argument("--care-team", metavar="NAME",
                   help="the care team created patients join (default: the site's only one)")
    p.add_argument("--per-resource", action="store_true",
                   help="store the resources of a file that have no problem and report the "
                   "others (default: a file with any problem stores nothing; a patient "
                   "mismatch always refuses the whole file)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_import_fhir)


def _site(name: str | None):
    if not name:
        return None
    from speciosa.clinic.models import Site

    try:
        return Site.objects.get(name=name)
    except Site.DoesNotExist:
        known = ", ".join(Site.objects.order_by("name").values_list("name", flat=True))
        raise UsageError(f"no site named {name!r}; sites: {known or 'none'}") from None


def _audit_export(args: argparse.Namespace, patients, counts: dict) -> None:
    """One audit entry per export: who (the operating-system account), when, why, what."""
    import getpass

    from speciosa.clinic.models import AuditEntry

    purpose = args.purpose.strip()
    one = patients.first() if args.patient else None
    AuditEntry.objects.create(
        user=None, action=AuditEntry.Action.EXPORT, model="fhir-bulk", patient=one,
        reason=f"purpose of use: {purpose}"[:500],
        after={"kind": "fhir", "purpose": purpose[:300], "os_user": getpass.getuser(),
               "site": args.site or "", "patient": args.patient or "", "counts": counts})


def cmd_export_fhir(args: argparse.Namespace) -> int:
    from speciosa.commands.server import setup_django

    setup_django()
    from speciosa.clinic.models import Patient
    from speciosa.interop.export import Exporter, write_ndjson

    if not (args.purpose or "").strip():
        raise UsageError("--purpose must not be empty: say what the export is for")
    patients = None
    if args.patient:
        qs = Patient.objects.filter(identifier=args.patient)
        site = _site(args.site)
        if site is not None:
            qs = qs.filter(site=site)
        n = qs.count()
        if n == 0:
            raise UsageError(f"no patient with the medical record number {args.patient!r}")
        if n > 1:
            raise UsageError(f"{n} patients have the number {args.patient!r}; add --site NAME")
        patients = qs
    elif args.site:
        patients = Patient.objects.filter(site=_site(args.site))
    recipient = " ".join((getattr(args, "recipient", None) or "").split())
    if recipient:
        from speciosa.clinic import consents

        scope = patients if patients is not None else Patient.objects.all()
        ids = list(scope.values_list("pk", flat=True))
        found = consents.part2_in_force(ids, recipient)
        if not found:
            raise UsageError(consents.no_consent_message(recipient, max(len(ids), 1)))
        patients = Patient.objects.filter(pk__in=sorted(found))
    started = time.perf_counter()
    try:
        counts = write_ndjson(args.out, Exporter(patients))
    except OSError as exc:
        raise UsageError(f"cannot write to {args.out}: {exc.strerror or exc}") from None
    seconds = time.perf_counter() - started
    total = sum(counts.values())
    _audit_export(args, patients, counts)
    if recipient:  # one entry per patient disclosed (the accounting of disclosures)
        consents.disclose(None, sorted(found), recipient=recipient, purpose=args.purpose.strip(),
                          what="fhir-bulk", detail={"withheld": len(ids) - len(found)})
    if args.json:
        print(json.dumps({"out": str(args.out), "counts": counts, "total": total,
                          "seconds": round(seconds, 3)}))
    else:
        for rtype, n in counts.items():
            print(f"{rtype + '.ndjson':<28} {n:>9}")
        print(f"{total} resources in {seconds:.1f} s -> {args.out}")
    return 0


def cmd_import_fhir(args: argparse.Namespace) -> int:
    from speciosa.commands.server import setup_django

    setup_django()
    from speciosa.interop.importer import ImportError_, import_fhir

    site = _site(args.site)
    team = None
    if args.create_patients and site is None:
        raise UsageError("--create-patients needs --site NAME: the site the patients join")
    if args.care_team:
        from speciosa.clinic.models import CareTeam

        teams = CareTeam.objects.filter(name=args.care_team)
        if site is not None:
            teams = teams.filter(site=site)
        found = list(teams[:2])
        if len(found) != 1:
            raise UsageError(f"{'no' if not found else 'more than one'} care team named "
                             f"{args.care_team!r}{' at ' + site.name if site else ''}")
        team = found[0]
    try:
        report = import_fhir(args.path, site=site, create_patients=args.create_patients,
                             care_team=team, per_resource=args.per_resource)
    except ImportError_ as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps({"ok": report.ok, "files": [
            {"file": f.file, "stored": f.stored, "created": dict(f.created), "unchanged": f.unchanged,
             "skipped": dict(f.skipped),
             "problems": [{"line": p.line, "resource": p.resource, "message": p.message,
                           "refuses_file": p.fatal} for p in f.problems],
             "warnings": [{"line": w.line, "resource": w.resource, "message": w.message}
                          for w in f.warnings]}
            for f in report.files]}))
    else:
        for f in report.files:
            if f.stored:
                made = ", ".join(f"{n} {m}" for m, n in sorted(f.created.items())) or "nothing new"
                refused = f"; {len(f.problems)} resource(s) refused" if f.problems else ""
                print(f"{f.file}: stored {made}; {f.unchanged} already imported{refused}")
                for w in f.warnings:
                    print(f"  warning: {w}")
            else:
                print(f"{f.file}: NOT stored ({len(f.problems)} problem(s))")
    if not report.ok:
        lines = [str(p) for p in report.problems]
        shown = "\n  ".join(lines[:50]) + (f"\n  ... and {len(lines) - 50} more"
                                           if len(lines) > 50 else "")
        what = ("the resources below were refused (the others were stored, --per-resource)"
                if all(f.stored for f in report.files) else
                "files with problems were not stored" if not args.per_resource else
                "problems (a file with a patient mismatch was not stored at all)")
        raise UsageError(f"{what}:\n  {shown}")
    return 0
