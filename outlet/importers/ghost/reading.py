"""Streaming a Ghost JSON export (Ghost 0.x to 6) into plain records, one row at a time.

A Ghost export is its database's tables as JSON, in one of three wrappings:
`{"db": [{"meta": …, "data": {…}}]}` (what Ghost's admin exports),
`{"db": {"meta": …, "data": {…}}}`, or the bare `{"meta": …, "data": {…}}`
(both valid for Ghost's importer). The file is read with `ijson` event by event,
never as a whole, so memory stays flat however many posts and bodies it holds.

`export_index` is the first pass: it checks the whole file parses before
anything is written, and keeps the small tables posts refer to (users, tags,
posts_tags, posts_authors, posts_meta, settings), each row reduced to the
fields the converter reads. `export_posts` is the second pass, yielding each
post (and page) row as a dict.
"""

from __future__ import annotations

import codecs
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import ijson

from ..running import SourceUnreadable

#: Where the `data` object sits in each of Ghost's wrappings, as ijson prefixes.
_DATA_PREFIXES = ("db.item.data", "db.data", "data")
_VERSION_PREFIXES = ("db.item.meta.version", "db.meta.version", "meta.version")
_ROW = re.compile(r"^(?P<data>db\.item\.data|db\.data|data)\.(?P<table>[a-z_]+)\.item$")
#: The SEO, social and image fields Ghost keeps in posts_meta (v3+; older posts hold them).
META_FIELDS = (
    "meta_title",
    "meta_description",
    "og_title",
    "og_description",
    "og_image",
    "twitter_title",
    "twitter_description",
    "twitter_image",
    "feature_image_alt",
    "feature_image_caption",
    "email_only",
)
#: The settings keys that may say where the site was (none in most exports).
SITE_URL_KEYS = ("url", "site_url")
#: How deep a Ghost export nests (its tables' rows sit five deep); deeper is refused.
MAX_DEPTH = 64


class ExportUnreadable(SourceUnreadable):
    """The file is not a (complete) Ghost export; the message says why, for a person."""


@dataclass(frozen=True)
class User:
    id: str
    name: str
    slug: str
    email: str = ""
    bio: str = ""


@dataclass(frozen=True)
class Tag:
    id: str
    name: str
    slug: str
    description: str = ""
    #: "public", or "internal" for Ghost's `#hash` tags (never shown to readers).
    visibility: str = "public"

    @property
    def internal(self) -> bool:
        return self.visibility == "internal" or self.name.startswith("#")


@dataclass
class ExportIndex:
    """What posts refer to, from anywhere in the file; posts themselves are only counted."""

    #: The `data` object's ijson prefix (which wrapping the file uses).
    data_prefix: str = ""
    version: str = ""
    site_url: str = ""
    site_title: str = ""
    #: The Ghost install's own id (settings `db_hash`): names the source when the url is unknown.
    db_hash: str = ""
    users: dict[str, User] = field(default_factory=dict)
    tags: dict[str, Tag] = field(default_factory=dict)
    #: post id → [(sort_order, tag id)] / [(sort_order, user id)], in file order.
    post_tags: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    post_authors: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    #: post id → the posts_meta fields that are set (META_FIELDS).
    posts_meta: dict[str, dict[str, str]] = field(default_factory=dict)
    posts: int = 0

    def tags_of(self, post_id: str) -> list[Tag]:
        rows = sorted(self.post_tags.get(post_id, []), key=lambda row: row[0])
        return [self.tags[tag_id] for _, tag_id in rows if tag_id in self.tags]

    def authors_of(self, post_id: str) -> list[User]:
        rows = sorted(self.post_authors.get(post_id, []), key=lambda row: row[0])
        return [self.users[user_id] for _, user_id in rows if user_id in self.users]


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def source_id(value: Any) -> str:
    """Ghost ids are 24-hex strings (1.0+) or integers (0.x): one string form for both.

    Interned: the relation tables repeat each post, tag and user id once per row,
    and one shared string per id keeps the index small for a large archive.
    """
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return sys.intern(str(value).strip())


def _order(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _unreadable(exc: Exception) -> ExportUnreadable:
    return ExportUnreadable(
        f"The file is not a complete Ghost export (JSON error: {exc}). "
        "Nothing was imported; export it again from Ghost (Settings → Advanced → Export)."
    )


#: What JSON can carry and no database text can: NUL (PostgreSQL refuses it), lone surrogates.
UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _read_row(index: ExportIndex, table: str, row: dict[str, Any], order: int) -> None:
    row = {k: UNSTORABLE.sub("", v) if isinstance(v, str) else v for k, v in row.items()}
    if table == "users":
        user_id = source_id(row.get("id"))
        index.users[user_id] = User(
            id=user_id,
            name=_text(row.get("name")) or _text(row.get("slug")) or "Ghost author",
            slug=_text(row.get("slug")),
            email=_text(row.get("email")),
            bio=_text(row.get("bio")),
        )
    elif table == "tags":
        tag_id = source_id(row.get("id"))
        index.tags[tag_id] = Tag(
            id=tag_id,
            name=_text(row.get("name")) or _text(row.get("slug")),
            slug=_text(row.get("slug")),
            description=_text(row.get("description")),
            visibility=_text(row.get("visibility")) or "public",
        )
    elif table in ("posts_tags", "posts_authors"):
        post_id = source_id(row.get("post_id"))
        other = source_id(row.get("tag_id" if table == "posts_tags" else "author_id"))
        target = index.post_tags if table == "posts_tags" else index.post_authors
        # Rows without sort_order (Ghost 1.x) keep their file order.
        sort_order = _order(row.get("sort_order")) if "sort_order" in row else float(order)
        target.setdefault(post_id, []).append((sort_order, other))
    elif table == "posts_meta":
        values = {
            name: value if isinstance(value, str) else str(value)
            for name in META_FIELDS
            if (value := row.get(name)) not in (None, "", False)
        }
        if values:
            index.posts_meta[source_id(row.get("post_id"))] = values
    elif table == "settings":
        key, value = _text(row.get("key")), _text(row.get("value"))
        if key in SITE_URL_KEYS and value.startswith(("http://", "https://")):
            index.site_url = index.site_url or value.rstrip("/")
        elif key == "title":
            index.site_title = value
        elif key == "db_hash":
            index.db_hash = value


def _open(path: Path) -> BinaryIO:
    """The file for reading, past a UTF-8 byte order mark (an editor on Windows adds one)."""
    stream = path.open("rb")
    if stream.read(3) != codecs.BOM_UTF8:
        stream.seek(0)
    return stream


def _events(stream: BinaryIO) -> Iterator[tuple[str, str, Any]]:
    """`ijson.parse`'s (prefix, event, value), refusing a file nested deeper than MAX_DEPTH.

    The prefixes are built here: ijson's C parser builds every level's prefix for a whole
    buffer before handing the events on, so a few kilobytes of `[[[[…` would cost
    gigabytes before any depth could be checked.
    """
    path: list[str] = []
    for event, value in ijson.basic_parse(stream, use_float=True):
        if event == "map_key":
            prefix = ".".join(path[:-1])
            path[-1] = value
        elif event in ("start_map", "start_array"):
            prefix = ".".join(path)
            path.append("item" if event == "start_array" else "")
            if len(path) > MAX_DEPTH:
                raise ExportUnreadable(
                    f"The file is not a Ghost export: it is nested deeper than {MAX_DEPTH} "
                    "levels, as no export is. Nothing was imported."
                )
        elif event in ("end_map", "end_array"):
            path.pop()
            prefix = ".".join(path)
        else:
            prefix = ".".join(path)
        yield prefix, event, value


_INDEXED_TABLES = {"users", "tags", "posts_tags", "posts_authors", "posts_meta", "settings"}


def export_index(path: Path) -> ExportIndex:
    """Read the whole file once: raise ExportUnreadable if it is not a complete Ghost export."""
    index = ExportIndex()
    saw_posts = False
    builder: ijson.ObjectBuilder | None = None
    row_prefix = row_table = ""
    rows_read = 0
    try:
        with _open(path) as stream:
            for prefix, event, value in _events(stream):
                if builder is not None:
                    builder.event(event, value)
                    if prefix == row_prefix and event == "end_map":
                        if isinstance(builder.value, dict):
                            rows_read += 1
                            _read_row(index, row_table, builder.value, rows_read)
                        builder = None
                    continue
                if event == "string" and prefix in _VERSION_PREFIXES:
                    index.version = index.version or value
                    continue
                if event == "start_map" and prefix in _DATA_PREFIXES and not index.data_prefix:
                    index.data_prefix = prefix
                    continue
                if prefix == f"{index.data_prefix}.posts" and event == "start_array":
                    saw_posts = True
                    continue
                match = _ROW.match(prefix)
                if match is None or match["data"] != index.data_prefix:
                    continue
                if match["table"] == "posts" and event == "start_map":
                    index.posts += 1
                elif match["table"] in _INDEXED_TABLES and event == "start_map":
                    builder = ijson.ObjectBuilder()
                    builder.event(event, value)
                    row_prefix, row_table = prefix, match["table"]
    except ijson.JSONError as exc:
        raise _unreadable(exc) from exc
    except UnicodeDecodeError as exc:
        raise ExportUnreadable(
            "The file is not a Ghost export: it is not UTF-8 JSON. Nothing was imported."
        ) from exc
    except OSError as exc:
        raise ExportUnreadable(f"The file could not be read: {exc}.") from exc
    if not index.data_prefix or not saw_posts:
        raise ExportUnreadable(
            "This is not a Ghost export: it has no data.posts table (a Ghost export is the JSON "
            "file from Settings → Advanced → Export). Nothing was imported."
        )
    return index


def export_posts(path: Path, index: ExportIndex) -> Iterator[dict[str, Any]]:
    """Every row of the posts table (posts and pages), in file order."""
    try:
        with _open(path) as stream:
            for row in ijson.items(stream, f"{index.data_prefix}.posts.item", use_float=True):
                if isinstance(row, dict):
                    yield row
    except ijson.JSONError as exc:  # the file changed between the two passes
        raise _unreadable(exc) from exc
    except OSError as exc:
        raise ExportUnreadable(f"The file could not be read: {exc}.") from exc
