"""The issue editor in Chromium: typing the intro, sending with a confirmation, a
sent issue read-only, the sending panel's layout and the phone preview."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from outlet.newsletters.models import Issue
from tests.factories import AppealFactory, NewsletterFactory, SubscriberFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def editor_page(live_server, page, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["http://localhost"]
    User.objects.create_superuser("editor", "editor@outlet.test", "pw-editor-2026")
    page.goto(live_server.url + "/admin/login/")
    page.fill("#id_username", "editor")
    page.fill("#id_password", "pw-editor-2026")
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_be_visible()
    return page


def test_typing_the_intro_stores_ordinary_spaces_and_wraps_between_words(
    live_server, editor_page, screenshot
):
    page = editor_page
    NewsletterFactory(name="The Daily Briefing", slug="daily")
    page.goto(live_server.url + "/admin/newsletters/issue/add/")
    page.select_option("#id_newsletter", label="The Daily Briefing")
    page.fill("#id_subject", "A new week")
    intro = page.locator(".field-intro .ProseMirror[contenteditable=true]")
    intro.click()
    page.keyboard.type("Good morning and a new week of news from the river towns " * 3)

    white_space = intro.evaluate("node => getComputedStyle(node).whiteSpace")
    screenshot("issue-intro-typed")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    stored = Issue.objects.get().intro
    assert "&nbsp;" not in stored and "\u00a0" not in stored, stored
    assert "Good morning and a new week" in stored
    assert white_space in ("pre-wrap", "break-spaces")
