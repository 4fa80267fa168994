"""
`manage.py metrics_serve --port 9101`: this machine's counters for Prometheus, for a
machine that runs Celery workers (or beat) and no web process.

It serves only what the processes of this machine wrote to PROMETHEUS_MULTIPROC_DIR
(task runtimes and failures, messages sent); the business gauges, read from the
database, come from the web machines' /metrics. The same METRICS_ALLOW applies.
"""

from __future__ import annotations

from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.conf import settings
from django.core.management.base import BaseCommand
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from outlet.core.metrics.access import metrics_allowed, metrics_host_allowed
from outlet.core.metrics.views import CACHE_CONTROL, HOST_REFUSED


def counters_app(environ, start_response):
    """The WSGI application: GET /metrics, to METRICS_ALLOW only."""
    headers = [("Cache-Control", CACHE_CONTROL)]
    if environ.get("PATH_INFO") != "/metrics" or environ.get("REQUEST_METHOD") != "GET":
        start_response("404 Not Found", [*headers, ("Content-Type", "text/plain")])
        return [b"Not found."]
    if not metrics_host_allowed(environ, settings.ALLOWED_HOSTS):
        start_response("400 Bad Request", [*headers, ("Content-Type", "text/plain")])
        return [HOST_REFUSED.encode()]
    if not metrics_allowed(settings.METRICS_ALLOW, environ):
        start_response("403 Forbidden", [*headers, ("Content-Type", "text/plain")])
        return [b"Not allowed: this address or token is not in METRICS_ALLOW."]
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=str(settings.METRICS_DIR))
    start_response("200 OK", [*headers, ("Content-Type", CONTENT_TYPE_LATEST)])
    return [generate_latest(registry)]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass  # one line per scrape every 15 s says nothing


class Command(BaseCommand):
    help = "Serve this machine's Celery counters at /metrics (for a machine without gunicorn)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=9101)
        parser.add_argument("--bind", default="127.0.0.1", help="Address to listen on.")

    def handle(self, *args, **options):
        with make_server(
            options["bind"], options["port"], counters_app, handler_class=_QuietHandler
        ) as server:
            self.stdout.write(f"Counters at http://{options['bind']}:{options['port']}/metrics")
            server.serve_forever()
