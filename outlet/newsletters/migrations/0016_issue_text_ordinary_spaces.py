"""Issue intros and bodies typed while the issue editor lacked the editor's base styles
stored a non-breaking space for every space (Chromium's habit in a contenteditable
without `white-space: pre-wrap`): the text could not wrap between words and the
plain-text part came out as one line. Those become ordinary spaces.

A deliberate non-breaking space cannot be told apart from the typed ones, so every one
goes; the editor puts back none by itself now. Irreversible by nature: going back
leaves the text as it is."""

from django.db import migrations
from django.db.models import Q

NON_BREAKING = ("&nbsp;", "&#160;", "&#xa0;", "\u00a0")
BATCH = 500


def ordinary_spaces(text: str) -> str:
    for entity in NON_BREAKING:
        text = text.replace(entity, " ")
    return text


def issue_texts_normalise(apps, schema_editor):
    Issue = apps.get_model("newsletters", "Issue")
    with_non_breaking = Q()
    for entity in NON_BREAKING:
        with_non_breaking |= Q(intro__contains=entity) | Q(body__contains=entity)
    changed = []
    for issue in Issue.objects.filter(with_non_breaking).only("pk", "intro", "body").iterator():
        issue.intro = ordinary_spaces(issue.intro)
        issue.body = ordinary_spaces(issue.body)
        changed.append(issue)
        if len(changed) >= BATCH:
            Issue.objects.bulk_update(changed, ["intro", "body"])
            changed = []
    if changed:
        Issue.objects.bulk_update(changed, ["intro", "body"])


class Migration(migrations.Migration):
    dependencies = [
        ("newsletters", "0015_bounce_breaker"),
    ]

    operations = [
        migrations.RunPython(issue_texts_normalise, migrations.RunPython.noop),
    ]
