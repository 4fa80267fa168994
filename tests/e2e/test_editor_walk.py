"""A screenshot walk of the editor, as a new editor would take it: write an article,
add a figure and a featured image, save twice, schedule, publish, then read it.
Screenshots land in var/screenshots/editor-walk-*.png."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from outlet.articles.models import Article
from tests.e2e.test_article_editor import body_editor, open_figure_dialog, screenshot_of
from tests.e2e.test_publishing import _upload_payload, choose_author, log_in, staff
from tests.factories import AuthorFactory, SectionFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _stored_files() -> list[str]:
    root = settings.MEDIA_ROOT
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _save_and_continue(page, screenshot, name: str) -> None:
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("successfully")
    expect(page.locator(".errornote")).to_have_count(0)
    screenshot(f"editor-walk-{name}")


def test_editor_walk_write_illustrate_save_twice_schedule_publish(
    live_server, page, browser, screenshot, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CSRF_TRUSTED_ORIGINS = ["http://localhost"]
    SectionFactory(name="Politics", slug="politics")
    AuthorFactory(name="Maren Holt", slug="maren-holt")
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    log_in(page, live_server, staff("walker", "editor"))

    # Write.
    page.goto(live_server.url + "/admin/articles/article/add/")
    page.fill("#id_headline", "The river towns get the district they asked for")
    page.fill("#id_dek", "A fair map, and a seat that will no longer be decided in November.")
    page.select_option("#id_section", label="Politics")
    body_editor(page).click()
    page.keyboard.type("The commission's final map joins the river towns with the farms.")
    page.keyboard.press("Enter")

    # A figure, uploaded from the figure dialog.
    dialog = open_figure_dialog(page)
    with page.expect_popup() as popup:
        dialog.get_by_role("button", name="Browse").click()
    library = popup.value
    library.wait_for_load_state()
    library.set_input_files("#id_image", files=[_upload_payload()])
    library.fill("#id_alt_text", "Voters queue outside a school gym in the river towns")
    screenshot_of(library, "editor-walk-1-library")
    with library.expect_event("close"), contextlib.suppress(PlaywrightError):
        library.get_by_role("button", name="Upload and use").click()
    dialog.locator("input[name=caption]").fill("Polling day in the river towns.")
    dialog.get_by_role("button", name="Insert").click()
    page.keyboard.press("Enter")
    page.keyboard.type("Residents testified forty-one times. Most asked to be kept together.")

    # A featured image.
    page.set_input_files("#id_featured_image", files=[_upload_payload()])
    page.fill("#id_image_alt", "A line of voters outside the polling station")
    choose_author(page, "Maren Holt")
    screenshot("editor-walk-2-written")
    _save_and_continue(page, screenshot, "3-saved-once")
    article = Article.objects.get()
    assert article.body.endswith(
        "<p>Residents testified forty-one times. Most asked to be kept together.</p>"
    )
    files_after_first_save = _stored_files()

    # Save again: nothing changes, nothing is refused, no second copy of anything.
    _save_and_continue(page, screenshot, "4-saved-twice")
    assert _stored_files() == files_after_first_save
    # The same picture uploaded again is the same file.
    page.set_input_files("#id_featured_image", files=[_upload_payload()])
    _save_and_continue(page, screenshot, "5-same-image-again")
    assert _stored_files() == files_after_first_save

    # Schedule for tomorrow.
    tomorrow = timezone.localtime() + timedelta(days=1)
    page.select_option("#id_status", "scheduled")
    page.fill("#id_publish_at_0", tomorrow.strftime("%Y-%m-%d"))
    page.fill("#id_publish_at_1", "07:00:00")
    _save_and_continue(page, screenshot, "6-scheduled")
    article.refresh_from_db()
    assert article.status == Article.Status.SCHEDULED

    # Publish now.
    page.select_option("#id_status", "published")
    page.fill("#id_publish_at_0", "")
    page.fill("#id_publish_at_1", "")
    _save_and_continue(page, screenshot, "7-published")
    article.refresh_from_db()
    assert article.status == Article.Status.PUBLISHED and article.is_public

    # The revision history, then the article as a reader sees it.
    page.locator("#revisions-group a", has_text="View or restore").first.click()
    screenshot("editor-walk-8-revision")
    reader = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    assert reader.goto(live_server.url + article.get_absolute_url()).status == 200
    expect(reader.locator(".story__body figure img")).to_be_visible()
    screenshot_of(reader, "editor-walk-9-reader-phone")
    reader.context.close()

    assert [m for m in console if "Content Security Policy" in m] == []
