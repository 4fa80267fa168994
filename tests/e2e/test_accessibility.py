"""Reader pages checked by axe-core (WCAG 2.0-2.2 A and AA rules) in headless Chromium,
and their HTML by the Nu Html Checker (the W3C validator).

axe-core comes with the axe-playwright-python package; it runs inside the page, so
it checks what the reader's browser actually rendered: contrast with the real
styles, names of links and form fields, landmarks, heading order, alt text.
`make test` fetches vnu.jar (npm's vnu-jar package) and passes it as VNU_JAR.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core.management import call_command

from outlet.articles.models import Article, Author, Section
from tests.articles.conftest import ensure_editorial_groups

pytestmark = pytest.mark.django_db(transaction=True)

WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


@pytest.fixture
def demo_site(live_server, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = live_server.url
    ensure_editorial_groups()  # a transactional test before this one flushed them
    settings.DEBUG = True  # demo_load refuses to run otherwise
    call_command("demo_load", verbosity=0)
    settings.DEBUG = False  # readers get the real 404 page
    return live_server.url


def reader_pages() -> dict[str, str]:
    article = max(Article.objects.published(), key=lambda a: len(a.body))
    return {
        "home": "/",
        "article": article.get_absolute_url(),
        "section": Section.objects.first().get_absolute_url(),
        "author": Author.objects.first().get_absolute_url(),
        "tag": article.tags.first().get_absolute_url(),
        "search": "/search/?q=district",
        "archive": "/archive/",
        "donate": "/donate/",
        "newsletter": "/newsletter/",
        "not found": "/no-such-page/",
    }


def describe(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        targets = [", ".join(node["target"]) for node in violation["nodes"][:3]]
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']} -> {targets}")
    return "\n".join(lines)


def test_reader_pages_pass_axe_wcag_aa(demo_site, page):
    axe = Axe()
    failures = {}
    for name, path in reader_pages().items():
        page.goto(demo_site + path)
        assert page.locator("h1").count() == 1, f"{name}: one h1 per page"
        results = axe.run(
            page,
            options={"runOnly": {"type": "tag", "values": WCAG_AA}, "resultTypes": ["violations"]},
        )
        violations = results.response["violations"]
        if violations:
            failures[name] = describe(violations)

    assert not failures, "\n".join(f"{name}:\n{text}" for name, text in failures.items())


def test_keyboard_focus_is_visible(demo_site, page):
    page.goto(demo_site + "/")
    page.keyboard.press("Tab")
    skip = page.locator(":focus")
    assert skip.inner_text() == "Skip to content"
    assert skip.is_visible()
    for _ in range(3):
        page.keyboard.press("Tab")
        outline = page.evaluate(
            "(() => { const s = getComputedStyle(document.activeElement);"
            " return [s.outlineStyle, s.outlineWidth, s.boxShadow]; })()"
        )
        style, width, shadow = outline
        assert (style != "none" and width != "0px") or shadow != "none", outline


def vnu_jar() -> Path:
    configured = os.environ.get("VNU_JAR")
    found = [Path(configured)] if configured else []
    found += sorted((Path(__file__).resolve().parents[2] / "var" / "tools").glob("vnu-*.jar"))
    for jar in found:
        if jar.exists():
            return jar
    pytest.fail("The Nu Html Checker is missing: run `make test`, which fetches vnu.jar.")


def test_reader_pages_are_valid_html(demo_site, page, tmp_path):
    jar = vnu_jar()
    files = []
    for name, path in reader_pages().items():
        response = page.goto(demo_site + path)
        assert response is not None
        file = tmp_path / f"{name.replace(' ', '-')}.html"
        file.write_bytes(response.body())  # the HTML as sent, not the live DOM
        files.append(file)

    result = subprocess.run(
        ["java", "-jar", str(jar), "--errors-only", "--format", "json", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    messages = json.loads(result.stderr)["messages"]  # vnu always reports, even "no errors"
    errors = [
        f"{Path(m.get('url', '')).name}:{m.get('lastLine')}: {m.get('message')}"
        f" [{m.get('extract', '').strip()[:80]}]"
        for m in messages
        if m.get("type") in ("error", "non-document-error")
    ]
    assert not errors, "\n".join(errors)
