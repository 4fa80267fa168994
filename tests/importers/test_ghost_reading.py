"""Reading a Ghost export as a stream: its wrappings, its tables, and files that are not one."""

import json
from pathlib import Path

import pytest

from outlet.importers.ghost.importing import ghost_read
from outlet.importers.ghost.reading import ExportUnreadable, export_index, export_posts

FIXTURES = Path(__file__).parent / "fixtures"


def rewrap(tmp_path: Path, shape: str) -> Path:
    """The v5 fixture in another of the wrappings Ghost's importer accepts."""
    export = json.loads((FIXTURES / "ghost-5.json").read_text())["db"][0]
    wrapped = {"db": export} if shape == "db-object" else export
    path = tmp_path / f"{shape}.json"
    path.write_text(json.dumps(wrapped))
    return path


def test_index_keeps_what_posts_refer_to():
    index = export_index(FIXTURES / "ghost-5.json")

    assert (index.version, index.posts, index.site_title) == ("5.82.2", 7, "The Riverton Ledger")
    assert index.users["1"].email == "jane@example.org"
    assert index.tags["65f0000000000000000000t2"].internal
    assert [t.slug for t in index.tags_of("65f000000000000000000001")] == [
        "city-hall",
        "hash-newsletter",
        "budget",
    ]
    assert [u.slug for u in index.authors_of("65f000000000000000000001")] == ["jane", "sam"]
    assert index.posts_meta["65f000000000000000000001"]["meta_title"] == (
        "Council approves the 2024 budget"
    )


@pytest.mark.parametrize("shape", ["db-object", "bare"])
def test_every_wrapping_ghost_accepts_is_read_the_same(tmp_path, shape):
    path = rewrap(tmp_path, shape)

    index = export_index(path)
    slugs = [row["slug"] for row in export_posts(path, index)]

    assert index.posts == 7 and len(index.users) == 2 and index.version == "5.82.2"
    assert slugs[0] == "council-approves-budget" and len(slugs) == 7


def test_posts_are_yielded_as_rows_in_file_order():
    path = FIXTURES / "ghost-4.json"
    index = export_index(path)

    rows = list(export_posts(path, index))

    assert [row["slug"] for row in rows][:2] == ["saturday-at-the-market", "market-accounts"]
    assert rows[0]["featured"] is True and isinstance(rows[0]["mobiledoc"], str)


def test_a_truncated_export_is_refused_with_a_clear_message(tmp_path):
    data = (FIXTURES / "ghost-5.json").read_bytes()
    path = tmp_path / "cut.json"
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(ExportUnreadable, match="not a complete Ghost export"):
        export_index(path)


@pytest.mark.parametrize(
    "content",
    [
        b'{"meta": {"version": "5.0"}, "users": []}',
        b'[{"title": "a list, not an export"}]',
        b'{"rss": {"channel": {}}}',
    ],
)
def test_json_that_is_not_a_ghost_export_is_refused(tmp_path, content):
    path = tmp_path / "other.json"
    path.write_bytes(content)

    with pytest.raises(ExportUnreadable, match="not a Ghost export"):
        export_index(path)


def test_a_file_that_is_not_json_is_refused(tmp_path):
    path = tmp_path / "export.xml"
    path.write_text('<?xml version="1.0"?><rss><channel></channel></rss>')

    with pytest.raises(ExportUnreadable, match="not a complete Ghost export"):
        export_index(path)


def test_the_sites_address_and_install_id_come_from_settings_when_present(tmp_path):
    export = json.loads((FIXTURES / "ghost-5.json").read_text())
    export["db"][0]["data"]["settings"] += [
        {"id": "s8", "group": "core", "key": "db_hash", "value": "3f1c0a2b-77aa-4e0e-9d52-1a2b3c"},
        {"id": "s9", "group": "site", "key": "url", "value": "https://ledger.example/news/"},
    ]
    path = tmp_path / "with-url.json"
    path.write_text(json.dumps(export))

    index = export_index(path)
    run = ghost_read(path)

    assert index.site_url == "https://ledger.example/news"
    assert index.db_hash == "3f1c0a2b-77aa-4e0e-9d52-1a2b3c"
    assert run.source == "ghost:ledger.example"
    assert run.site_redirects == {"/news/rss/": "/feed/"}
    council = next(p for p in run.posts() if p.slug == "council-approves-budget")
    assert council.old_paths[0] == "/news/council-approves-budget/"
    assert council.featured_image is not None
    assert (
        council.featured_image.url == "https://ledger.example/news/content/images/2024/03/hall.jpg"
    )


def test_without_an_address_the_source_is_named_by_the_install_id(tmp_path):
    export = json.loads((FIXTURES / "ghost-4.json").read_text())
    export["db"][0]["data"]["settings"].append({"key": "db_hash", "value": "abcdef0123456789xyz"})
    path = tmp_path / "hash.json"
    path.write_text(json.dumps(export))

    assert ghost_read(path).source == "ghost:abcdef0123456789"
    assert ghost_read(FIXTURES / "ghost-4.json").source == "ghost:unknown-site"


def test_a_byte_order_mark_an_editor_added_is_read_past(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + (FIXTURES / "ghost-4.json").read_bytes())

    index = export_index(path)

    assert index.posts == 6 and len(list(export_posts(path, index))) == 6


def test_a_file_nested_deeper_than_any_export_is_refused(tmp_path):
    """A few kilobytes of `[[[[…` would otherwise cost gigabytes while being read (each
    level's path is kept) or break the converter's recursion: refused before anything."""
    export = json.loads((FIXTURES / "ghost-5.json").read_text())
    export["db"][0]["data"]["posts"][0]["title"] = "NESTED"
    text = json.dumps(export).replace('"NESTED"', "[" * 3000 + "]" * 3000)
    path = tmp_path / "nested.json"
    path.write_text(text)

    with pytest.raises(ExportUnreadable, match="nested deeper"):
        export_index(path)
