from django.apps import AppConfig


class ImportersConfig(AppConfig):
    name = "outlet.importers"
    verbose_name = "Moving in"
