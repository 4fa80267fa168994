"""Each export format's parser, read from fixture files written after each platform's
documented columns: pure functions, no database."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from outlet.newsletters.audience.formats import (
    AudienceRecord,
    Format,
    ImportFileError,
    Status,
    format_detect,
    record_as_row,
    record_from_row,
)
from outlet.newsletters.audience.reading import audience_file_open

FIXTURES = Path(__file__).parent / "fixtures" / "audience"
MAILCHIMP_FILES = [
    "subscribed_members_export_1a2b3c.csv",
    "unsubscribed_members_export_1a2b3c.csv",
    "cleaned_members_export_1a2b3c.csv",
]


def mailchimp_zip() -> bytes:
    """The zip Mailchimp gives, its files in another order than they are read in."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in reversed(MAILCHIMP_FILES):
            archive.write(FIXTURES / name, f"members_export_1a2b3c/{name}")
        archive.writestr("__MACOSX/members_export_1a2b3c/._cleaned_members_export_1a2b3c.csv", "x")
        archive.writestr("members_export_1a2b3c/README.txt", "not a list")
    return buffer.getvalue()


def records(data: bytes, requested: str = "auto") -> tuple[str, list[AudienceRecord]]:
    opened = audience_file_open(io.BytesIO(data), requested=requested)
    return opened.format, list(opened.records())


def by_email(found: list[AudienceRecord]) -> dict[str, AudienceRecord]:
    return {record.email: record for record in found}


def test_each_header_is_recognised():
    assert format_detect(["Email Address", "First Name", "OPTIN_TIME", "LEID"]) == "mailchimp"
    assert format_detect(["email", "active_subscription", "plan", "email_disabled"]) == "substack"
    assert format_detect(["id", "email", "name", "subscribed_to_emails", "labels"]) == "ghost"
    assert format_detect([" Email ", "Name"]) == "csv"
    assert format_detect(["address", "name"]) is None


def test_mailchimp_subscribed_file_keeps_opt_in_and_confirmation_times_and_ips():
    format, found = records((FIXTURES / MAILCHIMP_FILES[0]).read_bytes())
    assert format == Format.MAILCHIMP
    ada = found[0]
    assert ada == AudienceRecord(
        line=2,
        email="ada@example.org",
        name="Ada Lovelace",
        status=Status.SUBSCRIBED,
        opted_in_at=datetime(2019, 5, 12, 10, 11, 12, tzinfo=UTC),
        opted_in_ip="203.0.113.5",
        confirmed_at=datetime(2019, 5, 12, 10, 15, tzinfo=UTC),
        confirmed_ip="203.0.113.6",
        labels=("Founding readers",),
    )
    bob = found[1]  # added by hand at Mailchimp: no opt-in, an IPv6 confirmation
    assert (bob.name, bob.opted_in_at, bob.opted_in_ip) == ("", None, "")
    assert bob.confirmed_ip == "2001:db8::7"
    assert found[2].name == "Zoë Ørsted"
    assert [r.email for r in found[3:]] == [
        "ADA@Example.org", "not-an-address", "onlist@example.org", "suppressed-here@example.org",
    ]  # fmt: skip


def test_mailchimp_unsubscribed_and_cleaned_files_say_so():
    _format, unsubscribed = records((FIXTURES / MAILCHIMP_FILES[1]).read_bytes())
    assert {(r.email, r.status) for r in unsubscribed} == {
        ("gone@example.org", Status.UNSUBSCRIBED),
        ("left@example.org", Status.UNSUBSCRIBED),
    }
    _format, cleaned = records((FIXTURES / MAILCHIMP_FILES[2]).read_bytes())
    assert [(r.email, r.status) for r in cleaned] == [("bounced@example.org", Status.CLEANED)]


def test_mailchimp_zip_is_read_subscribed_first_with_lines_counting_on():
    opened = audience_file_open(io.BytesIO(mailchimp_zip()))
    assert opened.format == Format.MAILCHIMP
    assert [name.rsplit("/", 1)[-1] for name in opened.members] == MAILCHIMP_FILES
    found = list(opened.records())
    assert [(r.line, r.email, r.status) for r in found[-3:]] == [
        (10, "gone@example.org", Status.UNSUBSCRIBED),
        (11, "left@example.org", Status.UNSUBSCRIBED),
        (13, "bounced@example.org", Status.CLEANED),
    ]
    assert len({r.line for r in found}) == len(found) == 10


def test_substack_export_with_bom_reads_plans_stripe_ids_and_disabled_email():
    format, found = records((FIXTURES / "email_list.outlet-weekly.csv").read_bytes())
    assert format == Format.SUBSTACK
    rows = by_email(found)
    assert rows["reader@example.net"].status == Status.SUBSCRIBED
    assert rows["reader@example.net"].opted_in_at == datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert (rows["paid@example.net"].plan, rows["paid@example.net"].stripe_customer_id) == (
        "paid",
        "cus_PAID123",
    )
    assert rows["founder@example.net"].plan == "founding"
    assert rows["off@example.net"].status == Status.EMAIL_DISABLED
    assert rows["comp@example.net"].status == Status.SUBSCRIBED  # "FALSE" is false
    assert rows["lapsed@example.net"].plan == "paid (inactive)"
    assert rows[""].line == 6  # an empty address stays a row, refused later


def test_ghost_members_keep_labels_tiers_newsletters_and_unsubscribes():
    format, found = records((FIXTURES / "ghost-members-2025-01-01.csv").read_bytes())
    assert format == Format.GHOST
    rows = by_email(found)
    member = rows["member@example.com"]
    assert member.labels == ("VIP", "Early")
    assert member.newsletters == ("Weekly", "Daily")
    assert member.plan == "free"
    assert member.opted_in_at == datetime(2023, 1, 2, 10, tzinfo=UTC)
    assert rows["paidmember@example.com"].stripe_customer_id == "cus_GHOST1"
    assert rows["paidmember@example.com"].plan == "paid, Supporter"
    assert rows["comped@example.com"].plan == "comp, Supporter"
    assert rows["quiet@example.com"].status == Status.UNSUBSCRIBED
    assert rows["deleted@example.com"].status == Status.UNSUBSCRIBED


def test_utf16_tab_separated_and_cp1252_files_are_read():
    format, found = records((FIXTURES / "ghost-members-utf16.csv").read_bytes())
    assert format == Format.GHOST
    assert [r.name for r in found] == ["Mem Ber Ünïcode", "Paid Member Ünïcode", "Quiet Ünïcode"]
    assert found[0].labels == ("VIP", "Early")

    format, found = records((FIXTURES / "mailchimp_subscribed_cp1252.csv").read_bytes())
    assert format == Format.MAILCHIMP
    assert [r.name for r in found] == ["José Müller", "Zoë Ørsted"]
    assert found[0].opted_in_ip == "192.0.2.1"


def test_utf16_without_a_byte_order_mark_is_read():
    data = "email,name\nutf@example.com,Ünï\n".encode("utf-16-le")
    assert records(data)[1][0].name == "Ünï"


def test_a_plain_csv_keeps_its_columns_by_name_and_ignores_the_rest():
    format, found = records((FIXTURES / "plain-list.csv").read_bytes())
    assert format == Format.CSV
    assert found == [AudienceRecord(line=2, email="plain@example.com", name="Plain Reader")]
    # A platform's export is not read as a plain CSV: its unsubscribed rows would be
    # subscribed (the plain CSV has no status).
    with pytest.raises(ImportFileError, match="would be subscribed"):
        records((FIXTURES / "ghost-members-2025-01-01.csv").read_bytes(), "csv")


@pytest.mark.parametrize(
    ("data", "requested", "message"),
    [
        ((FIXTURES / "plain-list.csv").read_bytes(), "mailchimp", "not a Mailchimp"),
        ((FIXTURES / "ghost-members-2025-01-01.csv").read_bytes(), "substack", "not a Substack"),
        ((FIXTURES / MAILCHIMP_FILES[0]).read_bytes(), "csv", "not a CSV"),
        (b"PK\x03\x04broken", "auto", "zip file is damaged"),
        (b"title,body\nHello,World\n", "auto", "include \u201cemail\u201d"),
    ],
)
def test_a_file_that_is_not_the_format_asked_for_is_refused_clearly(data, requested, message):
    with pytest.raises(ImportFileError, match=message):
        records(data, requested)


def test_a_zip_without_a_list_is_refused_clearly():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("posts.csv", "post_id,title\n1,Hello\n")
    with pytest.raises(ImportFileError, match="no CSV file with an email column"):
        records(buffer.getvalue())


def test_stored_rows_round_trip_and_plain_rows_stay_three_long():
    _format, found = records(mailchimp_zip())
    for record in found:
        assert record_from_row(record_as_row(record)) == record
    plain = AudienceRecord(line=2, email="a@example.com", name="A")
    assert record_as_row(plain) == [2, "a@example.com", "A"]
    assert record_from_row([7, "old@example.com", "Stored before formats"]).status == "subscribed"


class CountingStream(io.BytesIO):
    """A file that counts how much of it was read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.total = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.total += len(chunk)
        return chunk


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252", "utf-16", "zip"])
def test_a_large_file_is_read_as_it_goes_not_whole(encoding):
    """The first of 100,000 rows arrives after reading a small part of the file (of a
    zip: of its compressed list, the archive's directory at its end aside)."""
    lines = "email,name\n" + "".join(f"r{n}@example.com,Zoë {n}\n" for n in range(100_000))
    if encoding == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr("subscribed_members_export_1.csv", lines.encode())
        data = buffer.getvalue()
    else:
        data = lines.encode(encoding)
    stream = CountingStream(data)
    first = next(audience_file_open(stream).records())
    assert first.email == "r0@example.com"
    assert stream.total < len(data) / 4


def test_a_file_is_opened_from_its_start_wherever_it_was_left():
    stream = io.BytesIO(mailchimp_zip())
    stream.read()  # as after an import read it to the end
    assert audience_file_open(stream).format == Format.MAILCHIMP


def test_a_zip_damaged_midway_is_refused_clearly():
    lines = "email,name\n" + "".join(f"r{n}@example.com,R {n}\n" for n in range(20_000))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("subscribed_members_export_1.csv", lines.encode())
    data = bytearray(buffer.getvalue())
    data[len(data) // 2] ^= 0xFF  # a flipped byte in the compressed list
    opened = audience_file_open(io.BytesIO(bytes(data)))
    with pytest.raises(ImportFileError, match="zip file is damaged"):
        list(opened.records())
