"""What other pages show of a schedule: the patient page's plan section and the patient's
home page (kept apart from the views so that :mod:`speciosa.web.views` can use them)."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse

from . import due, services


def plan_context(patient, at: dt.datetime | None = None) -> dict:
    """The patient page's plan section: the current plan, each line's current occurrence and
    the completion rate (None without a plan)."""
    plan, rows, rate = services.plan_state(patient, at)
    if plan is None:
        return {"plan": None}
    by_key = {r.item.key: r for r in rows}
    lines = [{"line": item, "label": services.label(item.instrument), "now": by_key.get(item.key),
              "rate": rate.by_item.get(item.key) if rate else None}
             for item in services.schedule(plan)]
    return {"plan": plan, "lines": lines, "rate": rate, "window": services.RATE_WINDOW_DAYS}


def my_due_context(patient, at: dt.datetime | None = None) -> dict:
    """The patient's home page: what is open (overdue first), what is done, the rate."""
    _plan, rows, rate = services.plan_state(patient, at)
    todo = [{"row": r, "label": services.label(r.item.instrument),
             "href": (reverse("diary_today") if r.item.instrument == due.DIARY
                      else reverse("questionnaire", args=[r.item.instrument]))}
            for r in rows]
    return {"due_open": [t for t in todo if t["row"].open],
            "due_done": [t for t in todo if not t["row"].open],
            "my_rate": rate}
