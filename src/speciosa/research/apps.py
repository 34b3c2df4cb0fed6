"""Django app configuration for the research pages."""

from django.apps import AppConfig


class ResearchConfig(AppConfig):
    """De-identified cohort pages and the research exports made from them."""

    name = "speciosa.research"
    label = "research"
    verbose_name = "Research"
