"""Found in review: a source's "unsubscribed" must win over anything else the file says
of an address, and a zip may not unpack into more than an upload could hold."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest
from django.core.exceptions import ValidationError

from outlet.core.addresses import email_digest
from outlet.newsletters.audience import importing, reading
from outlet.newsletters.audience.report import subscriber_import_counts
from outlet.newsletters.models import ConsentRecord, Subscriber, Suppression

pytestmark = pytest.mark.django_db

GHOST_HEADER = "id,email,name,subscribed_to_emails,complimentary_plan\n"


def _import(data: bytes, newsletters, source_format: str = "auto"):
    job = importing.subscriber_import_create(
        data=data,
        filename="members.csv",
        newsletters=newsletters,
        consent_confirmed=True,
        consent_text="Signed up at Ghost.",
        source_format=source_format,
    )
    return importing.subscriber_import_run(job=job)


def _active(email: str) -> bool:
    return Subscriber.objects.filter(
        email_hash=email_digest(email), status=Subscriber.Status.ACTIVE
    ).exists()


def test_a_platform_export_read_as_a_plain_csv_does_not_subscribe_its_unsubscribed(daily):
    data = (GHOST_HEADER + "1,quiet@example.com,Quiet,false,false\n").encode()
    with pytest.raises(ValidationError, match="would be subscribed"):
        _import(data, [daily], source_format="csv")
    assert not _active("quiet@example.com")


@pytest.mark.parametrize("chunk_rows", [1000, 1])
def test_an_unsubscribed_row_wins_over_an_earlier_subscribed_row(daily, monkeypatch, chunk_rows):
    monkeypatch.setattr(importing, "IMPORT_CHUNK_ROWS", chunk_rows)
    data = (
        GHOST_HEADER
        + "1,Ann@example.com,Ann,true,false\n"
        + "2,other@example.com,Other,true,false\n"
        + "3,ann@example.com,Ann,false,false\n"
    ).encode()
    job = _import(data, [daily])
    assert not _active("ann@example.com")
    assert Suppression.objects.filter(email_hash=email_digest("ann@example.com")).exists()
    assert _active("other@example.com")
    counts = subscriber_import_counts(job=job)
    assert counts["suppressed"] == 1
    assert sum(counts.values()) == job.total_rows == 3


def test_a_mailchimp_zip_with_an_address_both_subscribed_and_unsubscribed_suppresses_it(daily):
    header = "Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("subscribed_members.csv", f"{header}\nboth@example.org,B,C,2,\n")
        archive.writestr(
            "unsubscribed_members.csv", f"{header},UNSUB_TIME\nBoth@example.org,B,C,2,,2024-01-01\n"
        )
    _import(buffer.getvalue(), [daily])
    assert not _active("both@example.org")


def test_a_zip_that_unpacks_past_the_limit_is_refused_before_anything_is_stored(daily, monkeypatch):
    monkeypatch.setattr(reading, "MAX_UNZIPPED_BYTES", 10_000)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("list.csv", "email\n" + "a@example.org\n" * 5000)
    assert len(buffer.getvalue()) < 10_000
    with pytest.raises(ValidationError, match="unpack"):
        _import(buffer.getvalue(), [daily])
    assert not Subscriber.objects.exists()


def test_a_plain_csv_with_a_status_column_suppresses_whom_it_marks(daily):
    data = (
        b"email,name,status\n"
        b"yes@example.org,Yes,subscribed\n"
        b"left@example.org,Left,Unsubscribed\n"
        b"gone@example.org,Gone,bounced\n"
        b"angry@example.org,Angry,complained\n"
        b"also@example.org,Also,\n"
    )
    _import(data, [daily])
    assert _active("yes@example.org")
    assert _active("also@example.org")
    reasons = dict(Suppression.objects.values_list("email_hash", "reason"))
    assert reasons == {
        email_digest("left@example.org"): Suppression.Reason.UNSUBSCRIBED,
        email_digest("gone@example.org"): Suppression.Reason.HARD_BOUNCE,
        email_digest("angry@example.org"): Suppression.Reason.COMPLAINT,
    }


def test_a_ghost_member_with_email_disabled_is_suppressed(daily):
    data = (
        b"id,email,name,subscribed_to_emails,complimentary_plan,email_disabled\n"
        b"1,bouncing@example.com,B,true,false,true\n"
    )
    _import(data, [daily])
    assert not _active("bouncing@example.com")
    assert Suppression.objects.filter(email_hash=email_digest("bouncing@example.com")).exists()


def test_an_ip_with_a_zone_is_kept_without_it_and_the_import_completes(daily):
    # PostgreSQL's inet refuses "fe80::1%eth0": the chunk failed on every run, for ever.
    header = "Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_IP"
    data = f"{header}\nzone@example.org,Z,O,2,,fe80::1%eth0,fe80::2%25\n".encode()
    job = _import(data, [daily])
    assert job.imported_rows == 1
    record = ConsentRecord.objects.get(subscriber__email="zone@example.org")
    assert (record.opted_in_ip, record.confirmed_ip) == ("fe80::1", "fe80::2")


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_a_time_at_the_edge_of_the_calendar_does_not_stop_the_import(daily, when):
    # Moved to UTC when stored, these overflowed: the chunk failed on every run.
    header = "Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,CONFIRM_TIME"
    data = f"{header}\nedge@example.org,E,D,2,{when},{when}\nok@example.org,O,K,2,,\n".encode()
    assert _import(data, [daily]).imported_rows == 2


def _zip_with_flags(flags: int = 0, method: int | None = None) -> bytes:
    """A zip of one list whose entry says it is encrypted, or compressed another way."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("list.csv", "email\na@example.org\n")
    data = bytearray(buffer.getvalue())
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<H", data, 6, flags)
    struct.pack_into("<H", data, central + 8, flags)
    if method is not None:
        struct.pack_into("<H", data, 8, method)
        struct.pack_into("<H", data, central + 10, method)
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [(_zip_with_flags(flags=1), "password"), (_zip_with_flags(method=9), "compressed")],
)
def test_an_encrypted_or_oddly_compressed_zip_is_refused_clearly(daily, data, message):
    with pytest.raises(ValidationError, match=message):
        _import(data, [daily])


def test_a_utf16_line_end_split_across_reads_is_one_line_end():
    """ "\\r" the last character of one 64 KB read, "\\n" the first of the next: one line end,
    so the lines after keep their numbers and a quoted cell its text."""
    text = "email,name\r\n"
    while len(("\ufeff" + text).encode("utf-16-le")) < reading.SNIFF_BYTES - 200:
        text += "r@example.org,N\r\n"
    pad = reading.SNIFF_BYTES // 2 - len("\ufeff" + text + "last@example.org,\r")
    text += "last@example.org," + "x" * pad + "\r\n"
    lines_before = text.count("\n")
    text += 'two@example.org,"Two\r\nLines"\r\nend@example.org,E\r\n'
    data = ("\ufeff" + text).encode("utf-16-le")
    assert data[reading.SNIFF_BYTES - 2 : reading.SNIFF_BYTES] == "\r".encode("utf-16-le")
    found = list(reading.audience_file_open(io.BytesIO(data)).records())
    assert [(r.line, r.email, r.name) for r in found[-2:]] == [
        (lines_before + 2, "two@example.org", "Two\r\nLines"),
        (lines_before + 3, "end@example.org", "E"),
    ]
