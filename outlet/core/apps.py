from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "outlet.core"
    verbose_name = "Site"
