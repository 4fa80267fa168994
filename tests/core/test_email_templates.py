"""Every HTML email is read on phones first: each one says so to the mail app, or it is
laid out at desktop width with tiny text."""

from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "emails"
DOCUMENTS = sorted(
    path for path in TEMPLATES.rglob("*.html") if "<html" in path.read_text(encoding="utf-8")
)


def test_the_scan_finds_the_emails():
    assert len(DOCUMENTS) >= 5


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: str(path.relative_to(TEMPLATES)))
def test_every_html_email_sets_the_phone_viewport(path):
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in path.read_text(
        encoding="utf-8"
    )
