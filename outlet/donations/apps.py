from django.apps import AppConfig


class DonationsConfig(AppConfig):
    name = "outlet.donations"
    verbose_name = "Donations"
