"""Safety rules: pure functions from a patient's timeline and an "as of" time to findings.

No Django, no I/O. The Django app builds :class:`Timeline` objects from bulk queries and
calls :func:`evaluate`; the command line builds them from JSON (``docs/timeline.md``).
Rules, their settings and their evidence are documented in ``docs/rules.md``.
"""

from speciosa.safety.rules import (
    DEFAULT_SETTINGS,
    RULES,
    SETTINGS,
    SEVERITIES,
    Finding,
    Rule,
    Setting,
    evaluate,
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
    "evaluate",
    "get_rule",
    "timeline_from_json",
]
