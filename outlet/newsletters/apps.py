from django.apps import AppConfig


class NewslettersConfig(AppConfig):
    name = "outlet.newsletters"
    verbose_name = "Newsletters"

    def ready(self) -> None:
        from django.core import checks

        from outlet.newsletters.esp_webhooks import esp_webhooks_check

        checks.register(esp_webhooks_check, checks.Tags.security, deploy=True)
        # Connects the anymail tracking and inbound receivers.
        from outlet.articles.signals import articles_taken_down
        from outlet.newsletters import tracking  # noqa: F401
        from outlet.newsletters.issues import issues_pause_for_takedown

        articles_taken_down.connect(
            issues_pause_for_takedown, dispatch_uid="newsletters.takedown_pause"
        )
