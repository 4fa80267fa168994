"""The issue editor in Chromium: typing the intro, sending with a confirmation, a
sent issue read-only, the sending panel's layout and the phone preview."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from outlet.newsletters.models import Issue
from tests.factories import (
    AppealFactory,
    ArticleFactory,
    IssueFactory,
    NewsletterFactory,
    SubscriberFactory,
)

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


@pytest.fixture
def ready_issue():
    daily = NewsletterFactory(name="The Daily Briefing", slug="daily")
    SubscriberFactory.create_batch(3, newsletters=[daily])
    SubscriberFactory(newsletters=[NewsletterFactory(name="The Weekly", slug="weekly")])
    appeal = AppealFactory(heading="Keep this newsletter free", button_label="Give now")
    return IssueFactory(
        newsletter=daily,
        subject="Maps and money",
        appeal=appeal,
        articles=[
            ArticleFactory(headline="How the district map was drawn"),
            *ArticleFactory.create_batch(5, dek="A longer standfirst that takes two lines. " * 3),
        ],
    )


def test_send_now_asks_first_naming_the_newsletter_recipients_and_subject(
    live_server, editor_page, screenshot, ready_issue
):
    page = editor_page
    page.goto(live_server.url + f"/admin/newsletters/issue/{ready_issue.pk}/change/")
    page.get_by_role("button", name="Send now to everyone subscribed").click()

    confirmation = page.locator("#content-main")
    expect(confirmation).to_contain_text("The Daily Briefing")
    expect(confirmation).to_contain_text("3 subscribers")
    expect(confirmation).to_contain_text("Maps and money")
    screenshot("issue-send-confirm")
    ready_issue.refresh_from_db()
    assert ready_issue.status == Issue.Status.DRAFT

    page.get_by_role("button", name="Send to 3 subscribers now").click()
    expect(page.locator(".messagelist")).to_contain_text("Sending has started")
    ready_issue.refresh_from_db()
    assert ready_issue.status != Issue.Status.DRAFT


def test_a_sent_issue_is_read_only_and_its_header_has_room(
    live_server, editor_page, screenshot, ready_issue
):
    page = editor_page
    Issue.objects.filter(pk=ready_issue.pk).update(status=Issue.Status.SENT)
    page.goto(live_server.url + f"/admin/newsletters/issue/{ready_issue.pk}/change/")
    screenshot("issue-sent-change")

    expect(page.locator(".submit-row input[type=submit]")).to_have_count(0)
    view_on_site = page.get_by_role("link", name="View on site")
    expect(view_on_site).to_be_visible()
    line_height = view_on_site.evaluate("a => parseFloat(getComputedStyle(a).lineHeight) || 20")
    assert view_on_site.bounding_box()["height"] < 2 * line_height


def test_the_phone_preview_shows_the_whole_email(live_server, editor_page, screenshot, ready_issue):
    page = editor_page
    page.goto(live_server.url + f"/admin/newsletters/issue/{ready_issue.pk}/preview/")
    phone = page.locator("iframe[title='Phone preview']")
    frame = page.frame_locator("iframe[title='Phone preview']")
    expect(frame.locator("text=Keep this newsletter free")).to_be_visible()
    page.wait_for_load_state("load")
    screenshot("issue-preview")

    content_height = phone.evaluate("f => f.contentDocument.documentElement.scrollHeight")
    assert phone.bounding_box()["height"] >= content_height
