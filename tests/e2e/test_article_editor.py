"""The article editor in Chromium: the figure dialog's image library, the figure and
its caption, the menus, the byline, the revision history and the admin's CSP."""

from __future__ import annotations

import contextlib
import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from outlet.articles.models import Article, ArticleAuthor, ArticleImage
from outlet.articles.services import article_save
from tests.e2e.test_publishing import _upload_payload, log_in, staff
from tests.factories import ArticleFactory, AuthorFactory, IssueFactory, SectionFactory

pytestmark = pytest.mark.django_db(transaction=True)

LONG_ALT = (
    "Voters queue outside a school gym in the river towns on a wet November morning, "
    "umbrellas up, a poll worker holding the door"
)


@pytest.fixture
def newsroom(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CSRF_TRUSTED_ORIGINS = ["http://localhost"]
    return {
        "section": SectionFactory(name="Politics", slug="politics"),
        "author": AuthorFactory(name="Maren Holt", slug="maren-holt"),
    }


@pytest.fixture
def console(page):
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text) if m.type == "error" else None)
    return messages


@pytest.fixture
def editor_page(live_server, page, newsroom):
    log_in(page, live_server, staff("editor1", "editor"))
    return page


def body_editor(page):
    area = page.locator(".prose-editor .ProseMirror[contenteditable=true]").first
    expect(area).to_be_visible()
    return area


def open_figure_dialog(page):
    page.locator(".prose-menubar__button[data-name=figure]").click()
    return page.locator("dialog[open]")


def test_the_figure_dialog_uploads_and_picks_an_image_in_one_window(
    live_server, editor_page, screenshot
):
    page = editor_page
    page.goto(live_server.url + "/admin/articles/article/add/")
    body_editor(page).click()
    dialog = open_figure_dialog(page)
    with page.expect_popup() as popup:
        dialog.get_by_role("button", name="Browse").click()
    library = popup.value
    library.wait_for_load_state()
    expect(library.locator("body")).to_contain_text("No images yet")

    library.set_input_files("#id_image", files=[_upload_payload()])
    library.fill("#id_alt_text", LONG_ALT)
    screenshot_of(library, "editor-image-library-upload")
    with library.expect_event("close"), contextlib.suppress(PlaywrightError):
        library.get_by_role("button", name="Upload and use").click()

    image = ArticleImage.objects.get()
    assert image.alt_text == LONG_ALT
    expect(dialog.locator("input[name=imageUrl]")).to_have_value(image.image.url)
    expect(dialog.locator("input[name=altText]")).to_have_value(LONG_ALT)


def test_adding_an_image_to_the_library_names_it_in_full(live_server, editor_page):
    page = editor_page
    page.goto(live_server.url + "/admin/articles/articleimage/add/")
    page.set_input_files("#id_image", files=[_upload_payload()])
    page.fill("#id_alt_text", LONG_ALT)
    page.click("input[name=_save]")

    expect(page.locator(".messagelist")).to_contain_text(LONG_ALT)


def test_enter_after_inserting_a_figure_starts_a_paragraph_below_it(
    live_server, editor_page, screenshot
):
    page = editor_page
    ArticleImage.objects.create(image=_stored_image(), alt_text="Council chamber")
    page.goto(live_server.url + "/admin/articles/article/add/")
    body_editor(page).click()
    page.keyboard.type("Before the figure.")
    page.keyboard.press("Enter")
    dialog = open_figure_dialog(page)
    dialog.locator("input[name=imageUrl]").fill("/media/body/chamber.jpg")
    dialog.locator("input[name=altText]").fill("Council chamber")
    dialog.locator("input[name=caption]").fill("The chamber at night.")
    dialog.get_by_role("button", name="Insert").click()
    page.keyboard.press("Enter")
    page.keyboard.type("After the figure.")
    screenshot("editor-figure-enter")

    body = page.locator("textarea#id_body").input_value()
    assert "<figcaption" in body and "The chamber at night.</figcaption></figure>" in body, body
    assert body.rstrip().endswith("</figure><p>After the figure.</p>"), body


def test_menu_carets_are_characters_the_fonts_have(live_server, editor_page, screenshot):
    page = editor_page
    page.goto(live_server.url + "/admin/articles/article/add/")
    body_editor(page).click()
    screenshot("editor-menubar")

    missing = page.evaluate(
        """() => {
        const canvas = document.createElement("canvas");
        canvas.width = 40; canvas.height = 40;
        const ctx = canvas.getContext("2d");
        const draw = (text, font) => {
          ctx.clearRect(0, 0, 40, 40); ctx.font = font; ctx.fillText(text, 5, 30);
          return ctx.getImageData(0, 0, 40, 40).data.join(",");
        };
        const found = [];
        for (const el of document.querySelectorAll(".prose-menubar__selected")) {
          const style = getComputedStyle(el, "::after");
          const text = style.content.replace(/^"|"$/g, "");
          if (!text || text === "none") continue;
          const font = `${style.fontSize} ${style.fontFamily}`;
          // A character no font has draws the same box as any other such character.
          if (draw(text, font) === draw(String.fromCodePoint(0x10FFFD), font)) found.push(text);
        }
        return found;
    }"""
    )
    assert missing == []


def test_the_byline_rows_are_not_headed_by_numbers(live_server, editor_page, newsroom):
    page = editor_page
    article = ArticleFactory(section=newsroom["section"])
    ArticleAuthor.objects.create(article=article, author=newsroom["author"], position=0)
    page.goto(live_server.url + f"/admin/articles/article/{article.pk}/change/")

    headings = page.locator("#bylines-group td.original p").all_inner_texts()
    assert "Maren Holt" in headings
    assert not [text for text in headings if re.fullmatch(r"[\d. ]+", text)], headings


def test_the_pull_quote_style_is_labelled_for_editors(live_server, editor_page):
    page = editor_page
    page.goto(live_server.url + "/admin/articles/article/add/")
    body_editor(page).click()
    page.locator(".prose-menubar__button[data-name=blockquote]").click()
    page.keyboard.type("A quotation.")
    page.locator(".prose-menubar__dropdown", has=page.get_by_label("Block style")).click()

    option = page.locator(".prose-menubar__option[data-name='nodeClass:blockquote:pull-quote']")
    expect(option).to_be_visible()
    assert "blockquote" not in option.inner_text()
    assert "Pull quote" in option.inner_text()


@pytest.mark.parametrize(
    "path", ["article/add/", "article/{article}/change/", "issue/add/", "issue/{issue}/change/", ""]
)
def test_admin_pages_break_no_content_security_rule_and_find_their_icon(
    live_server, page, newsroom, console, path
):
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    User.objects.create_superuser("chief", "chief@outlet.test", "pw-chief-2026")
    log_in(page, live_server, User.objects.get(username="chief"))
    article = ArticleFactory(section=newsroom["section"])
    issue = IssueFactory()
    app = "newsletters" if path.startswith("issue") else "articles"
    url = f"/admin/{app}/{path.format(article=article.pk, issue=issue.pk)}" if path else "/admin/"
    console.clear()

    page.goto(live_server.url + url)
    page.wait_for_load_state("networkidle")

    assert [m for m in console if "Content Security Policy" in m] == []
    assert missing == []
    # Without an icon of its own the browser asks for /favicon.ico, which is not there.
    icon = page.locator("link[rel=icon]")
    expect(icon).to_have_count(1)
    assert page.request.get(live_server.url + icon.get_attribute("href")).status == 200


def _stored_image():
    from django.core.files.base import ContentFile

    from tests.articles.conftest import image_upload

    return ContentFile(image_upload().read(), name="chamber.jpg")


def screenshot_of(page, name: str) -> None:
    from tests.e2e.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_the_revision_page_keeps_images_inside_and_its_breadcrumbs_styled(
    live_server, page, newsroom, screenshot
):
    User.objects.create_superuser("chief", "chief@outlet.test", "pw-chief-2026")
    log_in(page, live_server, User.objects.get(username="chief"))
    image = ArticleImage.objects.create(image=_stored_image(), alt_text="Council chamber")
    article = article_save(
        article=ArticleFactory.build(
            section=newsroom["section"],
            status=Article.Status.DRAFT,
            body=f'<figure><img src="{image.image.url}" alt="Council chamber"></figure>',
        )
    )
    issue = IssueFactory()
    pages = [
        f"/admin/articles/article/{article.pk}/revision/{article.revisions.get().pk}/",
        f"/admin/newsletters/issue/{issue.pk}/preview/",
        f"/admin/newsletters/issue/{issue.pk}/send/",
    ]
    for number, path in enumerate(pages):
        page.goto(live_server.url + path)
        page.wait_for_load_state("load")
        screenshot(f"editor-admin-page-{number}")
        crumbs = page.locator(".breadcrumbs")
        background = crumbs.evaluate("el => getComputedStyle(el).backgroundColor")
        assert background not in ("rgba(0, 0, 0, 0)", "transparent"), path
        wide = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert not wide, f"{path} scrolls sideways"


IMPORTED_TABLE = (
    "<p>The results by district.</p>"
    "<table><thead><tr><th>District</th><th>Turnout</th></tr></thead>"
    "<tbody><tr><td>North</td><td>61%</td></tr><tr><td>River towns</td><td>48%</td></tr></tbody>"
    "</table><p>Source: the county clerk.</p>"
)


def test_an_imported_table_survives_opening_and_saving_the_article(
    live_server, editor_page, newsroom, screenshot
):
    page = editor_page
    article = ArticleFactory(section=newsroom["section"], body=IMPORTED_TABLE)
    ArticleAuthor.objects.create(article=article, author=newsroom["author"], position=0)
    page.goto(live_server.url + f"/admin/articles/article/{article.pk}/change/")
    area = body_editor(page)
    expect(area.locator("table td", has_text="River towns")).to_be_visible()
    area.locator("p", has_text="Source: the county clerk.").click()
    page.keyboard.press("End")
    page.keyboard.type(" Updated.")
    screenshot("editor-table")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_be_visible()

    article.refresh_from_db()
    assert table_rows(article.body) == [
        ["District", "Turnout"],
        ["North", "61%"],
        ["River towns", "48%"],
    ], article.body
    assert "<th>" in article.body, "the header row is no longer a header"
    assert "Source: the county clerk. Updated." in article.body


def table_rows(html: str) -> list[list[str]]:
    from lxml import html as lxml_html

    table = lxml_html.fragment_fromstring(html, create_parent="div").find(".//table")
    assert table is not None, html
    return [[cell.text_content().strip() for cell in row] for row in table.iter("tr")]


def test_an_editor_inserts_a_table_from_the_menu(live_server, editor_page):
    page = editor_page
    page.goto(live_server.url + "/admin/articles/article/add/")
    body_editor(page).click()
    page.locator(".prose-menubar__button[data-name=table]").click()
    dialog = page.locator("dialog.prose-editor-dialog[open]")
    dialog.locator("input[name=rows]").fill("3")
    dialog.locator("input[name=cols]").fill("2")
    dialog.get_by_role("button", name="Insert Table").click()

    expect(body_editor(page).locator("table tr")).to_have_count(3)
    page.keyboard.type("District")
    body = page.locator("textarea#id_body").input_value()
    assert table_rows(body) == [["District", ""], ["", ""], ["", ""]], body
