from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def held_bounces_digest(apps, schema_editor):
    """Rows held before this migration: the digest their subscriber has now (the best
    left to know)."""
    HeldBounce = apps.get_model("newsletters", "HeldBounce")
    Delivery = apps.get_model("newsletters", "Delivery")
    HeldBounce.objects.filter(email_hash="").update(
        email_hash=Subquery(
            Delivery.objects.filter(pk=OuterRef("delivery_id")).values("subscriber__email_hash")[:1]
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("newsletters", "0016_issue_text_ordinary_spaces"),
    ]

    operations = [
        migrations.AddField(
            model_name="heldbounce",
            name="email_hash",
            field=models.CharField(default="", editable=False, max_length=64),
        ),
        migrations.RunPython(held_bounces_digest, migrations.RunPython.noop),
    ]
