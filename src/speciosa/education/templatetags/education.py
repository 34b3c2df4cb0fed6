"""Template tags for the education partials included in other apps' pages."""

from __future__ import annotations

from django import template
from django.utils.translation import get_language

from speciosa.web.forms import new_token

from .. import content, services

register = template.Library()


@register.simple_tag
def education_summary(patient) -> dict:
    """Assignments (with titles), the latest decision, the page list and a fresh form token."""
    titles = {p.id: p.title for p in content.all_pages()}
    assignments = [
        {"page_id": a.page_id, "title": titles.get(a.page_id, a.page_id), "read_at": a.read_at,
         "assigned_at": a.assigned_at}
        for a in services.assignments_for(patient) if a.page_id in titles
    ]
    return {"assignments": assignments, "decision": services.latest_decision(patient),
            "pages": content.all_pages(), "token": new_token()}


@register.simple_tag
def reading_summary(patient) -> dict:
    """The patient's unread assigned pages."""
    rows = services.reading_list(patient)
    language = get_language()
    return {"to_read": [{**r, "page": content.translate_page(r["page"], language)[0]}
                        for r in rows if r["assigned"] and not r["read"]]}
