"""An editor composes, previews, test-sends and schedules an issue; real workers send it."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import expect

from outlet.celery import app
from outlet.newsletters.models import Delivery, Issue, Subscriber
from outlet.newsletters.tasks import issues_tick_task
from tests.conftest import SmtpSink, WorkerProcess
from tests.factories import (
    AppealFactory,
    ArticleFactory,
    NewsletterFactory,
    SectionFactory,
    SubscriberFactory,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def choose_article(page, row: int, headline: str) -> None:
    page.locator(f"#issue_articles-{row} .field-article .select2-selection").click()
    page.locator(".select2-container--open .select2-search__field").fill(headline.split()[0])
    page.locator(".select2-results__option", has_text=headline).click()


@pytest.fixture
def sink():
    smtp = SmtpSink()
    yield smtp
    smtp.stop()


def test_editor_composes_previews_tests_schedules_and_the_workers_send_it(
    live_server, page, screenshot, sink, settings
):
    settings.CSRF_TRUSTED_ORIGINS = ["http://localhost"]
    app.control.purge()
    politics = SectionFactory(name="Politics", slug="politics")
    ArticleFactory(
        headline="How the district map was drawn",
        dek="Three counties, one pen and a deadline.",
        section=politics,
    )
    ArticleFactory(
        headline="The budget surplus nobody expected",
        dek="Where the money came from, and where it goes.",
        section=SectionFactory(name="Economy", slug="economy"),
    )
    AppealFactory(name="Spring", heading="Keep this newsletter free", button_label="Give now")
    daily = NewsletterFactory(
        name="The Daily Briefing",
        slug="daily",
        from_name="The Daily Briefing",
        reply_to="letters@outlet.test",
    )
    weekly = NewsletterFactory(name="The Weekly", slug="weekly")
    readers = SubscriberFactory.create_batch(4, newsletters=[daily])
    outsiders = [
        SubscriberFactory(newsletters=[weekly]),
        SubscriberFactory(newsletters=[daily], status=Subscriber.Status.UNSUBSCRIBED),
    ]
    User.objects.create_superuser("editor", "editor@outlet.test", "pw-editor-2026")
    worker = WorkerProcess(extra_env={"EMAIL_URL": sink.url})
    try:
        worker.wait_ready()

        page.goto(live_server.url + "/admin/login/")
        page.fill("#id_username", "editor")
        page.fill("#id_password", "pw-editor-2026")
        page.click("input[type=submit]")
        expect(page.locator("#user-tools")).to_be_visible()

        # Compose.
        page.goto(live_server.url + "/admin/newsletters/issue/add/")
        page.select_option("#id_newsletter", label="The Daily Briefing")
        page.fill("#id_subject", "Maps and money: the week in review")
        page.fill("#id_preheader", "Two stories that will shape the month.")
        intro = page.locator(".field-intro .ProseMirror[contenteditable=true]")
        intro.click()
        page.keyboard.type("Good morning. Two stories this week, both about who decides.")
        choose_article(page, 0, "How the district map was drawn")
        page.fill("#id_issue_articles-1-position", "1")
        choose_article(page, 1, "The budget surplus nobody expected")
        page.select_option("#id_appeal", label="Spring")
        page.click("input[name=_continue]")
        expect(page.locator(".messagelist")).to_contain_text("was added successfully")
        issue = Issue.objects.get()

        # Preview at both widths.
        page.click("text=Preview")
        expect(page.locator("iframe")).to_have_count(2)
        for title in ("Desktop preview", "Phone preview"):
            frame = page.frame_locator(f"iframe[title='{title}']")
            expect(frame.locator("text=How the district map was drawn")).to_be_visible()
            expect(frame.locator("text=Keep this newsletter free")).to_be_visible()
        screenshot("newsletter-issue-preview")
        page.goto(live_server.url + f"/admin/newsletters/issue/{issue.pk}/preview/email/")
        page.set_viewport_size({"width": 375, "height": 900})
        screenshot("newsletter-issue-phone")
        page.set_viewport_size({"width": 1280, "height": 900})

        # Test sends: a malformed address is refused, a good one is mailed.
        page.goto(live_server.url + f"/admin/newsletters/issue/{issue.pk}/change/")
        page.fill("#issue-test-to", "editor@")
        page.click("text=Send test")
        expect(page.locator(".messagelist")).to_contain_text("is not a valid email address")
        page.fill("#issue-test-to", "editor@example.org")
        page.click("text=Send test")
        expect(page.locator(".messagelist")).to_contain_text("A test copy is on its way")
        wait_for(lambda: sink.to("editor@example.org"), 30, "the test copy")
        assert sink.to("editor@example.org")[0]["Subject"].startswith("[Test] Maps and money")

        # Schedule a few seconds ahead.
        send_at = timezone.localtime(timezone.now() + timedelta(seconds=12)).replace(microsecond=0)
        page.fill("#issue-send-at", send_at.strftime("%Y-%m-%dT%H:%M:%S"))
        page.click("button:text('Schedule')")
        expect(page.locator(".messagelist")).to_contain_text("Scheduled for")
        assert Issue.objects.get().status == Issue.Status.SCHEDULED

        # At that time beat's tick (run here through the broker) starts the send.
        wait_for(lambda: timezone.now() >= send_at, 30, "the scheduled time")
        issues_tick_task.delay()
        page.reload()
        expect(page.locator(".issue-status")).to_have_text("Sent", timeout=60_000)
        page.reload()
        expect(page.locator("[data-field=sent]")).to_have_text("4")
        expect(page.locator("[data-field=remaining]")).to_have_text("0")
        screenshot("newsletter-issue-sent")
    finally:
        worker.stop()

    issue = Issue.objects.get()
    assert issue.status == Issue.Status.SENT
    for reader in readers:
        (message,) = sink.to(reader.email)
        delivery = Delivery.objects.get(issue=issue, subscriber=reader)
        assert message["Message-ID"] == f"<issue-{issue.pk}.delivery-{delivery.pk}@127.0.0.1>"
        assert message["From"] == "The Daily Briefing <newsletters@outlet.test>"
        assert message["Reply-To"] == "letters@outlet.test"
        assert message["List-Id"] == "The Daily Briefing <daily.127.0.0.1>"
        assert message["Date"]
        assert re.match(r"<http://[^>]+/newsletter/unsubscribe/", message["List-Unsubscribe"])
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.get_content_type() == "multipart/alternative"
        html = message.get_body(("html",)).get_content()
        assert html.index("How the district map") < html.index("The budget surplus")
    for outsider in outsiders:
        assert sink.to(outsider.email) == []

    # The web archive shows it.
    page.goto(live_server.url + "/newsletter/daily/archive/")
    page.get_by_role("link", name="Maps and money: the week in review").click()
    expect(page.locator("h1")).to_have_text("Maps and money: the week in review")
    expect(page.locator("main")).to_contain_text("How the district map was drawn")
    screenshot("newsletter-issue-archive")
