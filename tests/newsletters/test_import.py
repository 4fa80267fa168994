"""CSV import: each row validated, bad lines reported, the rest imported exactly once."""

import pytest
from django.core.exceptions import ValidationError

from outlet.core.addresses import email_digest
from outlet.newsletters.audience import importing
from outlet.newsletters.audience.importing import subscriber_import_create, subscriber_import_run
from outlet.newsletters.models import (
    ConsentRecord,
    Subscriber,
    SubscriberImport,
    Subscription,
    Suppression,
)
from outlet.newsletters.selectors import newsletter_recipients, subscriber_import_report_rows
from tests.factories import SubscriberFactory

pytestmark = pytest.mark.django_db


def create(data: bytes, newsletters, **kwargs) -> SubscriberImport:
    return subscriber_import_create(
        data=data,
        filename="old-tool.csv",
        newsletters=newsletters,
        consent_confirmed=kwargs.pop("consent_confirmed", True),
        consent_text="Signed up on our old form",
        **kwargs,
    )


def test_import_of_50000_rows_reports_each_bad_line_and_imports_the_rest_once(daily):
    SubscriberFactory(email="already@example.com", status="unsubscribed")
    Suppression.objects.create(email_hash=email_digest("erased@example.com"), reason="erased")
    lines = ["email,name"]
    expected_bad: dict[int, str] = {}
    for n in range(50_000):
        line = n + 2
        if n % 100 == 7:
            lines.append(f"broken-{n}.example.com,No at sign")
            expected_bad[line] = "invalid"
        elif n % 100 == 13:
            lines.append(f"READER{n - 1}@example.com,Repeats the row before")
            expected_bad[line] = "duplicate"
        elif n % 100 == 41:
            lines.append(f"{'x' * 260}@example.com,Too long")
            expected_bad[line] = "invalid"
        elif n % 100 == 59:
            lines.append(",Nobody")
            expected_bad[line] = "invalid"
        elif n in (500, 501):
            lines.append("Already@example.com,In the database")
            expected_bad[line] = "exists"  # the repeat of a refused row: refused the same
        elif n == 700:
            lines.append("erased@example.com,Erased earlier")
            expected_bad[line] = "suppressed"
        else:
            lines.append(f"Reader{n}@Example.com,Reader {n}")
    good = 50_000 - len(expected_bad)
    data = ("\n".join(lines) + "\n").encode()

    job = subscriber_import_run(job=create(data, [daily]))

    assert job.status == SubscriberImport.Status.DONE
    assert job.total_rows == job.processed_rows == 50_000
    assert job.imported_rows == good
    refused = dict(job.refusals.values_list("line", "outcome"))
    assert refused == expected_bad
    assert Subscriber.objects.filter(source="import").count() == good
    assert Subscription.objects.filter(newsletter=daily, confirmed_at__isnull=False).count() == good
    assert ConsentRecord.objects.filter(kind="import").count() == good
    assert Subscriber.objects.get(email="already@example.com").status == "unsubscribed"
    assert not Subscriber.objects.filter(email="erased@example.com").exists()
    assert newsletter_recipients(daily).count() == good

    # Running it again (a redelivered task) changes nothing.
    again = subscriber_import_run(job=job)
    assert again.imported_rows == good
    assert Subscriber.objects.count() == good + 1


def test_an_interrupted_import_resumes_without_importing_anyone_twice(daily, monkeypatch):
    from outlet.newsletters.audience import importing

    monkeypatch.setattr(importing, "IMPORT_CHUNK_ROWS", 10)
    data = ("email\n" + "".join(f"r{n}@example.com\n" for n in range(35))).encode()
    job = create(data, [daily])
    calls = {"n": 0}
    real_chunk = importing._import_chunk

    def crash_on_third(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker lost")
        return real_chunk(*args)

    monkeypatch.setattr(importing, "_import_chunk", crash_on_third)
    with pytest.raises(RuntimeError):
        subscriber_import_run(job=job)
    job.refresh_from_db()
    assert job.processed_rows == 20

    monkeypatch.setattr(importing, "_import_chunk", real_chunk)
    job = subscriber_import_run(job=job)
    assert job.imported_rows == 35
    assert Subscriber.objects.count() == 35
    assert not job.refusals.exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"address,name\nx@example.com,X\n", "include \u201cemail\u201d"),
        (b"", "empty"),
        (b"email\n", "no rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary"),
        (b"email\x00,name\nx@example.com,X\n", "binary"),
        (b"email,name\nx@example.com,X\x00Y\n", "binary"),
    ],
)
def test_unreadable_files_are_refused_with_a_clear_message(daily, data, message):
    with pytest.raises(ValidationError) as caught:
        create(data, [daily])
    assert message in " ".join(caught.value.messages)
    assert not SubscriberImport.objects.exists()


def test_import_requires_the_editor_to_confirm_consent(daily):
    with pytest.raises(ValidationError, match="agreed"):
        create(b"email\nx@example.com\n", [daily], consent_confirmed=False)


def test_utf8_with_bom_and_extra_columns_and_overlong_name(daily):
    data = "\ufeffName,Email,Tag\nÅsa,asa@example.com,x\n" + "N" * 200 + ",long@example.com,y\n"
    job = subscriber_import_run(job=create(data.encode("utf-8"), [daily]))
    report = list(subscriber_import_report_rows(job=job))
    assert report == [
        ["line", "email", "outcome", "message"],
        [2, "asa@example.com", "imported", ""],
        [3, "long@example.com", "invalid", "The name is too long."],
    ]
    assert Subscriber.objects.get().name == "Åsa"


def test_a_second_run_of_the_same_import_does_not_import_a_chunk_twice(daily, monkeypatch):
    from outlet.newsletters.audience import importing

    monkeypatch.setattr(importing, "IMPORT_CHUNK_ROWS", 10)
    job = create(("email\n" + "".join(f"r{n}@example.com\n" for n in range(30))).encode(), [daily])
    real_chunk = importing._import_chunk
    state = {"raced": False}

    def run_twice_at_once(job, chunk, newsletters, names, offset):
        if offset == 10 and not state["raced"]:
            state["raced"] = True  # a redelivered task gets in first and finishes the job
            importing.subscriber_import_run(job=job)
        return real_chunk(job, chunk, newsletters, names, offset)

    monkeypatch.setattr(importing, "_import_chunk", run_twice_at_once)
    subscriber_import_run(job=job)
    job.refresh_from_db()
    assert job.status == SubscriberImport.Status.DONE
    assert job.imported_rows == 30
    assert Subscriber.objects.count() == 30
    assert not job.refusals.exists()


def test_an_address_signed_up_during_the_import_is_reported_not_duplicated(daily, monkeypatch):
    """On PostgreSQL a sign-up can commit between the chunk's checks and its insert; the
    unique constraint stops the insert, and the chunk is checked again."""
    from django.db import IntegrityError

    from outlet.newsletters.audience import importing

    job = create(b"email\nracer@example.com\nother@example.com\n", [daily])
    real_insert, real_chunk = importing._import_insert, importing._import_chunk
    calls = {"insert": 0, "chunk": 0}

    def conflicting_insert(*args):
        calls["insert"] += 1
        if calls["insert"] == 1:
            raise IntegrityError("duplicate key value violates unique constraint")
        return real_insert(*args)

    def chunk(*args):
        calls["chunk"] += 1
        if calls["chunk"] == 2:
            SubscriberFactory(email="racer@example.com")  # the sign-up that won the race
        return real_chunk(*args)

    monkeypatch.setattr(importing, "_import_insert", conflicting_insert)
    monkeypatch.setattr(importing, "_import_chunk", chunk)
    job = subscriber_import_run(job=job)
    assert job.status == SubscriberImport.Status.DONE
    assert job.summary == {"imported": 1, "exists": 1}
    assert Subscriber.objects.count() == 2


def test_a_crashed_import_shows_as_failed_not_running(daily, monkeypatch):
    job = create(b"email\nreader1@example.com\nreader2@example.com\n", [daily])

    def crash(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(importing, "_import_chunk", crash)
    with pytest.raises(RuntimeError):
        subscriber_import_run(job=job)

    job.refresh_from_db()
    assert job.status == SubscriberImport.Status.FAILED


def test_an_import_that_stopped_making_progress_shows_as_failed(daily, settings):
    from datetime import timedelta

    from django.utils import timezone

    from outlet.newsletters.issues import issues_tick

    job = create(b"email\nreader1@example.com\n", [daily])
    SubscriberImport.objects.filter(pk=job.pk).update(
        status=SubscriberImport.Status.RUNNING,
        heartbeat_at=timezone.now() - timedelta(hours=2),
    )

    issues_tick()

    job.refresh_from_db()
    assert job.status == SubscriberImport.Status.FAILED


def test_writing_the_report_does_not_rewrite_earlier_lines(daily, monkeypatch):
    """Each chunk adds its own report lines; none rewrites the lines before it (the
    report used to be one JSON value rewritten whole per chunk: quadratic)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(importing, "IMPORT_CHUNK_ROWS", 10)
    lines = ["email"] + ["not-an-address"] * 100
    job = create(("\n".join(lines) + "\n").encode(), [daily])

    with CaptureQueriesContext(connection) as queries:
        job = subscriber_import_run(job=job)

    assert job.summary == {"invalid": 100}
    written = sum(query["sql"].count("not-an-address") for query in queries.captured_queries)
    assert written == 100


def test_import_keeps_tabs_newlines_backslashes_and_copy_markers_in_names(daily):
    """COPY (PostgreSQL) writes awkward names and consent text byte for byte."""
    names = ["Tab\there", "Line\nbreak", "Back\\slash", "\\N", "\\.", "Carriage\rreturn"]
    lines = ["email,name"] + [f'x{n}@example.org,"{name}"' for n, name in enumerate(names)]
    job = subscriber_import_create(
        data="\n".join(lines).encode(),
        filename="odd.csv",
        newsletters=[daily],
        consent_confirmed=True,
        consent_text="Form text\twith tab\\ and \\N",
    )
    job = subscriber_import_run(job=job)
    stored = dict(Subscriber.objects.values_list("email", "name"))
    assert [stored[f"x{n}@example.org"] for n in range(len(names))] == [
        name.strip() for name in names
    ]
    assert set(ConsentRecord.objects.values_list("text_shown", flat=True)) == {
        "Form text\twith tab\\ and \\N"
    }
    assert job.imported_rows == len(names)


def test_a_file_unreadable_far_down_records_nothing(daily, monkeypatch):
    """The upload is read a chunk at a time and stored as it goes: a bad byte on line
    5,002 still refuses the whole file and leaves no import and no stored rows."""
    from outlet.newsletters.models import SubscriberImportPart

    monkeypatch.setattr(importing, "IMPORT_CHUNK_ROWS", 100)
    monkeypatch.setattr(importing, "PARTS_PER_WRITE", 3)
    good = b"".join(b"r%d@example.com\n" % n for n in range(5000))
    with pytest.raises(ValidationError) as caught:
        create(b"email\n" + good + b"caf\xe9@example.com\n", [daily])
    assert "not UTF-8" in " ".join(caught.value.messages)
    assert "line 5002" in " ".join(caught.value.messages)
    assert not SubscriberImport.objects.exists()
    assert not SubscriberImportPart.objects.exists()


def test_repeats_across_chunks_and_runs_are_told_apart_from_the_database(daily, monkeypatch):
    """No run keeps the addresses of the rows before it: a repeat of an imported row in a
    later chunk, or after a crash and resume, is a duplicate; a repeat of a refused
    row is refused the same way."""
    SubscriberFactory(email="known@example.com")
    Suppression.objects.create(email_hash=email_digest("gone@example.com"), reason="erased")
    monkeypatch.setattr(importing, "IMPORT_CHUNK_ROWS", 3)
    rows = [
        "first@example.com", "known@example.com", "gone@example.com",  # chunk 1
        "FIRST@example.com", "other@example.com", "known@example.com",  # chunk 2 (crash)
        "gone@example.com", "other@example.com", "first@example.com",  # chunk 3
    ]  # fmt: skip
    job = create(("email\n" + "\n".join(rows) + "\n").encode(), [daily])
    real_chunk, calls = importing._import_chunk, {"n": 0}

    def crash_after_second(*args):
        calls["n"] += 1
        done = real_chunk(*args)
        if calls["n"] == 2:
            raise RuntimeError("worker lost after committing chunk 2")
        return done

    monkeypatch.setattr(importing, "_import_chunk", crash_after_second)
    with pytest.raises(RuntimeError):
        subscriber_import_run(job=job)
    job = subscriber_import_run(job=job)

    assert job.status == SubscriberImport.Status.DONE
    assert [row[2] for row in subscriber_import_report_rows(job=job)][1:] == [
        "imported", "exists", "suppressed",
        "duplicate", "imported", "exists",
        "suppressed", "duplicate", "duplicate",
    ]  # fmt: skip
    assert job.imported_rows == 2
    assert Subscriber.objects.filter(source="import").count() == 2


def test_another_imports_subscribers_are_not_this_ones_duplicates(daily):
    subscriber_import_run(job=create(b"email\nshared@example.com\n", [daily]))
    second = subscriber_import_run(job=create(b"email\nshared@example.com\n", [daily]))
    assert second.summary == {"exists": 1}
