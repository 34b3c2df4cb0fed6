from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "speciosa.messaging"
    label = "messaging"
    verbose_name = "Messages"
    default_auto_field = "django.db.models.BigAutoField"
