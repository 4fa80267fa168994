"""WordPress items as SourcePosts: the rules of the old site, decided before anything is written."""

import datetime as dt

from outlet.importers.wordpress.posts import Converter
from outlet.importers.wordpress.reading import ExportIndex, Item, export_index, export_items
from tests.importers.test_wordpress_import import EXPORT

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def converted() -> dict[str, object]:
    index = export_index(EXPORT)
    converter = Converter.for_index(index, now=NOW, site_timezone="UTC")
    return {
        str(item.post_id): converter.item_convert(item)
        for item in export_items(EXPORT)
        if item.post_type in ("post", "page")
    }


def test_a_sticky_post_is_featured_and_keeps_every_old_address():
    flood = converted()["10"]

    assert flood.kind == "article" and flood.featured and flood.slug == "flood-night"
    assert flood.old_paths == [
        "/2019/05/12/flood-night/",
        "/?p=10",
        "/2019/05/12/flood-night/flood/",
        "/?attachment_id=30",
    ]
    assert flood.featured_image is not None and flood.featured_image.source_id == "30"
    assert [person.source_id for person in flood.authors] == ["jane", "guest-ada"]


def test_a_page_is_found_again_at_its_permalink_and_page_id():
    about = converted()["12"]

    assert about.kind == "page" and about.old_paths == ["/about/", "/?page_id=12"]


def test_trash_is_skipped_with_its_reason():
    assert converted()["15"].skipped_because == "in the WordPress trash"


def test_the_canonical_address_comes_from_the_seo_plugin():
    converter = Converter.for_index(ExportIndex(), now=NOW, site_timezone="UTC")
    item = Item(
        post_id=5,
        post_type="post",
        status="publish",
        title="Syndicated",
        meta={"rank_math_canonical_url": " https://partner.example/story "},
    )

    assert converter.item_convert(item).canonical_url == "https://partner.example/story"
