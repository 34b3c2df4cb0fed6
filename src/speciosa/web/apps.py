"""The web app: pages, and the security signal handlers (audit of logins and lockouts)."""

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "speciosa.web"

    def ready(self) -> None:
        from . import security

        security.connect_signals()
