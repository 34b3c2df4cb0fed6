"""The shipped default plan templates (issue 16), offered at every site: migration 0002 adds
them, and :func:`ensure` adds any that are missing (the demo, a test database that was
emptied). A site's administrator changes, retires or adds templates in the admin."""

from __future__ import annotations

STANDARD = [
    {"instrument": "diary", "every_days": 1, "for_days": None},
    {"instrument": "phq9", "every_days": 14, "for_days": None},
    {"instrument": "gad7", "every_days": 14, "for_days": None},
    {"instrument": "asex", "every_days": 30, "for_days": None},
    {"instrument": "audit-c", "every_days": 90, "for_days": None},
]
TAPER = [STANDARD[0], {"instrument": "sows", "every_days": 1, "for_days": None}, *STANDARD[1:]]

#: (name, description, lines): the daily diary, PHQ-9 and GAD-7 every two weeks, ASEX
#: monthly (30 days), AUDIT-C every three months (90 days); the taper adds SOWS daily.
DEFAULTS = [
    ("Supervised recovery", "Daily diary; PHQ-9 and GAD-7 every two weeks; ASEX monthly; "
                            "AUDIT-C every three months.", STANDARD),
    ("Supervised recovery during a taper", "As supervised recovery, with SOWS every day of "
                                           "the taper (set the end date when the taper ends).",
     TAPER),
]


def ensure(model=None) -> int:
    """Add the default templates that are missing (by name); returns how many were added."""
    if model is None:
        from .models import PlanTemplate as model
    added = 0
    for name, description, items in DEFAULTS:
        if not model.objects.filter(site__isnull=True, name=name).exists():
            model.objects.create(site=None, name=name, description=description, items=items)
            added += 1
    return added
