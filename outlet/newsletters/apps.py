from django.apps import AppConfig


class NewslettersConfig(AppConfig):
    name = "outlet.newsletters"
    verbose_name = "Newsletters"

    def ready(self) -> None:
        # Connects the anymail tracking and inbound receivers.
        from outlet.newsletters import tracking  # noqa: F401
