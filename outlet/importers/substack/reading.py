"""Reading a Substack export (a folder, or the .zip Substack mails) into plain rows.

An export holds `posts.csv` (one row per post: post_id like ``123456.my-slug``,
post_date, is_published, type, audience, title, subtitle, podcast_url…) and
`posts/<post_id>.html` with each post's body; other CSVs (subscribers, opens…)
are not read here. A zip is read member by member, never extracted: a member
whose name climbs out of the archive (``../``, an absolute path) refuses the
whole file, and the bytes read are capped (zip bombs) both in total and per post.

`export_index` is the first pass: it reads the whole of posts.csv, checks it is a
Substack export and that every row has a usable id, before anything is written.
`export_posts` is the second pass, yielding each row with its HTML (or the reason
it has none, so that post fails alone).

posts.csv is UTF-8 as Substack writes it (a BOM is accepted). A file re-saved by
Excel on Windows is in Windows-1252 instead: it is decoded as such, and the
report says so, rather than refused, because re-exporting is not always possible
once a publication has left Substack; a file neither encoding reads is refused.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from ..running import SourceUnreadable

#: Bytes of posts.csv and posts/*.html read from one export, at most (zip bombs).
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
#: One post's HTML file, at most.
MAX_POST_BYTES = 20 * 1024 * 1024
#: Columns Substack writes; a posts.csv needs post_id and most of these.
KNOWN_COLUMNS = (
    "post_id",
    "post_date",
    "is_published",
    "email_sent_at",
    "inbox_sent_at",
    "type",
    "audience",
    "title",
    "subtitle",
    "podcast_url",
)
_POST_ID = re.compile(r"^\d+(\.[^/\\]*)?$")
_ENCODINGS = ("utf-8-sig", "cp1252")
#: Substack's default line under a subscribe box names the publication.
_THANKS = re.compile(r"Thanks for reading ([^<>!]{1,120}?)!", re.IGNORECASE)
#: ...and its subscribe buttons name the publication's own address.
_SUBSCRIBE = re.compile(r"https?://([a-z0-9.-]+)/subscribe\b", re.IGNORECASE)
_PUBLICATION_SCAN = 20
#: What a damaged or encrypted zip member raises while it is read.
DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError)


class ExportUnreadable(SourceUnreadable):
    """The file is not a (readable) Substack export; the message says why, for a person."""


@dataclass(frozen=True)
class Row:
    """One line of posts.csv; missing columns read as empty."""

    post_id: str
    post_date: str = ""
    is_published: str = ""
    email_sent_at: str = ""
    inbox_sent_at: str = ""
    type: str = ""
    audience: str = ""
    title: str = ""
    subtitle: str = ""
    podcast_url: str = ""

    @property
    def html_name(self) -> str:
        return f"{self.post_id}.html"


@dataclass
class ExportIndex:
    rows: int = 0
    encoding: str = "utf-8"
    #: Names of the HTML files under posts/ (without the folder).
    html_names: set[str] = field(default_factory=set)
    #: The publication's name where the export shows it ("" if not found).
    publication: str = ""
    #: The publication's own host (riverside.substack.com) where the export shows it.
    host: str = ""


@dataclass(frozen=True)
class ExportPost:
    row: Row
    html: str = ""
    #: Why the post has no HTML ("" when it has).
    problem: str = ""


class _Export:
    """A folder or a zip, read by member name under the folder holding posts.csv."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        self.root = ""
        if path.is_dir():
            self.root_dir = path
        else:
            self._open_zip(path)

    def _open_zip(self, path: Path) -> None:
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ExportUnreadable(
                "This is not a Substack export: give the export folder or the .zip "
                f"Substack sent ({exc})."
            ) from exc
        infos = self.zip.infolist()
        for info in infos:
            name = info.filename.replace("\\", "/")
            parts = PurePosixPath(name).parts
            if name.startswith("/") or ".." in parts or re.match(r"^[A-Za-z]:", name):
                raise ExportUnreadable(
                    f"The zip was refused: its member “{info.filename[:200]}” points outside "
                    "the archive. Nothing was imported."
                )
        candidates = sorted(
            (i.filename for i in infos if PurePosixPath(i.filename).name == "posts.csv"),
            key=lambda name: name.count("/"),
        )
        if not candidates:
            raise ExportUnreadable("This is not a Substack export: the zip has no posts.csv.")
        self.root = candidates[0][: -len("posts.csv")]
        read = sum(
            i.file_size
            for i in infos
            if i.filename == f"{self.root}posts.csv"
            or (i.filename.startswith(f"{self.root}posts/") and i.filename.endswith(".html"))
        )
        if read > MAX_TOTAL_BYTES:
            raise ExportUnreadable(
                f"The zip was refused: its posts unpack to {read} bytes, more than the "
                f"{MAX_TOTAL_BYTES} an export is allowed. Nothing was imported."
            )

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()

    def csv_bytes(self) -> IO[bytes]:
        """posts.csv as a binary stream, read as it is parsed."""
        if self.zip is not None:
            return self.zip.open(f"{self.root}posts.csv")
        csv_path = self.root_dir / "posts.csv"
        if not csv_path.is_file():
            raise ExportUnreadable("This is not a Substack export: the folder has no posts.csv.")
        return csv_path.open("rb")

    def html_names(self) -> set[str]:
        if self.zip is not None:
            prefix = f"{self.root}posts/"
            return {
                name[len(prefix) :]
                for name in self.zip.namelist()
                if name.startswith(prefix)
                and name.endswith(".html")
                and "/" not in name[len(prefix) :]
            }
        posts = self.root_dir / "posts"
        return {p.name for p in posts.glob("*.html") if p.is_file()} if posts.is_dir() else set()

    def html_bytes(self, name: str) -> bytes:
        """One post's HTML file; ValueError with a reason if it cannot be taken."""
        if self.zip is not None:
            info = self.zip.getinfo(f"{self.root}posts/{name}")
            if info.file_size > MAX_POST_BYTES:
                raise ValueError(f"its HTML file is over {MAX_POST_BYTES} bytes")
            try:
                with self.zip.open(info) as member:
                    return member.read(MAX_POST_BYTES + 1)
            except DAMAGED as exc:
                raise ValueError(f"its HTML file is damaged in the zip ({exc})") from exc
        posts = (self.root_dir / "posts").resolve()
        file = (posts / name).resolve()
        if file.parent != posts or not file.is_file():
            raise ValueError("its HTML file is missing from the export")
        if file.stat().st_size > MAX_POST_BYTES:
            raise ValueError(f"its HTML file is over {MAX_POST_BYTES} bytes")
        return file.read_bytes()


def _rows(export: _Export, encoding: str) -> Iterator[Row]:
    """posts.csv's rows, streamed; ExportUnreadable for what is not a Substack posts.csv."""
    with export.csv_bytes() as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        reader = csv.DictReader(text)
        try:
            columns = [(c or "").strip().lower() for c in reader.fieldnames or []]
            reader.fieldnames = columns
            known = [c for c in KNOWN_COLUMNS if c in columns]
            if "post_id" not in columns or len(known) < 3:
                raise ExportUnreadable(
                    "This is not a Substack export: posts.csv has no post_id, post_date, "
                    f"is_published… columns (it has: {', '.join(columns[:8]) or 'none'})."
                )
            for line, values in enumerate(reader, start=2):
                post_id = (values.get("post_id") or "").strip()
                if not post_id and not any((v or "").strip() for v in values.values()):
                    continue  # a blank line
                if not _POST_ID.match(post_id) or ".." in post_id:
                    raise ExportUnreadable(
                        f"posts.csv line {line}: “{post_id[:80]}” is not a Substack post id "
                        "(like 123456.my-post). Nothing was imported."
                    )
                yield Row(
                    post_id=post_id,
                    **{
                        c: (values.get(c) or "").replace("\x00", "").strip()
                        for c in KNOWN_COLUMNS[1:]
                    },
                )
        except csv.Error as exc:
            raise ExportUnreadable(
                f"posts.csv could not be read (line {reader.line_num}: {exc}). "
                "Nothing was imported."
            ) from exc


def _decode(data: bytes) -> tuple[str, str]:
    """A post's HTML as text, without NUL (which no database text keeps)."""
    data = data.replace(b"\x00", b"")
    for encoding in _ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace"), "utf-8 (with unreadable bytes replaced)"


def export_index(path: Path) -> ExportIndex:
    """Read posts.csv whole once: raise ExportUnreadable if this is not a usable export."""
    if not path.exists():
        raise ExportUnreadable(f"{path}: no such file or folder.")
    export = _Export(path)
    try:
        index = ExportIndex(html_names=export.html_names())
        for encoding in _ENCODINGS:
            try:
                ids = [row.post_id for row in _rows(export, encoding)]
            except UnicodeDecodeError:
                continue
            index.encoding = encoding.removesuffix("-sig")
            break
        else:
            raise ExportUnreadable(
                "posts.csv is in neither UTF-8 nor Windows-1252; save it as UTF-8 and try "
                "again. Nothing was imported."
            )
        index.rows = len(ids)
        index.publication, index.host = _publication(
            export, [f"{i}.html" for i in ids if f"{i}.html" in index.html_names]
        )
        return index
    except (OSError, *DAMAGED) as exc:
        raise ExportUnreadable(
            f"The export could not be read ({exc}). Nothing was imported."
        ) from exc
    finally:
        export.close()


def _publication(export: _Export, names: list[str]) -> tuple[str, str]:
    """The publication's name (Substack's "Thanks for reading …!" line) and its host (its
    subscribe buttons' address), from the first posts that show them; "" where none does."""
    publication = host = ""
    for name in names[:_PUBLICATION_SCAN]:
        try:
            html, _ = _decode(export.html_bytes(name))
        except (ValueError, KeyError):
            continue
        thanks, subscribe = _THANKS.search(html), _SUBSCRIBE.search(html)
        publication = publication or (thanks.group(1).strip() if thanks else "")
        host = host or (subscribe.group(1).lower() if subscribe else "")
        if publication and host:
            break
    return publication, host


def export_posts(path: Path, index: ExportIndex) -> Iterator[ExportPost]:
    """Every row of posts.csv with its HTML, in file order (read after `export_index`)."""
    export = _Export(path)
    encoding = "utf-8-sig" if index.encoding == "utf-8" else index.encoding
    try:
        for row in _rows(export, encoding):
            if row.html_name not in index.html_names:
                yield ExportPost(row=row, problem="its HTML file is missing from the export")
                continue
            try:
                html, _ = _decode(export.html_bytes(row.html_name))
            except (ValueError, KeyError) as exc:
                yield ExportPost(row=row, problem=str(exc))
                continue
            yield ExportPost(row=row, html=html)
    except (OSError, *DAMAGED) as exc:
        raise ExportUnreadable(f"The export could not be read ({exc}).") from exc
    finally:
        export.close()
