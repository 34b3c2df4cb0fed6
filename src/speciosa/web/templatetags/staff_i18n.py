"""Words the staff pages show for codes stored in English (issue 17, Languages): a lab
result's flag and an alert's severity. The stored code, the API and the audit stay English;
only the page's word is translated."""

from __future__ import annotations

from django import template
from django.utils.translation import pgettext_lazy

register = template.Library()

#: A lab result's flag (speciosa.knowledge.labs.flag_against, the prolactin tiers).
LAB_FLAGS = {
    "low": pgettext_lazy("lab flag", "low"),
    "normal": pgettext_lazy("lab flag", "normal"),
    "high": pgettext_lazy("lab flag", "high"),
    "critical": pgettext_lazy("lab flag", "critical"),
}


@register.filter
def lab_flag(code):
    """The page's word for a lab flag code; an unknown code is shown as it is."""
    return LAB_FLAGS.get(code, code)

#: An alert's severity (the rules' "urgent", "warning", "info").
SEVERITIES = {
    "urgent": pgettext_lazy("alert severity", "urgent"),
    "warning": pgettext_lazy("alert severity", "warning"),
    "info": pgettext_lazy("alert severity", "info"),
}


@register.filter
def severity(code):
    """The page's word for an alert's severity code; an unknown code is shown as it is."""
    return SEVERITIES.get(code, code)
