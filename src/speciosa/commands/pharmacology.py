"""``speciosa exposure DOSES.csv``: estimated mitragynine exposure from a dose log.

Input CSV columns: ``subject`` (optional), ``taken_at`` (ISO 8601 with offset), ``amount``,
``unit`` (g, capsule, glass, mg_extract, mg_mitragynine), ``mitragynine_percent`` and
``grams_per_capsule`` (optional). Output: CSV or Parquet by the ``--out`` file's ending, or
JSON with ``--json``. A bad row (unknown unit, negative amount, unparseable time, a dose that
cannot be converted, a wrong number of fields) is listed with its line number and nothing is
written (exit 2); a ``mg_7oh`` row (a 7-OH product) is such a row, as the model does not
cover 7-OH taken directly. A model estimate; it never suggests a dose.

Columnar on purpose (a cohort file has millions of rows): the file is read by pyarrow's CSV
reader, times and numbers are parsed in arrays (rows in an unusual but valid ISO 8601 form
fall back to Python's parser, one by one, with the same meaning), doses are converted by
:func:`speciosa.pharmacology.doses.convert_arrays`, every subject is simulated in one pass by
:func:`speciosa.pharmacology.cohort.cohort_exposure` and the output is written from columns.
Only the 90 % band (``--typical`` not given) is computed patient by patient, over that
patient's virtual patients.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from speciosa.pharmacology.doses import PROBLEMS, UNITS, convert_arrays
from speciosa.pharmacology.model import MODEL_NAME, MODEL_STRUCTURE, TYPICAL, VARIABILITY

DEFAULT_FOLLOW_DAYS = 14
_US_PER_H = 3_600_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COLUMNS = ("subject", "taken_at", "amount", "unit", "mitragynine_percent", "grams_per_capsule")
_REQUIRED = ("taken_at", "amount", "unit")
# ISO 8601 forms pyarrow parses exactly as datetime.fromisoformat does; any other text goes
# to Python's parser row by row (same meaning, just slower)
_ISO_RE = (r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
           r"(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$")
_NUM_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
# reasons found while reading, before the conversion rules (their codes follow PROBLEMS')
_READ_PROBLEMS = ("cannot read time {time!r}", "amount {amount!r} is not a number",
                  "mitragynine_percent and grams_per_capsule must be numbers",
                  "dose time needs a timezone offset")


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


def _us(t: datetime) -> int:
    """Microseconds since 1970 (exact integer arithmetic)."""
    return (t - _EPOCH) // timedelta(microseconds=1)


# --------------------------------------------------------------------------- reading

@dataclass
class DoseLog:
    """A dose file in arrays, grouped by subject (CSR: subject ``s`` has rows
    ``offsets[s]:offsets[s+1]``, sorted by time)."""

    subjects: list[str]
    offsets: np.ndarray
    utc_us: np.ndarray
    offset_s: np.ndarray  # UTC offset of each dose's own time text
    mg: np.ndarray
    mg_low: np.ndarray
    mg_high: np.ndarray
    assumed: np.ndarray


def _parse_times(texts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(utc_us, offset_s, problem)`` per text; problem 1 unreadable, 4 no offset, else 0."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(texts)
    utc = np.zeros(n, dtype=np.int64)
    off = np.zeros(n, dtype=np.int64)
    problem = np.zeros(n, dtype=np.int8)
    fast = pc.fill_null(pc.match_substring_regex(texts, _ISO_RE), False)
    fast_np = fast.to_numpy(zero_copy_only=False)
    idx = np.flatnonzero(fast_np)
    if idx.size:
        sub = texts.filter(fast)
        try:
            ts = pc.cast(sub, pa.timestamp("us", "UTC"))
        except pa.ArrowInvalid:  # a date the pattern allows but the calendar does not
            fast_np[:] = False
            idx = idx[:0]
        else:
            utc[idx] = ts.cast(pa.int64()).to_numpy()
            tail = pc.utf8_slice_codeunits(sub, -6)
            codes = pc.dictionary_encode(tail).combine_chunks() if isinstance(
                tail, pa.ChunkedArray) else pc.dictionary_encode(tail)
            seconds = []
            for sfx in codes.dictionary.to_pylist():
                if sfx.endswith("Z"):
                    seconds.append(0)
                else:
                    sign = -1 if sfx[0] == "-" else 1
                    seconds.append(sign * (int(sfx[1:3]) * 3600 + int(sfx[4:6]) * 60))
            off[idx] = np.asarray(seconds, dtype=np.int64)[codes.indices.to_numpy()]
    for i in np.flatnonzero(~fast_np):  # unusual forms and bad rows: Python's parser
        text = texts[int(i)].as_py()
        try:
            t = datetime.fromisoformat(text)
        except (TypeError, ValueError):
            problem[i] = 1
            continue
        if t.tzinfo is None or t.utcoffset() is None:
            problem[i] = 4
            continue
        utc[i] = _us(t)
        off[i] = int(t.utcoffset().total_seconds())
    return utc, off, problem


def _parse_numbers(texts, optional: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(values, ok)``: floats (NaN where empty and optional); ``ok`` False if unreadable."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(texts)
    values = np.full(n, np.nan)
    ok = np.ones(n, dtype=bool)
    fast = pc.fill_null(pc.match_substring_regex(texts, _NUM_RE), False)
    fast_np = fast.to_numpy(zero_copy_only=False)
    if fast_np.any():
        values[fast_np] = pc.cast(texts.filter(fast), pa.float64()).to_numpy()
    rest = ~fast_np
    if optional:  # empty (texts are trimmed already): not given
        rest &= ~pc.fill_null(pc.equal(texts, ""), True).to_numpy(zero_copy_only=False)
    rest = np.flatnonzero(rest)
    if rest.size:
        for i in rest:  # unusual forms (" 2", "1_000", "inf") and bad values
            text = texts[int(i)].as_py()
            try:
                values[i] = float(text)
            except (TypeError, ValueError):
                ok[i] = False
    return values, ok


def _line_numbers(path: Path, n_rows: int, invalid_lines: list[int]) -> np.ndarray:
    """File line (1-based) of each parsed row: lines after the header that are not empty and
    not among the rows skipped for a wrong number of fields. Only run to report bad rows."""
    buf = np.fromfile(path, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    starts = np.r_[0, nl + 1]
    ends = np.r_[nl, buf.size]
    keep = starts < buf.size
    starts, ends = starts[keep], ends[keep]
    length = ends - starts
    cr = (length == 1) & (buf[np.minimum(starts, buf.size - 1)] == 13)
    line_no = np.arange(1, starts.size + 1)
    data = line_no[(length > 0) & ~cr & (line_no > 1)]
    if invalid_lines:
        data = data[~np.isin(data, invalid_lines)]
    return data[:n_rows]


def read_doses(path: Path) -> tuple[DoseLog, list[tuple[int, str]]]:
    """Parse and convert the dose CSV in arrays; return the log and ``(line, reason)`` for
    bad rows (the log is only meaningful when there are none)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    from speciosa.cli import UsageError

    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), [])
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    header = [h.strip() for h in header]
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise UsageError(f"{path}: missing column(s) {', '.join(missing)}")
    present = [c for c in _COLUMNS if c in header]
    invalid: list[tuple[int | None, str, int]] = []

    def on_invalid(row: Any) -> str:
        invalid.append((row.number, row.text, row.actual_columns))
        return "skip"

    try:
        table = pcsv.read_csv(
            path,
            parse_options=pcsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(
                include_columns=present, column_types={c: pa.string() for c in present},
                strings_can_be_null=False))
    except pa.ArrowInvalid as exc:
        raise UsageError(f"{path}: {exc}") from None
    n = table.num_rows

    def col(name: str):
        if name not in present:
            return pa.nulls(n, pa.string()).fill_null("")
        return pc.utf8_trim_whitespace(table[name].combine_chunks())

    taken, amount_txt, unit_txt = col("taken_at"), col("amount"), col("unit")
    utc, off, t_problem = _parse_times(taken)
    amount, amount_ok = _parse_numbers(amount_txt, optional=False)
    pct, pct_ok = _parse_numbers(col("mitragynine_percent"), optional=True)
    gpc, gpc_ok = _parse_numbers(col("grams_per_capsule"), optional=True)
    unit_codes = pc.index_in(unit_txt, value_set=pa.array(UNITS)).fill_null(-1).to_numpy()
    conv = convert_arrays(amount, unit_codes, pct, gpc)
    # the first reason in the order the per-dose rules check: time unreadable, amount not a
    # number, optional numbers not numbers, no offset, then the conversion rules
    base = len(PROBLEMS)
    problem = np.select(
        [t_problem == 1, ~amount_ok, ~(pct_ok & gpc_ok), t_problem == 4, conv.problem != 0],
        [base + 0, base + 1, base + 2, base + 3, conv.problem.astype(np.int64)], 0)
    bad: list[tuple[int, str]] = []
    bad_rows = np.flatnonzero(problem)
    if bad_rows.size or invalid:
        known = [num for num, _t, _c in invalid if num is not None]
        lines = _line_numbers(path, n, _invalid_lines(path, invalid, known))
        for i in bad_rows:
            code = int(problem[i])
            if code >= base:
                reason = _READ_PROBLEMS[code - base].format(time=taken[int(i)].as_py(),
                                                            amount=amount_txt[int(i)].as_py())
            else:
                reason = PROBLEMS[code].format(unit=unit_txt[int(i)].as_py())
            bad.append((int(lines[i]) if i < lines.size else int(i) + 2, reason))
        for line, _text, found in _invalid_with_lines(path, invalid, known):
            bad.append((line, f"expected {len(header)} fields, found {found}"))
        bad.sort()
    subject = col("subject") if "subject" in present else pa.array(["1"] * n, pa.string())
    subject = pc.if_else(pc.equal(subject, ""), "1", subject)
    enc = pc.dictionary_encode(subject)
    codes = enc.indices.to_numpy().astype(np.int64)
    # by subject (first appearance), then time (stable); a file already in that order, as
    # an export usually is, is taken as it is
    dc = np.diff(codes)
    if np.all(dc >= 0) and np.all((np.diff(utc) >= 0) | (dc > 0)):
        order = np.arange(n)
    else:
        order = np.lexsort((utc, codes))
    counts = np.bincount(codes, minlength=len(enc.dictionary))
    offsets = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    log = DoseLog(enc.dictionary.to_pylist(), offsets, utc[order], off[order], conv.mg[order],
                  conv.mg_low[order], conv.mg_high[order], conv.assumed_potency[order])
    return log, bad


def _invalid_lines(path: Path, invalid, known) -> list[int]:
    return [line for line, _t, _c in _invalid_with_lines(path, invalid, known)]


def _invalid_with_lines(path: Path, invalid, known) -> list[tuple[int, str, int]]:
    """Rows skipped for a wrong number of fields, with their line numbers (found by text
    when the parallel reader did not know them)."""
    if not invalid:
        return []
    out = []
    lines = None
    used: set[int] = set(known)
    for num, text, found in invalid:
        if num is None:
            if lines is None:
                lines = path.read_text(encoding="utf-8-sig").splitlines()
            num = next((i + 1 for i, t in enumerate(lines) if t == text and i + 1 not in used),
                       0)
            used.add(num)
        out.append((int(num), text, int(found)))
    return out


# --------------------------------------------------------------------------- computing

@dataclass
class CohortRun:
    """What the command computed, per subject and per output row."""

    log: DoseLog
    start_us: np.ndarray
    start_offset_s: np.ndarray
    first_day: np.ndarray  # local date of the first output, days since 1970
    exposure: Any  # speciosa.pharmacology.cohort.CohortExposure
    p05: np.ndarray | None = None
    p95: np.ndarray | None = None
    washout_range: np.ndarray | None = None  # (n, 4): h50 p05, h50 p95, h10 p05, h10 p95


def compute(log: DoseLog, *, start: datetime | None, end: datetime | None, step_minutes: float,
            typical: bool, subjects: int, seed: int) -> CohortRun:
    """Every subject's typical course and summaries in one pass; the band per subject."""
    from speciosa.cli import UsageError
    from speciosa.pharmacology.cohort import cohort_exposure
    from speciosa.pharmacology.exposure import population_band

    off = log.offsets
    n = off.size - 1
    first = np.minimum(off[:-1], log.utc_us.size - 1)
    if start is not None:
        start_us = np.full(n, _us(start), dtype=np.int64)
        start_off = np.full(n, int(start.utcoffset().total_seconds()), dtype=np.int64)
    else:  # each subject's first dose, in that dose's own offset
        start_us = log.utc_us[first].copy()
        start_off = log.offset_s[first].copy()
    if end is not None:
        end_us = np.full(n, _us(end), dtype=np.int64)
    else:
        end_us = log.utc_us[off[1:] - 1] + DEFAULT_FOLLOW_DAYS * 24 * _US_PER_H
    early = np.flatnonzero(end_us < start_us)
    if early.size:
        raise UsageError(f"subject {log.subjects[int(early[0])]}: --end is before its first dose")
    step_h = float(step_minutes) / 60.0
    span_h = (end_us - start_us) / 1e6 / 3600.0
    n_out = np.floor(span_h / step_h + 1e-9).astype(np.int64) + 1
    subj = np.repeat(np.arange(n), np.diff(off))
    times_h = (log.utc_us - start_us[subj]) / 1e6 / 3600.0
    local_us = start_us + start_off * 1_000_000
    day_us = 86_400_000_000
    first_day = np.floor_divide(local_us, day_us)
    day_start_s = (local_us - first_day * day_us) / 1e6
    exposure = cohort_exposure(off, times_h, log.mg, n_out, step_h=step_h,
                               day_start_s=day_start_s)
    run = CohortRun(log, start_us, start_off, first_day, exposure)
    if not typical:
        p05 = np.empty_like(exposure.mitragynine_ng_per_ml)
        p95 = np.empty_like(p05)
        wr = np.full((n, 4), np.nan)
        grid = np.arange(int(n_out.max())) * step_h
        for s in range(n):
            a, b = off[s], off[s + 1]
            o0, o1 = exposure.out_offsets[s], exposure.out_offsets[s + 1]
            band = population_band(times_h[a:b], log.mg_low[a:b], log.mg_high[a:b],
                                   grid[:o1 - o0], subjects=subjects, seed=seed)
            p05[o0:o1], p95[o0:o1] = band.p05, band.p95
            wr[s] = band.washout_range
        run.p05, run.p95, run.washout_range = p05, p95, wr
    return run


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
    log, bad = read_doses(Path(args.doses))
    if bad:
        raise UsageError("bad rows, nothing written:\n" + "\n".join(
            f"  line {line}: {reason}" for line, reason in bad))
    if not log.subjects:
        raise UsageError(f"{args.doses}: no doses")
    result = compute(log, start=start, end=end, step_minutes=args.step_minutes,
                     typical=args.typical, subjects=args.subjects, seed=args.seed)
    if args.json:
        _write_json(result, out, args)
    elif out is not None and out.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(output_table(result), out)
    else:
        import pyarrow.csv as pcsv

        table = output_table(result, local_times=True)
        if out is None:
            pcsv.write_csv(table, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            pcsv.write_csv(table, out)
    return 0


# --------------------------------------------------------------------------- writing

def _offset_text(seconds: int) -> str:
    """``+01:00`` as ``datetime.isoformat`` writes a UTC offset."""
    sign = "-" if seconds < 0 else "+"
    h, rest = divmod(abs(int(seconds)), 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")


def _local_iso(utc_us: np.ndarray, offset_s: np.ndarray, subject_of_row: np.ndarray,
               offsets_by_subject: np.ndarray):
    """ISO 8601 text in each subject's offset, as ``datetime.isoformat`` writes it, built in
    arrays (microseconds only where not zero)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    local = utc_us + offset_s * 1_000_000
    whole = np.floor_divide(local, 1_000_000)
    frac = local - whole * 1_000_000
    text = pc.strftime(pa.array(whole, pa.timestamp("s")), format="%Y-%m-%dT%H:%M:%S")
    if np.any(frac):
        us_txt = pc.utf8_lpad(pa.array(frac).cast(pa.string()), 6, "0")
        dotted = pc.binary_join_element_wise(".", us_txt, "")
        text = pc.binary_join_element_wise(text, pc.if_else(pa.array(frac != 0), dotted, ""), "")
    uniq, inv = np.unique(offsets_by_subject, return_inverse=True)
    sfx = pa.DictionaryArray.from_arrays(pa.array(inv[subject_of_row].astype(np.int32)),
                                         pa.array([_offset_text(u) for u in uniq]))
    return pc.binary_join_element_wise(text, sfx.cast(pa.string()), "")


def output_table(result: CohortRun, *, local_times: bool = False):
    """The long table (subject, time, MG, 7-OH[, band]) from the result's columns."""
    import pyarrow as pa

    e = result.exposure
    n_out = e.n_out
    subj = np.repeat(np.arange(e.n_subjects, dtype=np.int32), n_out)
    step_us = np.rint(e.times_h() * 3.6e9).astype(np.int64)
    utc_us = result.start_us[subj] + step_us
    subject = pa.DictionaryArray.from_arrays(pa.array(subj), pa.array(result.log.subjects))
    if local_times:
        time = _local_iso(utc_us, result.start_offset_s[subj], subj, result.start_offset_s)
    else:
        time = pa.array(utc_us, pa.timestamp("us", "UTC"))
    cols = {"subject": subject, "time": time,
            "mitragynine_ng_per_ml": pa.array(e.mitragynine_ng_per_ml),
            "hydroxymitragynine_ng_per_ml": pa.array(e.hydroxymitragynine_ng_per_ml)}
    if result.p05 is not None:
        cols["mitragynine_p05"] = pa.array(result.p05)
        cols["mitragynine_p95"] = pa.array(result.p95)
    return pa.table(cols)


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _model_json() -> dict[str, Any]:
    params = [
        {"name": p.name, "value": p.value, "unit": p.unit, "source": p.source, "note": p.note}
        for p in (*TYPICAL.values(), *VARIABILITY.values())
    ]
    return {"name": MODEL_NAME, "structure": MODEL_STRUCTURE, "parameters": params}


def _write_json(result: CohortRun, out: Path | None, args: argparse.Namespace) -> None:
    from speciosa.pharmacology.exposure import MODEL_LABEL, assumption_notes

    e = result.exposure
    log = result.log
    n_out = e.n_out
    subj = np.repeat(np.arange(e.n_subjects), n_out)
    step_us = np.rint(e.times_h() * 3.6e9).astype(np.int64)
    utc_us = result.start_us[subj] + step_us
    times = _local_iso(utc_us, result.start_offset_s[subj], subj,
                       result.start_offset_s).to_pylist()
    mg = e.mitragynine_ng_per_ml.tolist()
    oh = e.hydroxymitragynine_ng_per_ml.tolist()
    p05 = None if result.p05 is None else result.p05.tolist()
    p95 = None if result.p95 is None else result.p95.tolist()
    day_txt = (np.repeat(result.first_day, np.diff(e.day_offsets)) + e.day).astype(
        "datetime64[D]").astype(str).tolist()

    def iso(us: float, s: int) -> str | None:
        if not math.isfinite(us):
            return None
        return _local_iso(np.array([int(us)]), np.array([result.start_offset_s[s]]),
                          np.array([0]), np.array([result.start_offset_s[s]]))[0].as_py()

    subjects = []
    for s, name in enumerate(log.subjects):
        a, b = e.out_offsets[s], e.out_offsets[s + 1]
        c, d = e.day_offsets[s], e.day_offsets[s + 1]
        da, db = log.offsets[s], log.offsets[s + 1]
        summary = {
            "cmax_ng_per_ml": _num(e.cmax_ng_per_ml[s]),
            "tmax": iso(result.start_us[s] + e.tmax_h[s] * 3.6e9, s),
            "auc_ng_h_per_ml": _num(e.auc_ng_h_per_ml[s]),
            "time_to_steady_state_h": _num(e.time_to_steady_state_h[s]),
            "hours_to_50_percent_after_last_dose": _num(e.hours_to_50_percent_after_last_dose[s]),
            "hours_to_10_percent_after_last_dose": _num(e.hours_to_10_percent_after_last_dose[s]),
            "reference_ng_per_ml": _num(e.reference_ng_per_ml[s]),
            "last_dose_at": iso(float(log.utc_us[db - 1]), s),
        }
        wr = result.washout_range
        for k, key in enumerate(("hours_to_50_percent_p05", "hours_to_50_percent_p95",
                                 "hours_to_10_percent_p05", "hours_to_10_percent_p95")):
            summary[key] = None if wr is None else _num(wr[s, k])
        entry: dict[str, Any] = {
            "subject": name,
            "label": MODEL_LABEL,
            "summary": summary,
            "daily": [{"date": day_txt[k], "mean_ng_per_ml": float(e.daily_mean_ng_per_ml[k]),
                       "peak_ng_per_ml": float(e.daily_peak_ng_per_ml[k]),
                       "trough_ng_per_ml": float(e.daily_trough_ng_per_ml[k])}
                      for k in range(c, d)],
            "assumptions": assumption_notes(int(db - da), int(log.assumed[da:db].sum()), [],
                                            args.subjects, args.seed, args.typical),
            "unconverted": [],
            "time": times[a:b],
            "mitragynine_ng_per_ml": mg[a:b],
            "hydroxymitragynine_ng_per_ml": oh[a:b],
        }
        if p05 is not None:
            entry["mitragynine_p05"] = p05[a:b]
            entry["mitragynine_p95"] = p95[a:b]
        subjects.append(entry)
    doc = {"model": _model_json(), "subjects": subjects}
    text = json.dumps(doc, indent=1, allow_nan=False)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")
