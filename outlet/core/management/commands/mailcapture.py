"""The development SMTP capture: every message the site sends lands in var/outbox."""

import signal
import threading

from aiosmtpd.controller import Controller
from django.conf import settings
from django.core.management.base import BaseCommand

from outlet.core.outbox import MaildirHandler


class Command(BaseCommand):
    help = "Accept mail on loopback and keep it for the staff outbox page (/_outbox/)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=1025)

    def handle(self, *args, **options):
        controller = Controller(
            MaildirHandler(settings.OUTLET_OUTBOX_DIR),
            hostname="127.0.0.1",
            port=options["port"],
            data_size_limit=50 * 1024 * 1024,
        )
        controller.start()
        self.stdout.write(
            f"Capturing mail on 127.0.0.1:{options['port']} into {settings.OUTLET_OUTBOX_DIR}"
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        stop.wait()
        controller.stop()
