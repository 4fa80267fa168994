from django.apps import AppConfig


class PagesConfig(AppConfig):
    name = "outlet.pages"
    verbose_name = "Pages"
