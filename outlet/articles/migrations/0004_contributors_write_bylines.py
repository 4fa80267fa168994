"""Contributors need the byline permissions, or the admin hides the byline inline."""

from django.db import migrations

BYLINE_PERMISSIONS = [
    "add_articleauthor",
    "change_articleauthor",
    "delete_articleauthor",
    "view_articleauthor",
]


def grant(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    contributor = Group.objects.filter(name="contributor").first()
    if contributor is not None:
        contributor.permissions.add(
            *Permission.objects.filter(
                content_type__app_label="articles", codename__in=BYLINE_PERMISSIONS
            )
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    contributor = Group.objects.filter(name="contributor").first()
    if contributor is not None:
        contributor.permissions.remove(
            *Permission.objects.filter(
                content_type__app_label="articles", codename__in=BYLINE_PERMISSIONS
            )
        )


class Migration(migrations.Migration):
    dependencies = [("articles", "0003_editorial_groups")]

    operations = [migrations.RunPython(grant, revoke)]
