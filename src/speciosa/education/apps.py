from django.apps import AppConfig


class EducationConfig(AppConfig):
    """Education pages, reading assignments and shared decisions."""

    name = "speciosa.education"
    label = "education"
    default_auto_field = "django.db.models.BigAutoField"
