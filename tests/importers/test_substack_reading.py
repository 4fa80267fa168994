"""Reading a Substack export, from a folder or a zip, before anything is written."""

import zipfile
from pathlib import Path

import pytest

from outlet.importers.substack import reading
from outlet.importers.substack.reading import ExportUnreadable, export_index, export_posts
from tests.importers.substack_export import EXPORT, zip_export


def folder_export(tmp_path: Path, csv_text: str | bytes, posts: dict[str, str]) -> Path:
    folder = tmp_path / "export"
    (folder / "posts").mkdir(parents=True)
    data = csv_text.encode() if isinstance(csv_text, str) else csv_text
    (folder / "posts.csv").write_bytes(data)
    for name, html in posts.items():
        (folder / "posts" / name).write_text(html, encoding="utf-8")
    return folder


def test_folder_export_is_indexed_with_its_publication_name():
    index = export_index(EXPORT)

    assert index.rows == 9
    assert index.publication == "Riverside Dispatch"
    assert index.host == "riverside.substack.com"
    assert "101.flood-night.html" in index.html_names


@pytest.mark.parametrize("prefix", ["", "export-2026-12-07/"])
def test_zip_export_reads_the_same_posts_as_the_folder(tmp_path, prefix):
    archive = zip_export(tmp_path / "export.zip", prefix=prefix)

    from_zip = [(p.row, p.html, p.problem) for p in export_posts(archive, export_index(archive))]
    from_folder = [(p.row, p.html, p.problem) for p in export_posts(EXPORT, export_index(EXPORT))]

    assert from_zip == from_folder
    assert [p[0].post_id for p in from_zip][:2] == ["101.flood-night", "102.council-budget"]


def test_post_without_its_html_file_comes_with_the_reason():
    posts = {p.row.post_id: p for p in export_posts(EXPORT, export_index(EXPORT))}

    assert posts["105.lost-post"].problem == "its HTML file is missing from the export"
    assert posts["104.cafe-owners"].html.startswith("<p>Die Cafés")


def test_zip_with_a_member_outside_the_archive_is_refused(tmp_path):
    archive = zip_export(tmp_path / "evil.zip", extra={"../../etc/cron.d/evil": b"* * * * * x"})

    with pytest.raises(ExportUnreadable, match="outside the archive"):
        export_index(archive)


def test_zip_whose_posts_unpack_past_the_cap_is_refused(tmp_path, monkeypatch):
    archive = zip_export(tmp_path / "big.zip", extra={"posts/999.huge.html": b"0" * 50_000})
    monkeypatch.setattr(reading, "MAX_TOTAL_BYTES", 40_000)

    with pytest.raises(ExportUnreadable, match="refused"):
        export_index(archive)


def test_oversized_post_fails_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(reading, "MAX_POST_BYTES", 1_000)
    archive = zip_export(tmp_path / "export.zip")

    posts = {p.row.post_id: p for p in export_posts(archive, export_index(archive))}

    assert "over 1000 bytes" in posts["101.flood-night"].problem
    assert posts["102.council-budget"].html


@pytest.mark.parametrize(
    "content, message",
    [
        (b"email,active_subscription\nreader@example.org,true\n", "not a Substack export"),
        (b"<?xml version='1.0'?><rss></rss>", "not a Substack export"),
    ],
)
def test_a_file_that_is_not_a_substack_export_is_refused(tmp_path, content, message):
    folder = folder_export(tmp_path, content, {})

    with pytest.raises(ExportUnreadable, match=message):
        export_index(folder)


def test_a_folder_without_posts_csv_or_a_file_that_is_no_zip_is_refused(tmp_path):
    with pytest.raises(ExportUnreadable, match="no posts.csv"):
        export_index(tmp_path)
    not_zip = tmp_path / "export.zip"
    not_zip.write_text("hello")
    with pytest.raises(ExportUnreadable, match="not a Substack export"):
        export_index(not_zip)


def test_a_post_id_that_climbs_out_of_the_folder_refuses_the_file(tmp_path):
    folder = folder_export(
        tmp_path, "post_id,post_date,is_published,title\n../../secret,,true,X\n", {}
    )

    with pytest.raises(ExportUnreadable, match="line 2"):
        export_index(folder)


def test_missing_and_extra_columns_and_empty_fields_are_tolerated(tmp_path):
    folder = folder_export(
        tmp_path,
        "post_id,is_published,title,custom_column\n1.a,true,A,x\n\n2.b,,,\n",
        {"1.a.html": "<p>A</p>"},
    )

    posts = list(export_posts(folder, export_index(folder)))

    assert [(p.row.post_id, p.row.title, p.row.audience) for p in posts] == [
        ("1.a", "A", ""),
        ("2.b", "", ""),
    ]
    assert posts[1].problem


def test_utf8_with_a_bom_is_read(tmp_path):
    folder = folder_export(
        tmp_path,
        "\ufeffpost_id,is_published,title\n1.cafe,true,Café\n".encode(),
        {"1.cafe.html": "<p>x</p>"},
    )

    index = export_index(folder)
    (post,) = export_posts(folder, index)

    assert index.encoding == "utf-8" and post.row.title == "Café"


def test_a_windows_1252_file_is_decoded_as_such_and_said_so(tmp_path):
    folder = folder_export(
        tmp_path,
        "post_id,is_published,title\n1.cafe,true,Café “owners”\n".encode("cp1252"),
        {"1.cafe.html": "<p>x</p>"},
    )

    index = export_index(folder)
    (post,) = export_posts(folder, index)

    assert index.encoding == "cp1252"
    assert post.row.title == "Café “owners”"


def test_a_file_neither_encoding_reads_is_refused(tmp_path):
    folder = folder_export(tmp_path, b"post_id,is_published,title\n1.a,true,\x81\x8d\n", {})

    with pytest.raises(ExportUnreadable, match="UTF-8"):
        export_index(folder)


def damaged(archive: Path, member: str) -> Path:
    """`archive` with one byte of `member`'s stored data changed (its CRC no longer matches)."""
    with zipfile.ZipFile(archive) as zipped:
        info = zipped.getinfo(member)
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + 5] ^= 0xFF
    archive.write_bytes(bytes(data))
    return archive


def stored_zip(target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for file in sorted(EXPORT.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(EXPORT).as_posix())
    return target


def test_a_damaged_posts_csv_in_the_zip_is_refused(tmp_path):
    archive = damaged(stored_zip(tmp_path / "export.zip"), "posts.csv")

    with pytest.raises(ExportUnreadable, match="could not be read"):
        export_index(archive)


def test_a_damaged_post_in_the_zip_fails_alone(tmp_path):
    archive = damaged(stored_zip(tmp_path / "export.zip"), "posts/104.cafe-owners.html")

    posts = {p.row.post_id: p for p in export_posts(archive, export_index(archive))}

    assert "damaged" in posts["104.cafe-owners"].problem
    assert posts["101.flood-night"].html


def test_a_post_file_linking_outside_the_folder_is_not_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("<p>not part of the export</p>")
    folder = folder_export(tmp_path, "post_id,is_published,title\n1.a,true,A\n", {})
    (folder / "posts" / "1.a.html").symlink_to(secret)

    (post,) = export_posts(folder, export_index(folder))

    assert post.html == "" and "missing" in post.problem


def test_a_posts_csv_with_a_runaway_quote_is_refused(tmp_path):
    folder = folder_export(
        tmp_path, 'post_id,is_published,title\n1.a,true,"Never closed\n' + "x" * 200_000, {}
    )

    with pytest.raises(ExportUnreadable, match="posts.csv could not be read"):
        export_index(folder)


def test_nul_characters_in_posts_csv_and_html_are_left_out(tmp_path):
    """PostgreSQL refuses text with NUL: one in a title stopped the whole import."""
    folder = folder_export(
        tmp_path,
        "post_id,is_published,title,subtitle\n1.a,true,Fl\x00ood,Sub\x00title\n",
        {"1.a.html": "<p>Wa\x00ter</p>"},
    )

    (post,) = export_posts(folder, export_index(folder))

    assert (post.row.title, post.row.subtitle) == ("Flood", "Subtitle")
    assert "\x00" not in post.html
