from django.apps import AppConfig


class ReadersConfig(AppConfig):
    name = "outlet.readers"
    verbose_name = "Readers"
    default_auto_field = "django.db.models.BigAutoField"
