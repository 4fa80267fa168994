from django.apps import AppConfig


class ArticlesConfig(AppConfig):
    name = "outlet.articles"
    verbose_name = "Publishing"
