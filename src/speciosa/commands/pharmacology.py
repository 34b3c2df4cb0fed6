"""``speciosa exposure DOSES.csv``: estimated mitragynine exposure from a dose log.

Input CSV columns: ``subject`` (optional), ``taken_at`` (ISO 8601 with offset), ``amount``,
``unit`` (g, capsule, glass, mg_extract, mg_mitragynine), ``mitragynine_percent`` and
``grams_per_capsule`` (optional). Output: CSV or Parquet by the ``--out`` file's ending, or
JSON with ``--json``. A bad row (unknown unit, negative amount, unparseable time, a dose that
cannot be converted) is listed with its line number and nothing is written (exit 2).
A model estimate; it never suggests a dose.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from speciosa.pharmacology.doses import Dose, DoseConversionError, to_mitragynine
from speciosa.pharmacology.exposure import PatientExposure, patient_exposure
from speciosa.pharmacology.model import MODEL_NAME, MODEL_STRUCTURE, TYPICAL, VARIABILITY

DEFAULT_FOLLOW_DAYS = 14


def register(subparsers: Any) -> None:
    """Add the ``exposure`` subcommand."""
    p = subparsers.add_parser(
        "exposure",
        help="estimated mitragynine exposure from a dose log (a model estimate)",
        description="Estimated mitragynine and 7-hydroxymitragynine plasma concentrations "
        "from a kratom dose log, with a 90 %% band over virtual patients. A model estimate, "
        "not a measurement; it never suggests a dose.",
    )
    p.add_argument("doses", metavar="DOSES.csv", help="dose log (CSV)")
    p.add_argument("--typical", action="store_true", help="typical patient only, no band")
    p.add_argument("--start", help="first output time, ISO 8601 with offset "
                   "(default: each subject's first dose)")
    p.add_argument("--end", help="last output time, ISO 8601 with offset "
                   f"(default: last dose + {DEFAULT_FOLLOW_DAYS} days)")
    p.add_argument("--step-minutes", type=float, default=60.0, help="output spacing")
    p.add_argument("--subjects", type=int, default=1000, help="virtual patients for the band")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", help="output file: .csv or .parquet (or .json with --json)")
    p.add_argument("--json", action="store_true", help="JSON with model and summaries")
    p.set_defaults(func=cmd_exposure)


def _time(text: str, what: str) -> datetime:
    from speciosa.cli import UsageError

    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{what}: cannot read time {text!r} (ISO 8601 with offset)") from None
    if t.tzinfo is None:
        raise UsageError(f"{what}: time {text!r} needs a UTC offset")
    return t


def _optional_float(text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    return float(text)


def read_doses(path: Path) -> tuple[dict[str, list[Dose]], list[tuple[int, str]]]:
    """Parse the dose CSV; return doses per subject and ``(line, reason)`` for bad rows."""
    from speciosa.cli import UsageError

    try:
        fh = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    by_subject: dict[str, list[Dose]] = {}
    bad: list[tuple[int, str]] = []
    with fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("taken_at", "amount", "unit") if c not in (reader.fieldnames or [])]
        if missing:
            raise UsageError(f"{path}: missing column(s) {', '.join(missing)}")
        for row in reader:
            line = reader.line_num
            try:
                text = (row.get("taken_at") or "").strip()
                try:
                    t = datetime.fromisoformat(text)
                except ValueError:
                    raise DoseConversionError(f"cannot read time {text!r}") from None
                try:
                    amount = float(row.get("amount") or "")
                except ValueError:
                    raise DoseConversionError(
                        f"amount {row.get('amount')!r} is not a number") from None
                try:
                    pct = _optional_float(row.get("mitragynine_percent"))
                    gpc = _optional_float(row.get("grams_per_capsule"))
                except ValueError:
                    raise DoseConversionError(
                        "mitragynine_percent and grams_per_capsule must be numbers") from None
                dose = Dose(t, amount, (row.get("unit") or "").strip(), pct, gpc)
                to_mitragynine(dose)  # validates (time offset, unit, amount, label info)
            except DoseConversionError as exc:
                bad.append((line, str(exc)))
                continue
            subject = (row.get("subject") or "").strip() or "1"
            by_subject.setdefault(subject, []).append(dose)
    return by_subject, bad


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _summary_json(r: PatientExposure) -> dict[str, Any]:
    s = r.summary
    d = asdict(s)
    d["tmax"] = s.tmax.isoformat() if s.tmax else None
    d["last_dose_at"] = s.last_dose_at.isoformat() if s.last_dose_at else None
    return {k: (_num(v) if isinstance(v, float) else v) for k, v in d.items()}


def _model_json() -> dict[str, Any]:
    params = [
        {"name": p.name, "value": p.value, "unit": p.unit, "source": p.source, "note": p.note}
        for p in (*TYPICAL.values(), *VARIABILITY.values())
    ]
    return {"name": MODEL_NAME, "structure": MODEL_STRUCTURE, "parameters": params}


def cmd_exposure(args: argparse.Namespace) -> int:
    """Run ``speciosa exposure``; returns the exit code."""
    from speciosa.cli import UsageError

    if not args.step_minutes > 0:
        raise UsageError("--step-minutes must be greater than 0")
    if args.subjects < 1:
        raise UsageError("--subjects must be at least 1")
    start = _time(args.start, "--start") if args.start else None
    end = _time(args.end, "--end") if args.end else None
    if start and end and end < start:
        raise UsageError("--end is before --start")
    out = Path(args.out) if args.out else None
    if out is not None and not args.json and out.suffix.lower() not in (".csv", ".parquet"):
        raise UsageError("--out must end in .csv or .parquet (or use --json)")
    by_subject, bad = read_doses(Path(args.doses))
    if bad:
        raise UsageError("bad rows, nothing written:\n" + "\n".join(
            f"  line {line}: {reason}" for line, reason in bad))
    if not by_subject:
        raise UsageError(f"{args.doses}: no doses")
    results: dict[str, PatientExposure] = {}
    for subject, doses in by_subject.items():
        times = [d.taken_at for d in doses]
        s0 = start or min(times)
        e0 = end or max(times) + timedelta(days=DEFAULT_FOLLOW_DAYS)
        if e0 < s0:
            raise UsageError(f"subject {subject}: --end is before its first dose")
        results[subject] = patient_exposure(
            doses, s0, e0, step_minutes=args.step_minutes, subjects=args.subjects,
            seed=args.seed, typical_only=args.typical)
    if args.json:
        _write_json(results, out)
    elif out is not None and out.suffix.lower() == ".parquet":
        _write_parquet(results, out, args.typical)
    else:
        _write_csv(results, out, args.typical)
    return 0


def _rows(results: dict[str, PatientExposure], typical: bool):
    for subject, r in results.items():
        for i, t in enumerate(r.times):
            row = [subject, t.isoformat(), float(r.mitragynine_ng_per_ml[i]),
                   float(r.hydroxymitragynine_ng_per_ml[i])]
            if not typical:
                row += [float(r.mitragynine_p05[i]), float(r.mitragynine_p95[i])]
            yield row


def _columns(typical: bool) -> list[str]:
    cols = ["subject", "time", "mitragynine_ng_per_ml", "hydroxymitragynine_ng_per_ml"]
    return cols if typical else cols + ["mitragynine_p05", "mitragynine_p95"]


def _write_csv(results: dict[str, PatientExposure], out: Path | None, typical: bool) -> None:
    fh = out.open("w", newline="", encoding="utf-8") if out else sys.stdout
    try:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(_columns(typical))
        for row in _rows(results, typical):
            w.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])
    finally:
        if out:
            fh.close()


def _write_parquet(results: dict[str, PatientExposure], out: Path, typical: bool) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = list(zip(*_rows(results, typical), strict=True)) or [[]] * len(_columns(typical))
    names = _columns(typical)
    arrays = [pa.array(list(cols[0]), pa.string()),
              pa.array([datetime.fromisoformat(x) for x in cols[1]], pa.timestamp("us", "UTC"))]
    arrays += [pa.array(list(c), pa.float64()) for c in cols[2:]]
    pq.write_table(pa.table(arrays, names=names), out)


def _write_json(results: dict[str, PatientExposure], out: Path | None) -> None:
    subjects = []
    for subject, r in results.items():
        entry: dict[str, Any] = {
            "subject": subject,
            "label": r.label,
            "summary": _summary_json(r),
            "daily": [{"date": d.date.isoformat(), "mean_ng_per_ml": d.mean_ng_per_ml,
                       "peak_ng_per_ml": d.peak_ng_per_ml,
                       "trough_ng_per_ml": d.trough_ng_per_ml} for d in r.daily],
            "assumptions": r.assumptions,
            "unconverted": [{"index": i, "reason": why} for i, why in r.unconverted],
            "time": [t.isoformat() for t in r.times],
            "mitragynine_ng_per_ml": r.mitragynine_ng_per_ml.tolist(),
            "hydroxymitragynine_ng_per_ml": r.hydroxymitragynine_ng_per_ml.tolist(),
        }
        if r.mitragynine_p05 is not None:
            entry["mitragynine_p05"] = r.mitragynine_p05.tolist()
            entry["mitragynine_p95"] = r.mitragynine_p95.tolist()
        subjects.append(entry)
    doc = {"model": _model_json(), "subjects": subjects}
    text = json.dumps(doc, indent=1, allow_nan=False)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")
