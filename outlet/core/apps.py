from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "outlet.core"
    verbose_name = "Site"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from outlet.core.metrics.instruments import db_timer_install

        connection_created.connect(db_timer_install, dispatch_uid="metrics-db-timer")
