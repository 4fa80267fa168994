"""Imports at the edges: an address that moves or is erased mid-import, a run racing
another, going back from migration 0013, deleting an import in the admin."""

import csv
import io
from importlib import import_module

import pytest
from django.db import connection, migrations
from django.db.migrations.executor import MigrationExecutor

from outlet.newsletters.audience import importing
from outlet.newsletters.audience.importing import subscriber_import_create, subscriber_import_run
from outlet.newsletters.models import Subscriber
from outlet.newsletters.selectors import subscriber_import_report_rows
from outlet.newsletters.services import subscriber_email_change


def create(data: bytes, newsletters):
    return subscriber_import_create(
        data=data,
        filename="list.csv",
        newsletters=newsletters,
        consent_confirmed=True,
        consent_text="Signed up on our old form",
    )


def outcomes(job) -> dict[int, str]:
    return {
        line: outcome
        for line, _email, outcome, _m in list(subscriber_import_report_rows(job=job))[1:]
    }


def move_after_first_chunk(monkeypatch, old: str, new: str) -> None:
    """Between the first and the second chunk, the subscriber at `old` confirms a change
    of address to `new` (readers.services.reader_email_change_confirm, or an editor
    correcting the address in the admin)."""
    real_chunk = importing._import_chunk

    def chunk_then_move(job, chunk, newsletters, names, offset):
        done = real_chunk(job, chunk, newsletters, names, offset)
        if offset == 0:
            subscriber_email_change(subscriber=Subscriber.objects.get(email=old), email=new)
        return done

    monkeypatch.setattr(importing, "_import_chunk", chunk_then_move)


@pytest.mark.django_db
def test_a_repeated_address_is_not_imported_again_after_its_subscriber_moved(daily, monkeypatch):
    """Line 4 repeats line 2, which was imported; the person then moved to another
    address. The previous version called line 4 a duplicate; this one imports the
    abandoned address a second time, as a new active subscriber."""
    monkeypatch.setattr(importing, "IMPORT_CHUNK_ROWS", 2)
    job = create(
        b"email\nmover@example.com\nfirst@example.com\nmover@example.com\nsecond@example.com\n",
        [daily],
    )
    move_after_first_chunk(monkeypatch, "mover@example.com", "moved@example.com")

    job = subscriber_import_run(job=job)

    assert outcomes(job)[4] == "duplicate"
    assert not Subscriber.objects.filter(email="mover@example.com").exists()
    assert job.imported_rows == 3


@pytest.mark.django_db
def test_a_row_is_not_called_a_repeat_when_no_earlier_row_has_its_address(daily, monkeypatch):
    """Line 4's address appears nowhere earlier in the file; a subscriber this import
    created moved to it meanwhile. The report says "Repeats an earlier row"."""
    monkeypatch.setattr(importing, "IMPORT_CHUNK_ROWS", 2)
    job = create(
        b"email\nmover@example.com\nfirst@example.com\nmoved@example.com\nsecond@example.com\n",
        [daily],
    )
    move_after_first_chunk(monkeypatch, "mover@example.com", "moved@example.com")

    job = subscriber_import_run(job=job)

    assert outcomes(job)[4] == "exists"


def _old_reader_rows(content: str) -> list[tuple[str, str]]:
    """The data rows as the code before 0013 read an import's text (import_file_read)."""
    reader = csv.reader(io.StringIO(content, newline=""))
    header = [column.strip().lower() for column in next(reader)]
    email_at, name_at = header.index("email"), header.index("name")
    return [
        (values[email_at], values[name_at])
        for values in reader
        if any(value.strip() for value in values)
    ]


def _old_reader_lines(content: str) -> list[int]:
    """The line number the code before 0013 gave each data row."""
    reader = csv.reader(io.StringIO(content, newline=""))
    next(reader)
    return [reader.line_num for values in reader if any(value.strip() for value in values)]


BEFORE = [("newsletters", "0012_subscriber_admin_indexes")]
AFTER = [("newsletters", "0013_import_parts")]


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    return executor


@pytest.mark.django_db(transaction=True)
def test_going_back_from_0013_works_once_an_import_is_recorded():
    """parts_to_content is written for going back, but the RemoveField it follows is
    undone first, adding `content` NOT NULL without a default: with one import in the
    table, SQLite refuses the copy and PostgreSQL the new column, so a deploy of 0013
    cannot be rolled back."""
    try:
        executor = _migrate(BEFORE)
        SubscriberImport = executor.loader.project_state(BEFORE).apps.get_model(
            "newsletters", "SubscriberImport"
        )
        SubscriberImport.objects.create(
            filename="old.csv",
            content="email\r\nx@example.com\r\n",
            consent_text="old form",
            total_rows=1,
        )
        _migrate(AFTER)

        _migrate(BEFORE)

        back = SubscriberImport.objects.get().content
        assert _old_reader_rows(back) == [("x@example.com", "")]
        assert _old_reader_lines(back) == [2]
    finally:
        _migrate(None)


@pytest.mark.django_db(transaction=True)
def test_going_back_from_0013_keeps_every_row_of_an_import():
    """A row with an empty email and name but another column filled is a data row
    (counted in total_rows, reported "invalid"). parts_to_content writes it as ",",
    which the reader before 0013 skips: the text has fewer rows than total_rows, so a
    half-run import resumes a row late (a row never processed). Run here on 0013's own
    operations, the RemoveField left out (see the test above)."""
    migration = import_module("outlet.newsletters.migrations.0013_import_parts").Migration
    content = 'email,name,city\r\n,,Berlin\r\n\r\nx@example.com,"X\nY",Paris\r\n'
    assert _old_reader_rows(content) == [("", ""), ("x@example.com", "X\nY")]
    assert _old_reader_lines(content) == [2, 5]
    create_parts = migration.operations[0]
    (split,) = [op for op in migration.operations if isinstance(op, migrations.RunPython)]
    try:
        executor = _migrate(BEFORE)
        state = executor.loader.project_state(BEFORE)
        SubscriberImport = state.apps.get_model("newsletters", "SubscriberImport")
        job = SubscriberImport.objects.create(
            filename="old.csv", content=content, consent_text="old form", total_rows=2
        )
        with connection.schema_editor() as editor:
            for operation in (create_parts, split):
                new_state = state.clone()
                operation.state_forwards("newsletters", new_state)
                operation.database_forwards("newsletters", editor, state, new_state)
                state = new_state
            split.reverse_code(state.apps, editor)  # parts_to_content

        back = SubscriberImport.objects.get(pk=job.pk)
        assert _old_reader_rows(back.content) == [("", ""), ("x@example.com", "X\nY")]
        assert _old_reader_lines(back.content) == [2, 5]
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(state.apps.get_model("newsletters", "SubscriberImportPart"))
        _migrate(None)


@pytest.mark.django_db
def test_the_admin_delete_page_of_an_import_does_not_load_its_file(client, daily, monkeypatch):
    """The stored rows are what the change keeps out of memory, yet the admin's delete
    confirmation (and the POST that deletes) collects every part with select_related,
    so each part's `rows` is read and decoded: a million-row file, whole, as Python
    lists, for one click (and a thousand "rows from ..." lines on the page)."""
    from django.contrib.auth.models import User
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    client.force_login(User.objects.create_superuser("editor", "e@outlet.test", "pw-tests"))
    monkeypatch.setattr(importing, "IMPORT_CHUNK_ROWS", 10)
    job = create(b"email\n" + b"".join(b"r%d@example.com\n" % n for n in range(50)), [daily])
    url = reverse("admin:newsletters_subscriberimport_delete", args=[job.pk])

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)

    assert response.status_code == 200
    part_table = connection.ops.quote_name("newsletters_subscriberimportpart")
    read_rows = [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].startswith("SELECT") and f'{part_table}."rows"' in query["sql"]
    ]
    assert read_rows == []


class _ErasedBetweenQueries:
    """importing.Suppression as seen by a chunk while a reader erases their newsletter data
    in another transaction, committing between the chunk's suppression query and its
    subscriber query (READ COMMITTED: each query sees what had committed when it ran)."""

    def __init__(self, email: str):
        from outlet.newsletters.models import Suppression

        self.model, self.email, self.objects = Suppression, email, self

    def filter(self, **lookups):
        from outlet.newsletters.services import subscriber_erase

        found = list(self.model.objects.filter(**lookups).values_list("email_hash", flat=True))
        for subscriber in Subscriber.objects.filter(email=self.email):
            subscriber_erase(subscriber=subscriber)
        return _Found(found)


class _Found(list):
    def values_list(self, *fields, flat=False):
        return self


@pytest.mark.django_db
def test_an_address_erased_while_its_chunk_is_checked_is_not_imported_again(daily, monkeypatch):
    """Pre-existing (the order of the two queries is unchanged), and since the change
    it also reaches repeats: the chunk reads the suppression list, the erasure commits
    (suppression added, subscriber deleted), the chunk reads the subscribers: the
    address is neither, and the erased person is imported again as active."""
    from tests.factories import SubscriberFactory

    SubscriberFactory(email="leaving@example.com")
    monkeypatch.setattr(importing, "Suppression", _ErasedBetweenQueries("leaving@example.com"))

    job = subscriber_import_run(job=create(b"email\nleaving@example.com\n", [daily]))

    assert outcomes(job)[2] in ("suppressed", "exists")
    assert not Subscriber.objects.filter(email="leaving@example.com").exists()


@pytest.mark.django_db
def test_a_run_that_starts_as_another_finishes_leaves_the_import_done(daily, monkeypatch):
    """Pre-existing: a redelivered run reads the import (not done), the first run then
    finishes it (done), and the second one writes "running" over "done" before it sees
    it is behind and returns. The finished import shows as running, then as failed
    once beat's stall check runs."""
    from outlet.newsletters.models import SubscriberImport

    job = create(b"email\na@example.com\nb@example.com\n", [daily])
    state = {"raced": False}

    class FirstRunFinishesMeanwhile:
        Status = SubscriberImport.Status

        def __init__(self):
            self.objects = self

        def get(self, **lookups):
            found = SubscriberImport.objects.get(**lookups)
            if not state["raced"]:
                state["raced"] = True
                subscriber_import_run(job=found)  # the first run, to the end
            return found

        def __getattr__(self, name):
            return getattr(SubscriberImport.objects, name)

    monkeypatch.setattr(importing, "SubscriberImport", FirstRunFinishesMeanwhile())

    subscriber_import_run(job=job)

    job = SubscriberImport.objects.get(pk=job.pk)
    assert job.processed_rows == job.total_rows == 2
    assert job.status == SubscriberImport.Status.DONE
