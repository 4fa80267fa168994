"""An imported WordPress archive in headless Chromium: old links land on readable pages."""

from pathlib import Path

import pytest
from PIL import Image

from outlet.importers.services import archive_import

pytestmark = pytest.mark.django_db(transaction=True)

EXPORT = Path(__file__).resolve().parents[1] / "importers" / "fixtures" / "wordpress-1.2.xml"


def test_reader_follows_old_permalinks_to_the_imported_story_and_page(
    live_server, page, screenshot, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    (tmp_path / "uploads" / "2019" / "05").mkdir(parents=True)
    Image.new("RGB", (1200, 800), "steelblue").save(tmp_path / "uploads/2019/05/flood.jpg")
    archive_import(source="wordpress", path=EXPORT, media_dir=tmp_path / "uploads")

    page.goto(live_server.url + "/2019/05/river-report/")
    assert page.url == live_server.url + "/river-report/"
    assert page.locator("h1").inner_text() == "River report: what the data shows"
    assert (
        page.locator("blockquote.pull-quote")
        .inner_text()
        .startswith("We had four hours of warning.")
    )
    assert page.get_by_text("The gauge at the bridge.").is_visible()
    screenshot("imported-block-post")

    page.goto(live_server.url + "/?page_id=12")
    assert page.url == live_server.url + "/page/about/"
    assert page.locator("h1").inner_text() == "About us"
    screenshot("imported-page")
