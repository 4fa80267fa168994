"""What the end-to-end import tests share: running the command, counting what it made."""

from io import StringIO

from django.core.management import call_command

from outlet.articles.models import Article, Author, Section, Tag
from outlet.importers.models import ImportedItem
from outlet.pages.models import Page
from outlet.redirects.models import Redirect


def run(source: str, *args: str) -> list[str]:
    """`archive_import <source> <args>`: the lines it printed (the report's last)."""
    out = StringIO()
    call_command("archive_import", source, *args, stdout=out)
    return out.getvalue().splitlines()


def counts() -> dict[str, int]:
    """How many rows of each kind an import can make (a failed run must leave all at 0)."""
    return {
        "articles": Article.objects.count(),
        "pages": Page.objects.count(),
        "authors": Author.objects.count(),
        "sections": Section.objects.count(),
        "tags": Tag.objects.count(),
        "redirects": Redirect.objects.count(),
        "items": ImportedItem.objects.count(),
    }
