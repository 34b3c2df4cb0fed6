from django.apps import AppConfig


class SchedulesConfig(AppConfig):
    name = "speciosa.schedules"
    label = "schedules"
    verbose_name = "Schedules"
    default_auto_field = "django.db.models.BigAutoField"
