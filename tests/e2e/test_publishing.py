"""Publishing end to end in headless Chromium: an editor writes and schedules an
article in the admin; readers see it at its time, not before; contributors cannot publish."""

import contextlib
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from outlet.articles.models import Article, ArticleImage
from tests.articles.conftest import ensure_editorial_groups, image_upload
from tests.factories import ArticleFactory, AuthorFactory, SectionFactory

pytestmark = pytest.mark.django_db(transaction=True)

PUBLISH_DELAY_SECONDS = 20


def staff(username: str, group: str) -> User:
    ensure_editorial_groups()
    user = User.objects.create_user(
        username=username, password=f"pw-{username}-2026", is_staff=True
    )
    user.groups.add(Group.objects.get(name=group))
    return user


def log_in(page, live_server, user: User) -> None:
    page.goto(live_server.url + "/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", f"pw-{user.username}-2026")
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text(user.username.upper(), ignore_case=True)


def choose_author(page, name: str) -> None:
    page.locator(".field-author .select2-selection").first.click()
    page.locator(".select2-container--open .select2-search__field").fill(name.split()[0])
    page.locator(".select2-results__option", has_text=name).click()


@pytest.fixture
def newsroom(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CSRF_TRUSTED_ORIGINS = ["http://localhost"]
    politics = SectionFactory(name="Politics", slug="politics")
    ArticleFactory(headline="An earlier story about the budget", section=politics)
    return {"section": politics, "author": AuthorFactory(name="Maren Holt", slug="maren-holt")}


def test_editor_writes_and_schedules_an_article_readers_see_it_at_its_time(
    live_server, page, browser, screenshot, newsroom
):
    editor = staff("editor1", "editor")
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    log_in(page, live_server, editor)

    # An image for the body, uploaded and validated through the image library.
    page.goto(live_server.url + "/admin/articles/articleimage/add/")
    page.set_input_files("#id_image", files=[_upload_payload()])
    page.fill("#id_alt_text", "Voters queue outside a school gym in the river towns")
    page.click("input[name=_continue]")
    image_url = page.locator(".field-address input").input_value()
    assert image_url.startswith("/media/body/")

    page.goto(live_server.url + "/admin/articles/article/add/")
    page.fill("#id_headline", "The river towns get the district they asked for")
    page.fill("#id_dek", "A fair map, and a seat that will no longer be decided in November.")
    page.select_option("#id_section", label="Politics")
    editor_area = page.locator(".prose-editor .ProseMirror[contenteditable=true]").first
    expect(editor_area).to_be_visible()
    editor_area.click()
    page.keyboard.type(
        "The commission's final map joins the river towns with the farming counties."
    )
    page.keyboard.press("Enter")
    page.locator(".prose-menubar__dropdown").first.click()
    page.locator(".prose-menubar__option[data-name=heading2]").click()
    page.keyboard.type("What the towns asked for")
    page.keyboard.press("Enter")
    page.keyboard.type("Residents testified forty-one times. Most asked to be kept together.")
    page.keyboard.press("Enter")
    page.locator(".prose-menubar__button[data-name=blockquote]").click()
    page.keyboard.type("Sometimes the fairest line is the one that makes the outcome obvious.")
    page.locator(".prose-menubar__dropdown", has=page.get_by_label("Block style")).click()
    page.locator(".prose-menubar__option[data-name='nodeClass:blockquote:pull-quote']").click()
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    page.locator(".prose-menubar__button[data-name=figure]").click()
    dialog = page.locator("dialog[open]")
    # "Browse…" opens the image library; choosing fills in the address and alt text.
    with page.expect_popup() as popup:
        dialog.get_by_role("button", name="Browse").click()
    library = popup.value
    library.wait_for_load_state()
    screenshot_of(library, "publishing-image-library")
    # Choosing closes the window from inside the click handler, and Playwright may lose
    # the page while finishing its click ("Target closed"). The window closing and the
    # dialog's fields, checked next, are the outcome.
    with library.expect_event("close"), contextlib.suppress(PlaywrightError):
        library.locator(".image-picker__choice").first.click()
    expect(dialog.locator("input[name=imageUrl]")).to_have_value(image_url)
    expect(dialog.locator("input[name=altText]")).to_have_value(
        "Voters queue outside a school gym in the river towns"
    )
    dialog.locator("input[name=altText]").fill("Voters queue outside a school gym")
    dialog.locator("input[name=caption]").fill("Polling day in the river towns.")
    dialog.get_by_role("button", name="Insert").click()
    page.set_input_files("#id_featured_image", files=[_upload_payload()])
    page.fill("#id_image_alt", "A line of voters outside the river towns' polling station")
    page.fill("#id_image_caption", "The river towns vote.")
    choose_author(page, "Maren Holt")
    page.select_option("#id_status", "scheduled")
    editor_area.scroll_into_view_if_needed()
    screenshot("publishing-admin-editor")

    publish_at = timezone.localtime() + timedelta(seconds=PUBLISH_DELAY_SECONDS)
    page.fill("#id_publish_at_0", publish_at.strftime("%Y-%m-%d"))
    page.fill("#id_publish_at_1", publish_at.strftime("%H:%M:%S"))
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    article = Article.objects.get(slug="the-river-towns-get-the-district-they-asked-for")
    assert article.status == Article.Status.SCHEDULED
    assert "<h2>What the towns asked for</h2>" in article.body
    assert '<blockquote class="pull-quote">' in article.body
    assert (
        f'src="{image_url}"' in article.body
        and 'alt="Voters queue outside a school gym"' in article.body
    )
    assert not [e for e in console_errors if "Content Security Policy" in e and "script" in e]

    reader = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    url = live_server.url + article.get_absolute_url()
    assert reader.goto(url).status == 404
    reader.goto(live_server.url + "/")
    assert "The river towns get the district" not in reader.content()
    assert article.slug not in reader.goto(live_server.url + "/feed/").text()
    assert article.slug not in reader.goto(live_server.url + "/sitemap.xml").text()

    time.sleep(max(0.0, (article.publish_at - timezone.now()).total_seconds()) + 0.5)

    reader.goto(live_server.url + "/")
    expect(
        reader.get_by_role("link", name="The river towns get the district they asked for")
    ).to_be_visible()
    screenshot_of(reader, "publishing-home")
    assert reader.goto(url).status == 200
    expect(reader.locator("h1")).to_have_text("The river towns get the district they asked for")
    expect(reader.locator(".story__body h2")).to_have_text("What the towns asked for")
    expect(reader.locator(".story__body blockquote.pull-quote")).to_be_visible()
    body_image = reader.locator(".story__body figure img")
    expect(body_image).to_have_attribute("alt", "Voters queue outside a school gym")
    assert reader.evaluate(
        "img => img.complete && img.naturalWidth > 0", body_image.element_handle()
    )
    expect(reader.get_by_role("link", name="Maren Holt")).to_have_attribute(
        "href", "/author/maren-holt/"
    )
    featured = reader.locator(".story__figure img")
    expect(featured).to_have_attribute(
        "alt", "A line of voters outside the river towns' polling station"
    )
    assert ".w800.jpg 800w" in (featured.get_attribute("srcset") or "")
    screenshot_of(reader, "publishing-article")
    assert article.slug in reader.goto(live_server.url + "/feed/").text()
    assert article.slug in reader.goto(live_server.url + "/sitemap.xml").text()
    reader.context.close()


def test_contributor_cannot_publish_from_the_admin(live_server, page, screenshot, newsroom):
    contributor = staff("contrib1", "contributor")
    log_in(page, live_server, contributor)

    page.goto(live_server.url + "/admin/articles/article/add/")
    options = page.locator("#id_status option").all_inner_texts()
    assert options == ["Draft", "In review"]
    page.fill("#id_headline", "A contributor tries to publish")
    page.select_option("#id_section", label="Politics")
    page.locator(".prose-editor .ProseMirror[contenteditable=true]").first.click()
    page.keyboard.type("Some text.")
    choose_author(page, "Maren Holt")
    # Forge the form as a hostile client would: the server must refuse it.
    page.locator("#id_status").evaluate(
        "select => { select.add(new Option('Published', 'published'));"
        " select.value = 'published'; }"
    )
    page.click("input[name=_save]")

    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator(".field-status .errorlist")).to_contain_text("Only editors can schedule")
    expect(page.locator("#id_headline")).to_have_value("A contributor tries to publish")
    screenshot("publishing-contributor-refused")
    assert not Article.objects.filter(headline__startswith="A contributor").exists()

    page.select_option("#id_status", "review")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    assert Article.objects.get(headline__startswith="A contributor").status == "review"
    assert not ArticleImage.objects.exists()


def _upload_payload() -> dict:
    upload = image_upload(name="queue.jpg", size=(1400, 788))
    return {"name": "queue.jpg", "mimeType": "image/jpeg", "buffer": upload.read()}


def screenshot_of(page, name: str) -> None:
    from tests.e2e.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
