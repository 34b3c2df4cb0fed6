"""Django app configuration for the research pages."""

from django.apps import AppConfig


class ResearchConfig(AppConfig):
    """De-identified cohort pages for the researcher role (no models of its own)."""

    name = "speciosa.research"
    label = "research"
    verbose_name = "Research"
