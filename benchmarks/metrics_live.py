"""A real Prometheus scrapes a running outlet during a send and a burst of webhooks.

    make metrics-live             (N=200 subscribers, M=50 webhooks; --n / --m to change)

The stack is `make run`'s (manage.py runstack: runserver, a Celery worker with two
processes, beat, localstripe, the mail capture, on SQLite and the embedded broker) in
var/metrics-live/, on ports of its own. Debian's `prometheus` scrapes its /metrics every
second with deploy/prometheus/outlet-alerts.yml loaded. Then an issue goes to N
subscribers (the worker's processes send it) and M signed payment_intent.succeeded
events are posted to the webhook (runserver applies them), and this script asks
Prometheus's own HTTP API whether the counters moved as the work did:

- messages sent, summed over the worker's processes (multiprocess mode), equal N;
- the issue's deliveries by status (read at scrape time) show N sent;
- webhooks applied equal M, and donations paid equal M;
- batch tasks counted by the Celery signals, from the worker's processes;
- every alert rule loaded and evaluated without error; /metrics passes promtool.

The last line is the result:

    metrics-live: n=… messages_sent=… deliveries_sent=… m=… webhooks_applied=…
                  donations_paid=… batch_tasks=… rules=… rule_errors=… promtool=ok seconds=…
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import resources

BASE_DIR = Path(__file__).resolve().parent.parent
VAR = BASE_DIR / "var" / "metrics-live"
RULES = BASE_DIR / "deploy" / "prometheus" / "outlet-alerts.yml"


def log(message: str) -> None:
    print(message, flush=True)


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def wait_for(what: str, check, seconds: float = 120.0, every: float = 0.5):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise SystemExit(f"metrics-live: gave up waiting for {what} after {seconds:.0f}s")


class Prometheus:
    def __init__(self, port: int, target_port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        config = VAR / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {RULES}\n"
            "scrape_configs:\n  - job_name: outlet\n    scrape_timeout: 1s\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
        )
        self.log = (VAR / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={VAR / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def query(self, expr: str) -> float | None:
        status, body = get(f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if status != 200:
            return None
        result = json.loads(body)["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def rules(self) -> list[dict]:
        status, body = get(f"{self.base}/api/v1/rules")
        if status != 200:
            return []
        return [rule for group in json.loads(body)["data"]["groups"] for rule in group["rules"]]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


def start_stack(ports: dict[str, int]) -> subprocess.Popen:
    overrides = {
        "DEBUG": "1",
        "OUTLET_VAR_DIR": str(VAR),
        "STRIPE_DIALECT": "localstripe",
        "STRIPE_API_BASE": f"http://127.0.0.1:{ports['stripe']}",
        "EMAIL_URL": f"smtp://127.0.0.1:{ports['mail']}",
        "SITE_URL": f"http://127.0.0.1:{ports['web']}",
        "NEWSLETTER_TICK_SECONDS": "2",
    }
    os.environ.update(overrides)  # this script reads and writes the same database
    return subprocess.Popen(
        [sys.executable, "manage.py", "runstack", "--no-demo", "--port", str(ports["web"])],
        cwd=BASE_DIR,
        env=dict(os.environ),
        stdout=(VAR / "stack.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_stack(stack: subprocess.Popen) -> None:
    if stack.poll() is None:
        stack.send_signal(signal.SIGINT)  # runstack stops its children in order
        try:
            stack.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)


def work_prepare(n: int, m: int) -> tuple[int, list]:
    """N subscribers and an issue for them; M pending donations. Returns the issue id and
    the donations."""
    from django.utils import timezone

    from outlet.newsletters.models import Subscriber, Subscription, email_digest
    from tests.factories import DonationFactory, IssueFactory, NewsletterFactory

    newsletter = NewsletterFactory()
    now = timezone.now()
    subscribers = Subscriber.objects.bulk_create(
        [
            Subscriber(
                email=f"reader{i}@live.example",
                email_hash=email_digest(f"reader{i}@live.example"),
                status=Subscriber.Status.ACTIVE,
                confirmed_at=now,
            )
            for i in range(n)
        ]
    )
    Subscription.objects.bulk_create(
        [Subscription(subscriber=s, newsletter=newsletter, confirmed_at=now) for s in subscribers]
    )
    issue = IssueFactory(newsletter=newsletter)
    donations = [DonationFactory(stripe_payment_intent_id=f"pi_live{i}") for i in range(m)]
    return issue.pk, donations


def webhooks_post(web_port: int, donations: list) -> int:
    """Post each donation's payment_intent.succeeded, signed, twice (Stripe repeats)."""
    from tests.donations import stripe_events as se

    answered = 0
    for donation in donations:
        body = json.dumps(se.payment_intent_succeeded_2017(donation))
        for _ in range(2):
            request = urllib.request.Request(
                f"http://127.0.0.1:{web_port}/donate/webhook/",
                data=body.encode(),
                headers={"Content-Type": "application/json", "Stripe-Signature": se.sign(body)},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                answered += response.status == 200
    return answered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="subscribers the issue goes to")
    parser.add_argument("--m", type=int, default=50, help="webhook events (each posted twice)")
    args = parser.parse_args()
    if not shutil.which("prometheus") or not shutil.which("promtool"):
        raise SystemExit("metrics-live needs Debian's prometheus (make promtool installs it)")
    started = time.monotonic()
    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    ports = {name: resources.free_port() for name in ("web", "stripe", "mail", "prometheus")}

    stack = start_stack(ports)
    prometheus: Prometheus | None = None
    try:
        web = f"http://127.0.0.1:{ports['web']}"
        wait_for("the stack's /healthz", lambda: get(f"{web}/healthz")[0] == 200, seconds=180)
        log(f"stack up on {web} (runstack: runserver, worker, beat, localstripe, mail capture)")
        prometheus = Prometheus(ports["prometheus"], ports["web"])
        wait_for("Prometheus", lambda: prometheus.query('up{job="outlet"}') == 1.0, seconds=60)
        log(f"prometheus on {prometheus.base} scraping {web}/metrics every second")

        os.environ["DJANGO_SETTINGS_MODULE"] = "outlet.settings"
        sys.path.insert(0, str(BASE_DIR))
        import django

        django.setup()
        from outlet.donations.models import Donation
        from outlet.newsletters.issues import issue_send_now
        from outlet.newsletters.models import Delivery, Issue

        issue_id, donations = work_prepare(args.n, args.m)
        issue_send_now(issue=Issue.objects.get(pk=issue_id))
        answered = webhooks_post(ports["web"], donations)
        log(f"issue {issue_id} sending to {args.n}; {answered} webhook posts answered 200")
        wait_for(
            "the send",
            lambda: Delivery.objects.filter(issue_id=issue_id, status="sent").count() == args.n,
            seconds=300,
        )
        paid = Donation.objects.filter(status=Donation.Status.PAID).count()

        expected = {
            'sum(outlet_newsletter_messages_total{outcome="sent"})': args.n,
            f'max(outlet_issue_deliveries{{issue="{issue_id}",status="sent"}})': args.n,
            'sum(outlet_stripe_webhooks_total{outcome="applied"})': args.m,
            'sum(outlet_stripe_webhooks_total{outcome="repeat"})': args.m,
            'max(outlet_donations{status="paid"})': args.m,
        }
        seen: dict[str, float | None] = {}

        def all_seen() -> bool:
            seen.update({expr: prometheus.query(expr) for expr in expected})
            return all(seen[expr] == value for expr, value in expected.items())

        try:
            wait_for("Prometheus to see the work", all_seen, seconds=30, every=1.0)
        except SystemExit:
            for expr, value in expected.items():
                log(f"  {expr} = {seen.get(expr)} (expected {value})")
            raise
        batch_tasks = prometheus.query(
            'sum(outlet_celery_tasks_total{task="newsletters.issue_batch_send"})'
        )
        if not batch_tasks:
            raise SystemExit("metrics-live: no batch task counted from the worker's processes")
        rules = prometheus.rules()
        rule_errors = [r["name"] for r in rules if r.get("health") != "ok"]
        wait_for("every rule evaluated", lambda: all(r.get("health") for r in prometheus.rules()))
        status, exposition = get(f"{web}/metrics")
        checked = subprocess.run(
            ["promtool", "check", "metrics"], input=exposition, capture_output=True, check=False
        )
        if status != 200 or checked.returncode != 0:
            raise SystemExit(f"metrics-live: promtool refused /metrics: {checked.stdout!r}")
        if rule_errors:
            raise SystemExit(f"metrics-live: rules failing to evaluate: {rule_errors}")
        sent, applied = (seen[expr] or 0 for expr in list(expected)[0:3:2])
        log(
            f"metrics-live: n={args.n} messages_sent={sent:.0f} deliveries_sent={args.n} "
            f"m={args.m} webhooks_applied={applied:.0f} "
            f"donations_paid={paid} batch_tasks={batch_tasks:.0f} rules={len(rules)} "
            f"rule_errors={len(rule_errors)} promtool=ok "
            f"seconds={time.monotonic() - started:.0f}"
        )
    finally:
        if prometheus is not None:
            prometheus.stop()
        stop_stack(stack)


if __name__ == "__main__":
    main()
