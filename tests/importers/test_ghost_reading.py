"""Reading a Ghost export as a stream: its wrappings, its tables, and files that are not one."""

import json
from pathlib import Path

import pytest

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
