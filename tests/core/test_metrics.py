"""/metrics: only to METRICS_ALLOW, never cached, a valid exposition, and its numbers
move when the work they count happens."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from outlet.core.metrics.access import metrics_allow_parse, metrics_allowed
from outlet.core.models import Heartbeat
from outlet.core.tasks import beat_heartbeat_task
from outlet.donations.models import DonorEmail
from outlet.newsletters.issues import issue_plan, issue_send_now
from outlet.newsletters.models import Issue
from outlet.newsletters.sending import batch_send
from tests.donations import stripe_events as se
from tests.factories import DonationFactory, IssueFactory, NewsletterFactory, SubscriberFactory

pytestmark = pytest.mark.django_db

TOKEN = "t" * 40


@pytest.fixture(autouse=True)
def _allow(settings):
    settings.METRICS_ALLOW = metrics_allow_parse(["127.0.0.1", "::1", f"bearer:{TOKEN}"])
    settings.OUTLET_BEHIND_PROXY = False


def scrape(client, **extra) -> str:
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", **extra)
    assert response.status_code == 200, response.content
    return response.content.decode()


def sample(text: str, metric: str, /, **labels: str) -> float:
    """The value of one sample (0 when the series is absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


# --- Who may read it ------------------------------------------------------------------


def test_loopback_reads_the_metrics(client):
    assert "outlet_issues" in scrape(client)


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.0.7", "2001:db8::1"])
def test_other_addresses_are_refused(client, address):
    response = client.get("/metrics", REMOTE_ADDR=address)
    assert response.status_code == 403
    assert b"outlet_" not in response.content


def test_a_network_in_the_allow_list_reads_them(client, settings):
    settings.METRICS_ALLOW = metrics_allow_parse(["10.0.0.0/8"])
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="11.1.2.3").status_code == 403


def test_the_bearer_token_opens_it_from_anywhere_and_a_wrong_one_does_not(client):
    right = client.get("/metrics", REMOTE_ADDR="10.9.9.9", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    wrong = client.get(
        "/metrics", REMOTE_ADDR="10.9.9.9", HTTP_AUTHORIZATION=f"Bearer {TOKEN[:-1]}x"
    )
    assert right.status_code == 200
    assert wrong.status_code == 403


def test_a_request_relayed_by_a_proxy_on_loopback_is_not_taken_for_loopback(client):
    """Varnish or a TLS terminator on the same machine: every reader comes from 127.0.0.1
    with X-Forwarded-For; without OUTLET_BEHIND_PROXY that header is not trusted."""
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="8.8.8.8")
    assert response.status_code == 403


@pytest.mark.parametrize("behind_proxy", [False, True])
@pytest.mark.parametrize(
    "header",
    [
        {"HTTP_X_FORWARDED_FOR": "127.0.0.1"},
        {"HTTP_X_FORWARDED_FOR": "8.8.8.8, 127.0.0.1"},
        {"HTTP_FORWARDED": "for=127.0.0.1"},
    ],
)
def test_a_forwarded_request_is_judged_by_its_token_alone(client, settings, behind_proxy, header):
    """Scrapes never come through a proxy: a forwarded header, forged straight to gunicorn
    or added by Varnish (even for /%6detrics), opens nothing but a bearer token,
    whatever OUTLET_BEHIND_PROXY says."""
    settings.OUTLET_BEHIND_PROXY = behind_proxy
    from_loopback = client.get("/metrics", REMOTE_ADDR="127.0.0.1", **header)
    with_token = client.get(
        "/metrics", REMOTE_ADDR="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **header
    )
    assert (from_loopback.status_code, with_token.status_code) == (403, 200)


def test_a_worker_machine_refuses_a_host_it_does_not_answer_to():
    refused, body = _wsgi_get({"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "rebind.attacker.example"})
    assert refused.startswith("400")
    assert b"outlet_" not in body


def test_a_worker_machine_judges_a_forwarded_request_by_its_token_alone():
    refused, _ = _wsgi_get({"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=127.0.0.1"})
    assert refused.startswith("403")


def test_prometheus_asking_by_the_machine_address_is_not_refused_for_its_host(client):
    """Prometheus sends Host: <target address>, which ALLOWED_HOSTS does not list."""
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_HOST="10.0.0.5:8000")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "10.0.0.5:8000", "[::1]:8000", "localhost", "localhost:8000", "news.example"],
)
def test_an_ip_literal_localhost_or_an_allowed_host_is_answered(client, settings, host):
    settings.ALLOWED_HOSTS = ["news.example"]
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_HOST=host)
    assert response.status_code == 200


@pytest.mark.parametrize("host", ["rebind.attacker.example", "rebind.attacker.example:8000", "a b"])
def test_any_other_host_is_refused_against_dns_rebinding(client, settings, host):
    """A page on a rebound name, in a browser inside METRICS_ALLOW, asks with its own Host."""
    settings.ALLOWED_HOSTS = ["news.example"]
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_HOST=host)
    assert response.status_code == 400
    assert b"outlet_" not in response.content


@pytest.mark.parametrize(
    "entries", [["localhost"], ["bearer:short"], ["10.0.0.300"], ["metrics-token"]]
)
def test_a_malformed_allow_list_stops_startup_naming_it(entries):
    with pytest.raises(ImproperlyConfigured, match="METRICS_ALLOW"):
        metrics_allow_parse(entries)


SECRET = "s3cr3t-" + "k" * 33


def test_the_tokens_are_not_in_the_allow_lists_repr():
    """Django's debug page and error reports show settings by their repr."""
    allow = metrics_allow_parse(["127.0.0.1", f"bearer:{SECRET}"])
    assert SECRET not in repr(allow)
    assert SECRET not in str(allow)


HEX_SECRET = "0123456789abcdef" * 3


@pytest.mark.parametrize(
    "entry", [f"Bearer:{SECRET}", f"baerer:{SECRET}", SECRET, HEX_SECRET, f"bearer{HEX_SECRET}"]
)
def test_a_mistyped_token_entry_stops_startup_without_printing_the_token(entry):
    with pytest.raises(ImproperlyConfigured, match="METRICS_ALLOW") as refused:
        metrics_allow_parse(["127.0.0.1", entry])
    assert SECRET not in str(refused.value)
    assert HEX_SECRET not in str(refused.value)


@pytest.mark.parametrize("entry", ["10.0.0.9/0", "10.0.0.9/24", "2001:db8::1/64"])
def test_a_network_with_host_bits_set_is_refused_not_widened(entry):
    """strict=False would quietly read 10.0.0.9/0 as 0.0.0.0/0: everyone."""
    with pytest.raises(ImproperlyConfigured, match="host bits"):
        metrics_allow_parse([entry])


def test_spaces_after_bearer_are_not_part_of_the_token():
    allow = metrics_allow_parse([f"bearer:  {TOKEN} "])
    assert metrics_allowed(allow, {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"})


# --- Never cached -----------------------------------------------------------------------


def test_the_answer_is_never_cached(client):
    allowed = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    refused = client.get("/metrics", REMOTE_ADDR="10.1.2.3")

    assert allowed["Cache-Control"] == "private, no-store"
    assert refused["Cache-Control"] == "private, no-store"
    assert refused.status_code == 403  # not the page the allowed scrape was given


# Varnish refusing /metrics: tests/articles/varnish/metrics_never_through_the_cache.vtc


# --- A valid exposition ---------------------------------------------------------------


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (make promtool)")
def test_promtool_accepts_the_exposition(client):
    Heartbeat.objects.create(component="beat", name="beat", last_seen=timezone.now())
    IssueFactory(status=Issue.Status.PAUSED, bounce_breaker_tripped=True)

    checked = subprocess.run(
        ["promtool", "check", "metrics"],
        input=scrape(client),
        capture_output=True,
        text=True,
        check=False,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "", checked.stdout  # no lint complaints either


# --- The numbers move with the work ---------------------------------------------------


def test_messages_sent_move_when_an_issue_is_sent(client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    newsletter = NewsletterFactory()
    for _ in range(3):
        SubscriberFactory(newsletters=[newsletter])
    issue = IssueFactory(newsletter=newsletter)
    before = scrape(client)

    issue_send_now(issue=issue)
    issue_plan(issue=Issue.objects.get(pk=issue.pk))
    while batch_send(issue_id=issue.pk).claimed:
        pass

    after = scrape(client)
    sent = "outlet_newsletter_messages_total"
    assert sample(after, sent, outcome="sent") - sample(before, sent, outcome="sent") == 3
    deliveries = {"issue": str(issue.pk), "status": "sent"}
    assert sample(after, "outlet_issue_deliveries", **deliveries) == 3
    assert sample(after, "outlet_issue_planned_deliveries", issue=str(issue.pk)) == 3


def test_webhooks_are_counted_by_type_and_outcome(client):
    donation = DonationFactory()
    evt = se.payment_intent_succeeded_2017(donation)
    name = "outlet_stripe_webhooks_total"
    applied = {"type": "payment_intent.succeeded", "outcome": "applied"}
    repeat = {"type": "payment_intent.succeeded", "outcome": "repeat"}
    before = scrape(client)

    se.post_event(client, evt)
    se.post_event(client, evt)
    se.post_event(client, evt, signature="t=1,v1=forged")
    se.post_event(client, se.event("customer.created", {"id": "cus_1"}))

    after = scrape(client)
    assert sample(after, name, **applied) - sample(before, name, **applied) == 1
    assert sample(after, name, **repeat) - sample(before, name, **repeat) == 1
    rejected, ignored = {"outcome": "rejected"}, {"type": "other", "outcome": "ignored"}
    assert sample(after, name, **rejected) - sample(before, name, **rejected) == 1
    assert sample(after, name, **ignored) - sample(before, name, **ignored) == 1
    assert sample(after, "outlet_donations", status="paid", currency=donation.currency) == 1
    assert sample(after, "outlet_donor_emails_waiting", kind="receipt") == 1


def test_a_receipt_waiting_shows_its_age(client):
    donation = DonationFactory()
    email = DonorEmail.objects.create(
        kind=DonorEmail.Kind.RECEIPT, donor=donation.donor, donation=donation
    )
    DonorEmail.objects.filter(pk=email.pk).update(created_at=timezone.now() - timedelta(minutes=15))

    age = sample(scrape(client), "outlet_donor_emails_oldest_waiting_seconds", kind="receipt")

    assert 14 * 60 < age < 20 * 60


def test_paused_issues_say_why_without_their_text(client):
    IssueFactory(status=Issue.Status.PAUSED, bounce_breaker_tripped=True, pause_reason="x" * 300)
    IssueFactory(status=Issue.Status.PAUSED, auto_resume_at=timezone.now())
    IssueFactory(status=Issue.Status.PAUSED, pause_reason="Paused by someone@example.org.")

    text = scrape(client)

    for reason in ("bounce_breaker", "mail_server_down", "editor"):
        assert sample(text, "outlet_issues_paused", reason=reason) == 1
    assert "example.org" not in text


def test_celery_tasks_and_beat_heartbeat_are_counted(client):
    name = "outlet_celery_tasks_total"
    labels = {"task": "core.beat_heartbeat", "state": "succeeded"}
    before = scrape(client)

    beat_heartbeat_task.apply()

    after = scrape(client)
    assert sample(after, name, **labels) - sample(before, name, **labels) == 1
    beat = sample(after, "outlet_heartbeat_timestamp_seconds", component="beat", name="beat")
    assert abs(beat - timezone.now().timestamp()) < 60


def test_queue_depth_is_read_from_the_broker(client):
    text = scrape(client)
    for queue in ("default", "mail", "bulk", "purge"):
        assert f'outlet_celery_queue_messages{{queue="{queue}"}}' in text
    assert sample(text, "outlet_metrics_part_up", part="queues") == 1


def test_requests_are_counted_by_view_not_by_path(client):
    client.get("/healthz")
    text = scrape(client)
    assert sample(text, "outlet_http_responses_total", view="healthz", method="GET") >= 1
    assert "/healthz" not in text


# --- A worker machine's own exporter ------------------------------------------------------


def _wsgi_get(environ: dict) -> tuple[str, bytes]:
    from outlet.core.management.commands.metrics_serve import counters_app

    answer: list[str] = []
    body = b"".join(
        counters_app(
            {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", **environ},
            lambda status, headers: answer.append(status),
        )
    )
    return answer[0], body


def test_a_worker_machine_serves_its_task_counters_to_the_allowed_only():
    beat_heartbeat_task.apply()

    status, body = _wsgi_get({"REMOTE_ADDR": "127.0.0.1"})
    refused, _ = _wsgi_get({"REMOTE_ADDR": "10.1.2.3"})

    assert status.startswith("200")
    assert sample(body.decode(), "outlet_celery_tasks_total", task="core.beat_heartbeat") >= 1
    assert refused.startswith("403")


def test_click_lines_buffered_and_dropped_while_redis_is_away_are_counted(client, monkeypatch):
    import os

    from outlet.newsletters.measuring import recording

    class RedisAway:
        def rpush(self, *lines):
            raise ConnectionError("Redis is away")

    monkeypatch.setattr(recording._ProcessBatch, "KEPT_LINES", 2)
    batch = recording._ProcessBatch()
    batch.pid = os.getpid()  # this process's batch already: no pushing thread
    name = "outlet_tracking_lines_total"
    before = scrape(client)

    for n in range(5):
        batch.add(None, f"line {n}")
    with pytest.raises(ConnectionError):
        batch.push(RedisAway())

    after = scrape(client)
    assert sample(after, name, outcome="buffered") - sample(before, name, outcome="buffered") == 5
    assert sample(after, name, outcome="dropped") - sample(before, name, outcome="dropped") == 3
    assert len(batch.lines) == 2


def test_donations_past_the_estimate_are_read_once_a_minute_from_the_shared_cache(
    client, monkeypatch
):
    from outlet.core.metrics import gauges

    monkeypatch.setattr(gauges, "donations_many", lambda: True)
    DonationFactory(status="paid")
    first = sample(scrape(client), "outlet_donations", status="paid", currency="usd")

    DonationFactory(status="paid")
    cached = sample(scrape(client), "outlet_donations", status="paid", currency="usd")
    monkeypatch.setattr(gauges, "donations_many", lambda: False)
    live = sample(scrape(client), "outlet_donations", status="paid", currency="usd")

    assert (first, cached, live) == (1, 1, 2)


def test_counter_files_of_ended_processes_are_cleared_and_live_ones_kept(settings, tmp_path):
    import os

    from outlet.core.metrics.files import metrics_files_clear

    settings.METRICS_DIR = tmp_path
    finished = subprocess.Popen(["true"])
    finished.wait()
    (tmp_path / f"counter_{finished.pid}.db").write_bytes(b"")
    (tmp_path / f"counter_{os.getpid()}.db").write_bytes(b"")

    assert metrics_files_clear(dead_only=True) == 1
    assert [p.name for p in tmp_path.iterdir()] == [f"counter_{os.getpid()}.db"]
    assert metrics_files_clear() == 1


def test_database_statements_of_a_request_are_timed_by_the_time_it_ends(admin_client):
    client = admin_client
    from django.db import connection

    before = scrape(client)
    count = "outlet_db_query_duration_seconds_count"
    queries = []

    def counted(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counted):
        assert client.get("/admin/", REMOTE_ADDR="127.0.0.1").status_code == 200

    after = scrape(client)
    moved = sample(after, count, vendor=connection.vendor) - sample(
        before, count, vendor=connection.vendor
    )
    assert len(queries) > 0
    assert moved >= len(queries)


def test_database_statements_of_a_task_are_timed_by_the_time_it_ends(client):
    from django.db import connection

    from outlet.core.metrics.celery_signals import _task_postrun, _task_prerun

    before = scrape(client)
    _task_prerun(task_id="t-1")
    Heartbeat.objects.count()
    _task_postrun(task_id="t-1", state="SUCCESS")
    after = scrape(client)

    count = "outlet_db_query_duration_seconds_count"
    vendor = connection.vendor
    # The scrape's own statements count too; the task's one must be among them.
    assert sample(after, count, vendor=vendor) > sample(before, count, vendor=vendor)
