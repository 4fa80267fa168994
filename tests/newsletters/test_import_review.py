"""Review of the chunked import (8b474ed): cases where finding "duplicates" through the
database, or migration 0013 going back, gives a different answer from the file."""

import csv
import io
from importlib import import_module

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from outlet.newsletters import imports
from outlet.newsletters.imports import subscriber_import_create, subscriber_import_run
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
    real_chunk = imports._import_chunk

    def chunk_then_move(job, chunk, newsletters, names, offset):
        done = real_chunk(job, chunk, newsletters, names, offset)
        if offset == 0:
            subscriber_email_change(subscriber=Subscriber.objects.get(email=old), email=new)
        return done

    monkeypatch.setattr(imports, "_import_chunk", chunk_then_move)


@pytest.mark.django_db
def test_a_repeated_address_is_not_imported_again_after_its_subscriber_moved(daily, monkeypatch):
    """Line 4 repeats line 2, which was imported; the person then moved to another
    address. The previous version called line 4 a duplicate; this one imports the
    abandoned address a second time, as a new active subscriber."""
    monkeypatch.setattr(imports, "IMPORT_CHUNK_ROWS", 2)
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
    monkeypatch.setattr(imports, "IMPORT_CHUNK_ROWS", 2)
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

        assert SubscriberImport.objects.get().content == "email,name\r\nx@example.com,\r\n"
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
    content = "email,name,city\r\n,,Berlin\r\nx@example.com,X,Paris\r\n"
    assert _old_reader_rows(content) == [("", ""), ("x@example.com", "X")]
    create_parts, split = migration.operations[0], migration.operations[1]
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
        assert _old_reader_rows(back.content) == [("", ""), ("x@example.com", "X")]
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(state.apps.get_model("newsletters", "SubscriberImportPart"))
        _migrate(None)
