"""Django app for FHIR interoperability (export, import, the read-only ``/fhir/`` API)."""

from django.apps import AppConfig


class InteropConfig(AppConfig):
    name = "speciosa.interop"
    label = "interop"
    verbose_name = "Interoperability (FHIR)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from speciosa.clinic.models import Site

        post_save.connect(_site_saved, sender=Site, dispatch_uid="interop-site-system")

        from django.contrib.auth.signals import user_logged_out

        user_logged_out.connect(_logged_out, dispatch_uid="interop-smart-online-access")


def _logged_out(sender, request, user, **kwargs) -> None:
    """``online_access`` lasts while the person is logged in: logging out ends it."""
    if user is not None:
        from .smart import end_online_access

        end_online_access(user)


def _site_saved(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    """A new site gets its unique, stable MRN identifier system (``interop.SiteSystem``)."""
    if created and not raw:
        from .models import site_system

        site_system(instance)
