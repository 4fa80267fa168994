"""Reading an uploaded list: a CSV file, or the zip Mailchimp (or Substack) gives, as
a stream of neutral records (formats.py), a line at a time: a million-row file is
never held whole.

Encodings: UTF-8 (with or without a BOM), UTF-16 with a BOM (Excel's "Unicode text",
tab-separated) or without one, and, when the first 64 KB are not UTF-8, Windows-1252
(Latin-1's superset, what older Excel writes). Separators: comma, else tab or semicolon
when the header row uses one of them and no comma.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from django.core.files.base import File

from outlet.newsletters.audience.formats import (
    AUTO,
    AudienceRecord,
    ImportFileError,
    format_check,
    format_detect,
    record_parse,
)

#: How much of a file decides its encoding.
SNIFF_BYTES = 64 * 1024
_ZIP_MAGIC = b"PK\x03\x04"
#: What the CSV files of a zip may unpack to, together: a Mailchimp export of a million
#: addresses is a few hundred MB; a zip bomb (a small upload unpacking to many GB) is
#: refused before a row is read. zipfile stops a member at the size its entry declares.
MAX_UNZIPPED_BYTES = 1024**3
#: The order the Mailchimp zip's files are read in; others follow by name.
_MEMBER_ORDER = ("subscribed", "unsubscribed", "cleaned")


@dataclass
class AudienceFile:
    """An opened upload: its format (from the first file's header) and its records."""

    stream: IO[bytes]
    format: str
    members: list[str] = field(default_factory=list)  # the zip's files read, in order
    skipped: list[str] = field(default_factory=list)  # the zip's files with no address column

    def records(self) -> Iterator[AudienceRecord]:
        """Every data row, in order; in a zip, lines count on from one file to the
        next, so each row of the import keeps its own number."""
        if not self.members:
            self.stream.seek(0)
            yield from _records(self.stream, self.format, "")
            return
        offset = 0
        try:
            with zipfile.ZipFile(self.stream) as archive:
                for name in self.members:
                    with archive.open(name) as member:
                        last = offset
                        for record in _records(member, self.format, name, offset):
                            last = record.line
                            yield record
                        offset = last
        except (zipfile.BadZipFile, zlib.error, EOFError):
            raise ImportFileError(
                f"The zip file is damaged after line {offset}; download it again."
            ) from None


def audience_file_open(stream: IO[bytes], *, requested: str = AUTO) -> AudienceFile:
    """Open an upload and settle its format from its header row(s); raise ImportFileError,
    with a message fit for an editor, when no part of it is a list this site reads."""
    stream.seek(0)
    head = stream.read(len(_ZIP_MAGIC))
    stream.seek(0)
    if head == _ZIP_MAGIC:
        return _zip_open(stream, requested)
    header = _header(stream)
    stream.seek(0)
    return AudienceFile(stream=stream, format=format_check(header, requested))


def _zip_open(stream: IO[bytes], requested: str) -> AudienceFile:
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile:
        raise ImportFileError("The zip file is damaged or incomplete; download it again.") from None
    with archive:
        names = sorted(
            (
                info.filename
                for info in archive.infolist()
                if not info.is_dir()
                and info.filename.lower().endswith(".csv")
                and not info.filename.startswith("__MACOSX/")
            ),
            key=_member_rank,
        )
        unpacked = sum(archive.getinfo(name).file_size for name in names)
        if unpacked > MAX_UNZIPPED_BYTES:
            raise ImportFileError(
                f"The zip's CSV files unpack to {unpacked // 2**20} MB, more than the "
                f"{MAX_UNZIPPED_BYTES // 2**20} MB an import reads; upload them one at a time."
            )
        read, skipped, formats = [], [], set()
        for name in names:
            try:
                with archive.open(name) as member:
                    header = _header(member)
            except (zipfile.BadZipFile, zlib.error, EOFError):
                raise ImportFileError(
                    f"The zip file is damaged ({name}); download it again."
                ) from None
            except NotImplementedError:  # a RuntimeError: first
                raise ImportFileError(
                    f"{name} in the zip is compressed in a way this site cannot read; unzip it "
                    "and upload the CSV."
                ) from None
            except RuntimeError:  # zipfile's word for an encrypted member
                raise ImportFileError(
                    f"{name} in the zip is protected by a password; unzip it and upload the CSV."
                ) from None
            if format_detect(header) is None:
                skipped.append(name)
                continue
            formats.add(format_check(header, requested))
            read.append(name)
    if not read:
        raise ImportFileError(
            "The zip holds no CSV file with an email column"
            + (f" (found: {', '.join(names)})." if names else ".")
        )
    if len(formats) > 1:
        raise ImportFileError(
            "The zip mixes files of different exports; upload them one at a time."
        )
    stream.seek(0)
    return AudienceFile(stream=stream, format=formats.pop(), members=read, skipped=skipped)


def _member_rank(name: str) -> tuple[int, str]:
    base = name.rsplit("/", 1)[-1].lower()
    for rank, prefix in enumerate(_MEMBER_ORDER):
        if base.startswith(prefix):
            return rank, name
    return len(_MEMBER_ORDER), name


def _header(binary: IO[bytes]) -> list[str]:
    rows = _csv_rows(binary)
    try:
        _line, header = next(rows)
    except StopIteration:
        raise ImportFileError("The file is empty.") from None
    return header


def _records(
    binary: IO[bytes], format: str, member: str, offset: int = 0
) -> Iterator[AudienceRecord]:
    rows = _csv_rows(binary)
    try:
        _line, header = next(rows)
    except StopIteration:
        return
    for line, values in rows:
        if not any(value.strip() for value in values):
            continue
        if any("\x00" in value for value in values):
            raise ImportFileError(f"Line {offset + line} holds binary data, not CSV text.")
        yield record_parse(format, header, values, offset + line, member)


def _csv_rows(binary: IO[bytes]) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) for each row, the header first; a file that stops being
    readable raises ImportFileError naming the line."""
    lines = _lines_decoded(binary)
    first = next(lines, None)
    if first is None:
        return
    if "\x00" in first:
        raise ImportFileError("The file looks binary, not CSV.")
    reader = csv.reader(itertools.chain([first], lines), delimiter=_delimiter(first))
    try:
        for values in reader:
            yield reader.line_num, values
    except csv.Error as exc:
        raise ImportFileError(f"Line {reader.line_num} cannot be read: {exc}") from exc


def _delimiter(header: str) -> str:
    if "," in header:
        return ","
    if "\t" in header:
        return "\t"
    if ";" in header:
        return ";"
    return ","


def _lines_decoded(binary: IO[bytes]) -> Iterator[str]:
    head = binary.read(SNIFF_BYTES)
    binary.seek(0)
    encoding = _encoding(head)
    if encoding.startswith("utf-16"):
        yield from _lines_utf16(binary, encoding)
        return
    for number, raw in enumerate(File(binary), start=1):
        if encoding == "cp1252":
            yield _cp1252(raw)
            continue
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise ImportFileError(
                f"The file is not UTF-8 text (a bad byte on line {number}). "
                "Export it again as “CSV UTF-8”."
            ) from None


def _encoding(head: bytes) -> str:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if len(head) >= 4 and head[1] == 0 and head[3] == 0 and head[0] and head[2]:
        return "utf-16-le"  # ASCII text with a zero after each byte: UTF-16 without a BOM
    if len(head) >= 4 and head[0] == 0 and head[2] == 0 and head[1] and head[3]:
        return "utf-16-be"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        if b"\x00" in head:
            raise ImportFileError("The file looks binary, not CSV.") from None
        return "cp1252"
    return "utf-8"


def _cp1252(raw: bytes) -> str:
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:  # the five bytes cp1252 leaves undefined: as Latin-1
        return raw.decode("latin-1")


_LINE_END = re.compile(r"(?<=\r\n)|(?<=\r)(?!\n)|(?<=\n)")


def _lines_utf16(binary: IO[bytes], encoding: str) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder(encoding)()
    pending = ""
    while True:
        chunk = binary.read(SNIFF_BYTES)
        try:
            text = pending + decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError:
            raise ImportFileError("The file is not valid UTF-16 text.") from None
        if chunk and text.endswith("\r"):  # its "\n" may start the next read
            text, held = text[:-1], "\r"
        else:
            held = ""
        lines = _LINE_END.split(text)
        pending = lines.pop() + held if chunk else ""
        yield from (line for line in lines if line)
        if not chunk:
            if pending:
                yield pending
            return
