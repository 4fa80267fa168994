from django.apps import AppConfig


class DonationsConfig(AppConfig):
    name = "outlet.donations"
    verbose_name = "Donations"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
