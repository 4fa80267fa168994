"""
`make run` and `make serve`: the whole site as child processes of one command.

Development (the default) starts, beside the web server: a Celery worker and
beat on the embedded broker, localstripe on STRIPE_API_BASE's port with its
webhooks pointed at the site, and the SMTP capture behind /_outbox/. Production
(`--production`) starts gunicorn, a worker and beat against whatever
DATABASE_URL and CELERY_BROKER_URL name. Ctrl-C stops every child.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from outlet.celery import QUEUES
from outlet.core.management.commands.demo_load import (
    DEMO_CONTRIBUTOR_PASSWORD,
    DEMO_CONTRIBUTOR_USERNAME,
    DEMO_EDITOR_PASSWORD,
    DEMO_EDITOR_USERNAME,
)
from outlet.core.metrics.files import metrics_files_clear
from outlet.donations.stripe_gateway import localstripe_webhook_register

#: The stack's one worker takes every queue (production runs one worker per queue).
WORKER_QUEUES = ",".join(QUEUES)


def child_environ(*, port: int, production: bool, environ: dict[str, str]) -> dict[str, str]:
    """The environment of the stack's processes. In development, links in emails point at
    the port the stack runs on (`make run PORT=8040`) unless SITE_URL says otherwise."""
    env = dict(environ)
    if not production and "SITE_URL" not in env:
        env["SITE_URL"] = f"http://127.0.0.1:{port}"
    if not production:
        # This stack's Stripe objects, kept with its database (see core/localstripe_server.py).
        env.setdefault("LOCALSTRIPE_STORE", str(Path(settings.VAR_DIR) / "localstripe.pickle"))
    return env


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _wait_for_port(port: int, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.2)
    return False


class Command(BaseCommand):
    help = (
        "Run the web site with its worker, beat, localstripe and mail capture (Ctrl-C stops all)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--production",
            action="store_true",
            help="gunicorn + worker + beat only, against DATABASE_URL and CELERY_BROKER_URL.",
        )
        parser.add_argument("--no-demo", action="store_true", help="Do not load demo content.")

    def handle(self, *args, **options):
        port: int = options["port"]
        production: bool = options["production"]
        if not production and not settings.DEBUG:
            raise CommandError(
                "make run is the development stack and needs DEBUG=1 (the Makefile sets it). "
                "For production use `make serve`."
            )
        self._check_ports(port, production)
        self.environ = child_environ(port=port, production=production, environ=dict(os.environ))

        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        if production:
            call_command("collectstatic", interactive=False, verbosity=0)
        elif not options["no_demo"]:
            call_command("demo_load")

        metrics_files_clear()
        self.children: list[tuple[str, subprocess.Popen]] = []
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        try:
            self._start_all(port, production)
            self._watch()
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            self._stop_all()

    # --- Ports -----------------------------------------------------------------

    def _check_ports(self, port: int, production: bool) -> None:
        needed = {"web site": (port, f"make run PORT={port + 1}")}
        if not production:
            stripe_port = urlsplit(settings.STRIPE_API_BASE).port
            if stripe_port:
                needed["localstripe"] = (
                    stripe_port,
                    f"make run STRIPE_PORT={stripe_port + 1} "
                    f"(or STRIPE_API_BASE=http://127.0.0.1:{stripe_port + 1})",
                )
            if settings.EMAIL_HOST in ("127.0.0.1", "localhost"):
                needed["mail capture"] = (
                    settings.EMAIL_PORT,
                    f"make run MAIL_PORT={settings.EMAIL_PORT + 1} "
                    f"(or EMAIL_URL=smtp://127.0.0.1:{settings.EMAIL_PORT + 1})",
                )
        for what, (number, example) in needed.items():
            if not _port_free(number):
                raise CommandError(
                    f"Port {number} for the {what} is already in use (another `make run`?). "
                    f"Stop what holds it, or choose another port: {example}"
                )

    # --- Children --------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        # Each child in its own process group: Ctrl-C reaches us once, and we stop them in order.
        proc = subprocess.Popen(argv, start_new_session=True, env=self.environ)
        self.children.append((name, proc))
        return proc

    def _start_all(self, port: int, production: bool) -> None:
        python = sys.executable
        manage = [python, str(settings.BASE_DIR / "manage.py")]
        celery = [python, "-m", "celery", "-A", "outlet"]
        if not production:
            stripe_port = urlsplit(settings.STRIPE_API_BASE).port or 8420
            self._spawn(
                "localstripe",
                [python, "-m", "outlet.core.localstripe_server", "--port", str(stripe_port)],
            )
            self._spawn(
                "mail capture", [*manage, "mailcapture", "--port", str(settings.EMAIL_PORT)]
            )
            if not _wait_for_port(stripe_port):
                raise CommandError(f"localstripe did not start on port {stripe_port}.")
            localstripe_webhook_register(site_url=f"http://127.0.0.1:{port}")
            self.stdout.write(f"localstripe on {settings.STRIPE_API_BASE}, webhooks registered.")
        self._spawn(
            "worker",
            [
                *celery,
                "worker",
                "-Q",
                WORKER_QUEUES,
                "--loglevel",
                "INFO",
                "--concurrency",
                os.environ.get("OUTLET_WORKER_CONCURRENCY", "2"),
                "--hostname",
                "worker@%h",
            ],
        )
        self._spawn(
            "beat",
            [
                *celery,
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(settings.CELERY_BEAT_SCHEDULE_FILENAME),
            ],
        )
        if production:
            self._spawn(
                "web",
                [
                    python,
                    "-m",
                    "gunicorn",
                    "--config",
                    str(settings.BASE_DIR / "deploy" / "gunicorn.conf.py"),
                    "outlet.wsgi",
                    "--bind",
                    f"0.0.0.0:{port}",
                    "--workers",
                    os.environ.get("WEB_CONCURRENCY", "4"),
                    "--access-logfile",
                    "-",
                ],
            )
        else:
            self._spawn("web", [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"])
        if not _wait_for_port(port):
            raise CommandError(f"The web site did not start on port {port}.")
        self._banner(port, production)

    def _banner(self, port: int, production: bool) -> None:
        url = f"http://127.0.0.1:{port}/"
        lines = ["", "=" * 64, f"  {settings.OUTLET_NAME} is running: {url}"]
        if not production:
            lines += [
                f"  Admin:   {url}admin/",
                f"  Editor:  username '{DEMO_EDITOR_USERNAME}', password '{DEMO_EDITOR_PASSWORD}'",
                f"  Writer:  username '{DEMO_CONTRIBUTOR_USERNAME}', "
                f"password '{DEMO_CONTRIBUTOR_PASSWORD}' (a contributor: cannot publish)",
                f"  Mail:    {url}_outbox/  (every email the site sends, staff only)",
                f"  Health:  {url}healthz   Metrics: {url}metrics (from this machine)",
                f"  Stripe:  localstripe at {settings.STRIPE_API_BASE}",
                "           cards 4242 4242 4242 4242 (paid), 4000 0025 0000 3155 (3-D Secure)",
            ]
        lines += ["  Ctrl-C stops everything.", "=" * 64, ""]
        self.stdout.write("\n".join(lines))

    def _watch(self) -> None:
        while True:
            for name, proc in self.children:
                if proc.poll() is not None:
                    raise CommandError(
                        f"The {name} stopped (exit code {proc.returncode}); stopping the rest."
                    )
            time.sleep(0.5)

    def _stop_all(self) -> None:
        # SIGTERM to each child alone first, so a Celery worker finishes its task (warm
        # shutdown) instead of having its pool killed under it; then clear each group.
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 15
        for _name, proc in self.children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.stdout.write("All stopped.")
