"""Safety rules: pure functions from a patient's timeline and an "as of" time to findings.

No Django, no I/O. The Django app builds :class:`Timeline` objects from bulk queries and
calls :func:`evaluate`; the command line builds them from JSON (``docs/timeline.md``).
Rules are declared in a registry (:mod:`speciosa.safety.rules`, one module per clinical
area); their settings, windows and evidence are documented in ``docs/rules.md``, generated
from it.
"""

from speciosa.safety.batch import paused_gc
from speciosa.safety.rules import (
    DEFAULT_SETTINGS,
    RULES,
    SETTINGS,
    SEVERITIES,
    DataWindows,
    Finding,
    Rule,
    Setting,
    data_windows,
    evaluate,
    evaluate_many,
    get_rule,
)
from speciosa.safety.timeline import (
    Assessment,
    LabResult,
    Medication,
    Patient,
    SideEffect,
    Substance,
    Timeline,
    TimelineError,
    timeline_from_json,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "RULES",
    "SETTINGS",
    "SEVERITIES",
    "Assessment",
    "DataWindows",
    "Finding",
    "LabResult",
    "Medication",
    "Patient",
    "Rule",
    "Setting",
    "SideEffect",
    "Substance",
    "Timeline",
    "TimelineError",
    "data_windows",
    "evaluate",
    "evaluate_many",
    "get_rule",
    "paused_gc",
    "timeline_from_json",
]
