"""``speciosa interpret``, ``claims`` and ``drugs``: lab interpretation, the evidence registry
and the drug table.

``speciosa interpret LAB VALUE UNIT --sex {female,male} [--pregnant] [--breastfeeding]
[--medication NAME]... [--symptom NAME]... [--recent-lab LAB VALUE UNIT]...
[--reference LOW HIGH] [--iu-factor F] [--json]`` converts the value to the canonical unit,
flags it against the reference range and, for prolactin, lists the cited considerations. With
``--pregnant`` or ``--breastfeeding`` a prolactin is not flagged (the non-pregnant range does
not apply) and the interpretation stops after saying so.

``speciosa claims [--source {article,speciosa}] [--json]`` prints the evidence registry:
claims with verdicts, and the citations they rest on.

``speciosa drugs NAME... [--json]`` shows what the drug knowledge table makes of each
medication or substance name (ingredients, classes, or "not classified");
``speciosa drugs --markdown`` prints ``docs/drugs.md``.

Invalid input exits 2 with the reason on standard error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from speciosa.cli import UsageError
from speciosa.knowledge import drugs, evidence, labs, prolactin


def register(subparsers: Any) -> None:
    """Add the ``interpret``, ``claims`` and ``drugs`` subcommands."""
    p = subparsers.add_parser(
        "interpret",
        help="interpret a lab value (prolactin in full; other labs: range and flag)",
        description="Convert a lab value to its canonical unit, flag it against the adult "
        "reference range and, for prolactin, list the considerations with citations. "
        + prolactin.DISCLAIMER,
    )
    p.add_argument("lab", help="lab code, e.g. prolactin, testosterone, tsh, alt")
    p.add_argument("value", help="the value as reported")
    p.add_argument("unit", help="UCUM unit, e.g. ng/mL, m[IU]/L (mIU/L), nmol/L")
    p.add_argument("--sex", required=True, choices=labs.SEXES)
    p.add_argument(
        "--pregnant",
        action="store_true",
        help="prolactin: the patient is pregnant (the non-pregnant range does not apply)",
    )
    p.add_argument(
        "--breastfeeding",
        action="store_true",
        help="prolactin: the patient is breastfeeding (the non-pregnant range does not apply)",
    )
    p.add_argument(
        "--medication",
        action="append",
        default=[],
        metavar="NAME",
        help="a current medication or substance (repeat), e.g. kratom, risperidone",
    )
    p.add_argument(
        "--symptom",
        action="append",
        default=[],
        metavar="NAME",
        help="a reported symptom (repeat), e.g. headache",
    )
    p.add_argument(
        "--recent-lab",
        action="append",
        default=[],
        nargs=3,
        metavar=("LAB", "VALUE", "UNIT"),
        help="a recent result used by the interpretation (tsh, creatinine, egfr)",
    )
    p.add_argument(
        "--reference",
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="the reporting laboratory's range in the canonical unit",
    )
    p.add_argument(
        "--iu-factor",
        metavar="F",
        help="prolactin: the laboratory's mIU/L per ng/mL factor (default 21.2, assay-specific)",
    )
    p.add_argument("--json", action="store_true", help="print JSON for programs")
    p.set_defaults(func=cmd_interpret)

    c = subparsers.add_parser(
        "claims",
        help="print the evidence registry (claims with verdicts, citations)",
        description="The evidence registry: the source article's claims and Speciosa's own "
        "statements, each with a verdict and the citations it rests on.",
    )
    c.add_argument("--source", choices=("article", "speciosa"), help="only claims from here")
    c.add_argument("--json", action="store_true", help="print JSON for programs")
    c.set_defaults(func=cmd_claims)

    d = subparsers.add_parser(
        "drugs",
        help="classify medication or substance names with the drug table",
        description="Look names up in the drug knowledge table (generic names, brands, "
        "strengths ignored) and print their ingredients and classes; a name the table does "
        "not know is reported as not classified.",
    )
    d.add_argument("names", nargs="*", metavar="NAME", help='e.g. "Xanax 1 mg" methadone')
    d.add_argument("--json", action="store_true", help="print JSON for programs")
    d.add_argument("--markdown", action="store_true", help="print docs/drugs.md")
    d.set_defaults(func=cmd_drugs)


def _float(text: str | None, what: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{what} must be a number, got {text!r}") from None


def _reference(args: argparse.Namespace) -> tuple[float, float] | None:
    if not args.reference:
        return None
    low = _float(args.reference[0], "--reference LOW")
    high = _float(args.reference[1], "--reference HIGH")
    if low is None or high is None or low > high:
        raise UsageError(f"--reference LOW HIGH: low {low:g} is above high {high:g}")
    return (low, high)


def _citation_json(ref_id: str) -> dict[str, Any]:
    item = evidence.resolve(ref_id)
    if isinstance(item, evidence.Claim):
        return {
            "id": item.id,
            "kind": "claim",
            "statement": item.statement,
            "verdict": item.verdict,
            "citations": list(item.citations),
        }
    return {
        "id": item.id,
        "kind": "citation",
        "type": item.type,
        "authors": item.authors,
        "year": item.year,
        "title": item.title,
        "journal": item.journal,
        "doi": item.doi,
        "pmid": item.pmid,
        "unconfirmed": list(item.unconfirmed),
        "text": item.formatted(),
    }


def _interpret_other(args: argparse.Namespace, reference: tuple[float, float] | None) -> dict:
    lab = labs.get_lab(args.lab)
    if lab.kind != "quantity":
        raise labs.LabValueError(
            "lab", f"{lab.name} is qualitative; record a result ({', '.join(lab.results)})"
        )
    unit = labs.normalise_unit(lab.code, args.unit)
    canonical = labs.to_canonical(lab.code, args.value, unit)
    overrides = {args.sex: reference} if reference is not None else None
    rng = labs.reference_range(lab.code, args.sex, overrides)
    considerations = []
    problem = labs.plausibility_problem(lab.code, args.value, unit)
    if problem:
        considerations.append(
            {
                "code": "check-value",
                "text": problem[0].upper() + problem[1:] + ".",
                "citations": ["ohdsi-dqd-plausibility"],
            }
        )
    if rng is None:
        considerations.append(
            {
                "code": "no-reference-range",
                "text": "Speciosa's references give no reference range for this test; compare "
                "with the reporting laboratory's range (--reference LOW HIGH).",
                "citations": [],
            }
        )
    cites = list(lab.reference_citations if reference is None else ())
    for c in considerations:
        cites.extend(c["citations"])
    return {
        "lab": lab.code,
        "loinc": lab.loinc,
        "value": float(args.value),
        "unit": unit,
        "canonical_value": canonical,
        "canonical_unit": lab.canonical_unit,
        "reference_low": rng[0] if rng else None,
        "reference_high": rng[1] if rng else None,
        "flag": labs.flag_against(canonical, rng),
        "considerations": considerations,
        "citations": list(dict.fromkeys(cites)),
        "disclaimer": prolactin.DISCLAIMER,
    }


def _interpret_prolactin(args: argparse.Namespace, reference: tuple[float, float] | None) -> dict:
    recent = {}
    for code, value, unit in args.recent_lab:
        if code not in ("tsh", "creatinine", "egfr"):
            raise UsageError(f"--recent-lab {code!r}: use tsh, creatinine or egfr")
        recent[code] = (value, unit)
    result = prolactin.interpret(
        args.value,
        args.unit,
        sex=args.sex,
        pregnant=args.pregnant,
        breastfeeding=args.breastfeeding,
        medications=args.medication,
        recent_labs=recent,
        symptoms=args.symptom,
        reference=reference,
        iu_factor=_float(args.iu_factor, "--iu-factor"),
    )
    return {
        "lab": result.lab,
        "loinc": result.loinc,
        "value": result.value,
        "unit": result.unit,
        "canonical_value": result.canonical_value,
        "canonical_unit": result.canonical_unit,
        "reference_low": result.reference_low,
        "reference_high": result.reference_high,
        "flag": result.flag,
        "flag_note": result.flag_note,
        "considerations": [
            {"code": c.code, "text": c.text, "citations": list(c.citations)}
            for c in result.considerations
        ],
        "citations": list(result.citations),
        "disclaimer": result.disclaimer,
    }


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g}"


def cmd_interpret(args: argparse.Namespace) -> int:
    """Run ``speciosa interpret``."""
    reference = _reference(args)
    try:
        if args.lab == "prolactin":
            out = _interpret_prolactin(args, reference)
        else:  # pregnancy, medications and recent labs are used by prolactin only
            out = _interpret_other(args, reference)
    except labs.LabValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.json:
        payload = dict(out)
        payload["citations"] = [_citation_json(i) for i in out["citations"]]
        json.dump(payload, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    lab = labs.get_lab(out["lab"])
    lines = [
        f"{lab.name} (LOINC {out['loinc'] or 'not known'}): {_num(out['value'])} {out['unit']}"
        + (
            f" = {_num(out['canonical_value'])} {out['canonical_unit']}"
            if out["unit"] != out["canonical_unit"]
            else ""
        ),
    ]
    if out["reference_low"] is None and out["reference_high"] is None:
        lines.append("Reference range: none in Speciosa's references; use the laboratory's")
    else:
        lines.append(
            f"Reference range ({args.sex}{', laboratory' if reference else ''}): "
            f"{_num(out['reference_low'])} to {_num(out['reference_high'])} {out['canonical_unit']}"
            + (" (non-pregnant; does not apply)" if out.get("flag_note") else "")
        )
    if out["flag"]:
        lines.append(f"Flag: {out['flag'].upper()}")
    else:
        lines.append(f"Flag: {out.get('flag_note') or 'not flagged (no range)'}")
    if out["considerations"]:
        lines.append("Considerations:")
        for i, c in enumerate(out["considerations"], 1):
            refs = f" [{', '.join(c['citations'])}]" if c["citations"] else ""
            lines.append(f"  {i}. {c['text']}{refs}")
    if out["citations"]:
        lines.append("Evidence:")
        for ref in out["citations"]:
            item = evidence.resolve(ref)
            if isinstance(item, evidence.Claim):
                lines.append(f"  [{ref}] claim ({item.verdict}): {item.statement}")
            else:
                lines.append(f"  [{ref}] ({item.type}) {item.formatted()}")
    lines.append(out["disclaimer"])
    print("\n".join(lines))
    return 0


def cmd_claims(args: argparse.Namespace) -> int:
    """Run ``speciosa claims``."""
    claims = [
        c for c in evidence.all_claims().values() if not args.source or c.source == args.source
    ]
    cited = dict.fromkeys(cid for c in claims for cid in c.citations)
    if args.json:
        payload = {
            "claims": [
                {
                    "id": c.id,
                    "source": c.source,
                    "statement": c.statement,
                    "verdict": c.verdict,
                    "explanation": c.explanation,
                    "citations": list(c.citations),
                    "strength": evidence.strength_in_words(c.citations),
                }
                for c in claims
            ],
            "citations": [
                _citation_json(cid)
                for cid in (evidence.all_citations() if not args.source else cited)
            ],
        }
        json.dump(payload, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    lines = []
    for c in claims:
        origin = "source article" if c.source == "article" else "Speciosa"
        lines.append(f"{c.id} [{c.verdict.upper()}] ({origin}) {c.statement}")
        lines.append(f"    {c.explanation}")
        lines.append(
            f"    Evidence: {evidence.strength_in_words(c.citations)} - {', '.join(c.citations)}"
        )
    lines.append("")
    lines.append("Citations:")
    for cid in evidence.all_citations() if not args.source else cited:
        item = evidence.citation(cid)
        lines.append(f"  [{cid}] ({item.type}) {item.formatted()}")
    print("\n".join(lines))
    return 0


def cmd_drugs(args: argparse.Namespace) -> int:
    """Run ``speciosa drugs``."""
    if args.markdown:
        sys.stdout.write(drugs.markdown())
        return 0
    if not args.names:
        raise UsageError("give at least one medication or substance name, or --markdown")
    found = [drugs.classify(name) for name in args.names]
    if args.json:
        json.dump([c.as_json() for c in found], sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    labels = drugs.classes()
    for c in found:
        if c.unknown:
            print(f"{c.name}: not classified (the drug table does not know this name)")
            continue
        what = ", ".join(c.ingredients) or ", ".join(d.name for d in c.drugs)
        classes = ", ".join(labels[k].label for k in c.classes) or "none of the classes"
        print(f"{c.name}: {what}; {classes}")
    return 0
