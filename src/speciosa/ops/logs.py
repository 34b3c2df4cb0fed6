"""Structured logs without patient identifiers.

Every record goes to stdout as one JSON object (``SPECIOSA_LOG_FORMAT=json``, the default)
with a fixed set of fields. What may appear:

- the message, after :class:`RedactFilter` has removed query strings, e-mail addresses and
  calendar dates (a birth date is an identifier; the record's own timestamp is a field);
- allow-listed extra fields only (:data:`ALLOWED_EXTRAS`): internal row ids such as
  ``user_id``, ``patient_id``, ``alert_id`` (database keys, meaningless outside the
  database, so not identifiers in the HIPAA / 42 CFR Part 2 sense), request method, path
  (paths carry internal ids only), status, duration, task name;
- for an exception, its type and the traceback's frames, never its message (a database
  error's message can quote a row's values, e.g. ``DETAIL: Key (identifier)=(MRN-1)``).

Names, medical record numbers, birth dates and free text are never passed to a logger by
Speciosa's code; the filter is the second line of defence, not the first.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import traceback

ALLOWED_EXTRAS = (
    "method", "path", "status", "duration_ms", "cpu_ms", "db_ms", "db_queries", "user_id", "patient_id", "alert_id",
    "task", "task_id", "retries", "recipients", "count", "table", "event",
)
_QUERY = re.compile(r"\?[^\s\"']*")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_DATE = re.compile(r"\b(19|20)\d\d-[01]\d-[0-3]\d\b")


def redact(text: str) -> str:
    """Remove query strings, e-mail addresses and calendar dates from ``text``."""
    return _DATE.sub("[date]", _EMAIL.sub("[email]", _QUERY.sub("", text)))


class RedactFilter(logging.Filter):
    """Rewrite each record's message with :func:`redact` (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the record
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        return True


def _exception(exc_info) -> dict[str, object]:
    etype, _value, tb = exc_info
    frames = [f"{f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(tb)]
    return {"type": getattr(etype, "__qualname__", str(etype)), "frames": frames[-20:]}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message and allow-listed extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key in ALLOWED_EXTRAS:
            value = record.__dict__.get(key)
            if isinstance(value, str | int | float | bool):
                out[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info and record.exc_info[0] is not None:
            out["exception"] = _exception(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(JsonFormatter):
    """The same fields on one human-readable line (``SPECIOSA_LOG_FORMAT=text``)."""

    def format(self, record: logging.LogRecord) -> str:
        data = json.loads(super().format(record))
        head = f"{data.pop('time')} {data.pop('level'):<7} {data.pop('logger')}: {data.pop('message')}"
        rest = " ".join(f"{k}={v}" for k, v in data.items())
        return f"{head} {rest}".rstrip()
