"""Index migrations on tables large in production build without blocking writes."""

from importlib import import_module

import pytest
from django.conf import settings as django_settings
from django.db import connection

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="CONCURRENTLY and pg_trgm are PostgreSQL's"
)

LARGE_TABLE_INDEX_MIGRATIONS = (
    "outlet.newsletters.migrations.0012_subscriber_admin_indexes",
    "outlet.donations.migrations.0006_donor_email_lower_index",
    "outlet.donations.migrations.0007_donor_search_trigram",
    "outlet.donations.migrations.0014_donor_email_unsent_idx",
)


def test_indexes_on_large_tables_are_built_concurrently():
    """In the migration's transaction without CONCURRENTLY, every sign-up, unsubscribe,
    bounce and donation webhook waited for the build (minutes at a million rows)."""
    for module in LARGE_TABLE_INDEX_MIGRATIONS:
        assert import_module(module).Migration.atomic is False, module
    text = (django_settings.BASE_DIR / "outlet/core/trigram.py").read_text()
    assert "CONCURRENTLY" in text


@pytest.mark.django_db
def test_the_migrations_made_every_index_they_describe():
    with connection.cursor() as cursor:
        subscriber = connection.introspection.get_constraints(cursor, "newsletters_subscriber")
        donor = connection.introspection.get_constraints(cursor, "donations_donor")
    assert "subscriber_source_idx" in subscriber
    assert any(c["index"] and c["columns"] == ["unsubscribed_at"] for c in subscriber.values())
    assert "donor_email_lower_idx" in donor
    if connection.vendor == "postgresql":
        assert {"newsletters_subscriber_email_trgm", "newsletters_subscriber_name_trgm"} <= set(
            subscriber
        )
        assert {"donations_donor_email_trgm", "donations_donor_name_trgm"} <= set(donor)


@postgres_only
@pytest.mark.django_db
def test_trigram_migration_without_the_right_to_create_pg_trgm():
    """The app's role may not create extensions: the step leaves search as a scan and
    the surrounding transaction usable."""
    from types import SimpleNamespace

    from outlet.core.trigram import trigram_indexes_create

    with connection.cursor() as cursor:
        cursor.execute("DROP EXTENSION IF EXISTS pg_trgm CASCADE")
        cursor.execute("CREATE ROLE rv_no_create NOSUPERUSER NOCREATEDB")
        cursor.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO rv_no_create")
        cursor.execute("GRANT USAGE ON SCHEMA public TO rv_no_create")
        cursor.execute("SET LOCAL ROLE rv_no_create")
        trigram_indexes_create(
            SimpleNamespace(connection=connection), "newsletters_subscriber", ["email"]
        )
        cursor.execute("SELECT count(*) FROM newsletters_subscriber")
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        assert cursor.fetchone() is None  # the refusal path ran
        cursor.execute("RESET ROLE")
