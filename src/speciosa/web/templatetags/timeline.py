"""The patient page's timeline entries, written in Python (issue 18, page latency).

The same HTML as the template loop it replaces, byte for byte (``tests/web/test_timeline_html.py``
renders both): the loop's 40 entries, each with two dates, up to three links and five
translated words, cost 8.6 ms of template rendering per patient page, the largest single part
of the page's template time.
"""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, pgettext

register = template.Library()


def _text(value) -> str:
    """``{{ value }}``: the text, escaped. (The template's own words, ``{% translate "…" %}``,
    are not escaped there, nor here: a literal in a template is safe, and so is its translation.)"""
    return str(conditional_escape(value))  # None shows as "None", as in a template


def _date(value, fmt: str) -> str:
    """``{{ value|date:fmt }}``: in the current time zone, formatted as the page's language does."""
    if not value:
        return ""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return formats.date_format(value, fmt)


def _item(e, patient) -> str:
    record = e.record
    retracted = getattr(record, "retracted", False)
    kind = e.record_kind
    out = [f'\n  <li class="event {_text(e.kind)}{" abnormal" if e.abnormal else ""}'
           f'{" retracted" if retracted else ""}">\n'
           f'    <time datetime="{_text(_date(e.at, "c"))}">{_text(_date(e.at, "D j M Y, H:i"))}</time>\n'
           f'    <div class="what"><strong>{_text(e.title)}</strong>']
    if e.abnormal:
        out.append(f' <span class="badge warn">{pgettext("badge: look at this value", "check")}</span>')
    if retracted:
        out.append(f' <span class="badge">'
                   f'{pgettext("a record withdrawn as entered in error", "withdrawn")}</span>')
    out.append("\n      ")
    if e.detail:
        out.append(f'<div class="detail">{_text(e.detail)}</div>')
    source = getattr(record, "get_source_display", None)
    out.append(f'\n      <div class="meta muted small">{_text(source() if source else "")}')
    who = getattr(record, "entered_by", None)
    if who:
        name = who.get_full_name()
        out.append(f": {_text(name) if name else gettext('a login without a name')}")
    if getattr(record, "replaces_id", None):
        out.append(" · " + gettext("corrected: %(reason)s") % {"reason": _text(getattr(record, "change_reason", ""))})
    out.append("\n      ")
    if e.kind == "taper":
        out.append(f' · <a href="{_text(reverse("taper_plan", args=[patient.pk, record.pk]))}">'
                   f'{gettext("open the plan")}</a>')
    out.append("\n      ")
    if kind:
        out.append(f' · <a href="{_text(reverse("record_history", args=[patient.pk, kind, record.pk]))}">'
                   f'{gettext("history")}</a>')
        if not retracted:
            correct = pgettext("verb: correct an entry", "correct")
            if kind == "medication":
                url = reverse("medication_correct", args=[patient.pk, record.pk])
            elif kind == "episode":
                url = reverse("episode_correct", args=[patient.pk, record.pk])
            else:
                url = reverse("record_correct", args=[patient.pk, kind, record.pk])
            out.append(f' · <a href="{_text(url)}">{correct}</a>')
    out.append("</div>\n    </div>\n  </li>\n")
    return "".join(out)


@register.simple_tag
def timeline_items(events, patient):
    """Every entry of ``events`` as the timeline's ``<li>`` items, or the "no entries" item."""
    if not events:
        return mark_safe(f"<li>{gettext('No entries yet.')}</li>")  # noqa: S308 - our own words
    return mark_safe("".join(_item(e, patient) for e in events))  # noqa: S308 - every value escaped in _item
