"""Migration 0016: issue texts typed when the editor stored a non-breaking space for
every space get ordinary spaces back, so they wrap between words again."""

import importlib

import pytest
from django.apps import apps

from tests.factories import NewsletterFactory

pytestmark = pytest.mark.django_db

migration = importlib.import_module("outlet.newsletters.migrations.0016_issue_text_ordinary_spaces")


def test_stored_non_breaking_spaces_become_ordinary_spaces():
    from outlet.newsletters.models import Issue

    typed = Issue.objects.create(
        newsletter=NewsletterFactory(),
        subject="A new week",
        intro="<p>Good&nbsp;morning&nbsp;and\u00a0a&nbsp;new&nbsp;week</p>",
        body="<p>See&nbsp;you&nbsp;<strong>Friday</strong>.</p>",
    )
    clean = Issue.objects.create(
        newsletter=typed.newsletter, subject="Plain", intro="<p>Already fine</p>"
    )

    migration.issue_texts_normalise(apps, None)

    typed.refresh_from_db()
    clean.refresh_from_db()
    assert typed.intro == "<p>Good morning and a new week</p>"
    assert typed.body == "<p>See you <strong>Friday</strong>.</p>"
    assert clean.intro == "<p>Already fine</p>"
