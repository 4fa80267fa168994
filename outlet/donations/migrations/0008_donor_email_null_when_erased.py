"""An erased donor's address becomes NULL instead of `erased-<pk>@erased.invalid`, an
address anyone could type into the donate form first to make the erasure collide."""

from django.db import migrations, models

PLACEHOLDER_DOMAIN = "@erased.invalid"


def placeholders_to_null(apps, schema_editor):
    """Only a donor's own placeholder (`erased-<its pk>@…`, no name): an address someone
    typed into the donate form that looks like another donor's is left alone."""
    Donor = apps.get_model("donations", "Donor")
    candidates = Donor.objects.filter(
        email__startswith="erased-", email__endswith=PLACEHOLDER_DOMAIN, name=""
    ).values_list("pk", "email")
    erased = [pk for pk, email in candidates if email == f"erased-{pk}{PLACEHOLDER_DOMAIN}"]
    Donor.objects.filter(pk__in=erased).update(email=None)


def null_to_placeholders(apps, schema_editor):
    Donor = apps.get_model("donations", "Donor")
    for pk in Donor.objects.filter(email__isnull=True).values_list("pk", flat=True):
        Donor.objects.filter(pk=pk).update(email=f"erased-{pk}{PLACEHOLDER_DOMAIN}")


class Migration(migrations.Migration):
    dependencies = [
        ("donations", "0007_donor_search_trigram"),
    ]

    operations = [
        migrations.AlterField(
            model_name="donor",
            name="email",
            field=models.EmailField(blank=True, max_length=254, null=True, unique=True),
        ),
        migrations.RunPython(placeholders_to_null, null_to_placeholders, elidable=False),
    ]
