from django.apps import AppConfig


class RedirectsConfig(AppConfig):
    name = "outlet.redirects"
    verbose_name = "Redirects"
