"""Django app for FHIR interoperability (export, import, the read-only ``/fhir/`` API)."""

from django.apps import AppConfig


class InteropConfig(AppConfig):
    name = "speciosa.interop"
    label = "interop"
    verbose_name = "Interoperability (FHIR)"
    default_auto_field = "django.db.models.BigAutoField"
