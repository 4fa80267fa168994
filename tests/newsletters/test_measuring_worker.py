"""Done-when for issue statistics: a real worker sends an issue to 1,000 subscribers,
readers click and open, one unsubscribes, one gives $10 from the issue's donate
link, and the admin's issue page shows each figure exactly.

Clicks and opens take the production path: the answers go into this process's
batch, then the Redis list, and the worker's flush task writes them."""

from __future__ import annotations

import re
import time

import pytest
import redis
from django.contrib.auth.models import User

from outlet.celery import app
from outlet.donations.models import Donation
from outlet.newsletters.issues import issue_send_now
from outlet.newsletters.measuring.recording import tracking_process_push
from outlet.newsletters.models import Issue, IssueStats
from outlet.newsletters.tasks import tracking_flush_task
from tests.conftest import SmtpSink, WorkerProcess
from tests.factories import AppealFactory, DonationFactory, IssueFactory, NewsletterFactory
from tests.newsletters.bulk import subscribers_bulk_create

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SUBSCRIBERS = 1000
REDIS_URL = "redis://127.0.0.1:6379/5"
CACHE_URL = "rediscache://127.0.0.1:6379/5"  # db 5 is this workstream's own
TRACKED = re.compile(r"https?://[^\s\"<>]+?/n/c/[^\s\"<>/]+/")
PIXEL = re.compile(r'src="https?://[^"]+?(/n/o/[^"/]+/)"')


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def redis_cache(settings):
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("Redis is not running")
    settings.CACHES = {
        "default": {
            "BACKEND": "outlet.core.cache.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
    client.flushdb()
    yield
    client.flushdb()


def test_an_issue_to_1000_readers_reports_each_figure_exactly(client, redis_cache):
    app.control.purge()  # tasks other tests left in the broker
    sink = SmtpSink()
    newsletter = NewsletterFactory()
    emails = subscribers_bulk_create(newsletter=newsletter, count=SUBSCRIBERS)
    issue = IssueFactory(
        newsletter=newsletter,
        appeal=AppealFactory(),
        body='<p>Also: <a href="https://example.org/data">the data</a>.</p>',
    )
    worker = WorkerProcess(extra_env={"EMAIL_URL": sink.url, "CACHE_URL": CACHE_URL})
    try:
        worker.wait_ready()
        issue_send_now(issue=issue)
        wait_until(
            lambda: Issue.objects.get(pk=issue.pk).status == Issue.Status.SENT,
            120,
            f"the send; log:\n{worker.log_path}",
        )
        assert sorted(sink.recipients()) == sorted(emails)
        messages = {email: sink.to(email)[0] for email in emails}

        def text(email: str) -> str:
            return messages[email].get_body(("plain",)).get_content()

        def html(email: str) -> str:
            return messages[email].get_body(("html",)).get_content()

        # 100 readers click their first link, 20 of them twice; 60 open it.
        for number, email in enumerate(emails[:100]):
            url = path_of(TRACKED.findall(text(email))[0])
            assert client.get(url).status_code == 302
            if number < 20:
                client.get(url)
        for email in emails[40:100]:
            assert client.get(PIXEL.search(html(email)).group(1)).status_code == 200

        # One reader unsubscribes with the message's one-click header.
        leaving = messages[emails[500]]["List-Unsubscribe"].split(">")[0].lstrip("<")
        assert client.post(path_of(leaving), {"List-Unsubscribe": "One-Click"}).status_code == 200

        # One reader gives $10 from the issue's donate link.
        donate = re.search(rf"{issue.appeal.button_label}: (\S+)", text(emails[700])).group(1)
        assert TRACKED.fullmatch(donate)
        page = client.get(client.get(path_of(donate))["Location"])
        source = re.search(r'name="source" value="([^"]*)"', page.content.decode()).group(1)
        assert source == f"issue-{issue.pk}"
        DonationFactory(amount=1000, status=Donation.Status.PAID, source=source)

        # Tampered tokens never leave the site.
        genuine = path_of(TRACKED.findall(text(emails[0]))[0])
        for tampered in (
            genuine[:-3] + "x/",
            genuine.replace("/n/c/", "/n/c/9"),
            "/n/c//evil.example/",
        ):
            assert client.get(tampered)["Location"] == "/"

        tracking_process_push()
        tracking_flush_task.delay()
        wait_until(
            lambda: IssueStats.objects.filter(issue=issue, clicks=121).exists(),
            60,
            "the worker's flush",
        )
    finally:
        worker.stop()
        sink.stop()

    client.force_login(User.objects.create_superuser("editor", "e@outlet.test", "pw-tests"))
    page = client.get(f"/admin/newsletters/issue/{issue.pk}/change/").content.decode()

    def figure(name: str) -> str:
        return re.search(rf'data-figure="{name}">([^<]*)<', page).group(1)

    assert figure("sent") == "1000"
    assert figure("delivered") == "1000"
    assert figure("bounced") == "0"
    assert figure("opened") == "60"
    assert figure("clicked") == "101"  # 100 readers, and the donor
    assert figure("clicks") == "121"  # 100 + 20 repeats + the donor's
    assert figure("unsubscribed") == "1"
    assert figure("complaints") == "0"
    assert figure("gifts") == "1"
    assert figure("raised") == "$10.00"
