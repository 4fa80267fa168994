"""An editor finds an issue paused by the bounce breaker, reads why, and sends the held
bounces again once the relay is fixed."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from outlet.newsletters.models import Delivery, HeldBounce, Issue, Suppression
from tests.factories import IssueFactory, NewsletterFactory, SubscriberFactory
from tests.newsletters.test_bounce_breaker import send_until_done, start
from tests.newsletters.test_esp_batch import MERGE_FORMAT, ScriptedEspBackend

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_the_editor_sees_why_the_breaker_paused_and_lifts_the_held_bounces(
    live_server, page, screenshot, settings
):
    settings.EMAIL_BACKEND = "tests.newsletters.test_esp_batch.ScriptedEspBackend"
    settings.NEWSLETTER_ESP_MERGE_FIELD_FORMAT = MERGE_FORMAT
    settings.NEWSLETTER_ESP_BATCH_SIZE = 3
    daily = NewsletterFactory(name="The Daily Briefing")
    readers = SubscriberFactory.create_batch(12, newsletters=[daily])
    ScriptedEspBackend.statuses = {reader.email: "rejected" for reader in readers}
    try:
        issue = send_until_done(start(IssueFactory(newsletter=daily)))
    finally:
        ScriptedEspBackend.statuses = {}
    assert issue.status == Issue.Status.PAUSED
    User.objects.create_superuser("editor", "editor@outlet.test", "pw-editor-2026")

    page.goto(live_server.url + "/admin/login/")
    page.fill("#id_username", "editor")
    page.fill("#id_password", "pw-editor-2026")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/newsletters/issue/{issue.pk}/change/")

    expect(page.locator(".issue-reason")).to_contain_text("12 of 12 messages were refused")
    held = page.locator(".issue-held-bounces")
    expect(held).to_contain_text("12 hard bounces held by the bounce breaker")
    screenshot("issue-bounce-breaker")
    held.get_by_role("button", name="Send them again").click()

    expect(page.locator(".messagelist")).to_contain_text("12 held bounces lifted")
    expect(page.locator(".issue-held-bounces")).to_have_count(0)
    screenshot("issue-bounce-breaker-lifted")
    assert not HeldBounce.objects.exists() and not Suppression.objects.exists()
    assert Delivery.objects.filter(issue=issue, status=Delivery.Status.PENDING).count() == 12
