from django.apps import AppConfig


class NewslettersConfig(AppConfig):
    name = "outlet.newsletters"
    verbose_name = "Newsletters"
