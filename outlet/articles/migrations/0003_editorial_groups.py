"""The editorial roles as groups: contributor, editor, admin."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CONTRIBUTOR = [
    "articles.add_article",
    "articles.change_article",
    "articles.view_article",
    "articles.view_articlerevision",
    "articles.add_articleimage",
    "articles.view_articleimage",
    "articles.view_author",
    "articles.view_section",
    "articles.view_tag",
    "articles.add_tag",
    "articles.view_appeal",
]


def _ensure_permissions(apps):
    # Permissions are normally created after migrate; groups need them now.
    for app_config in apps.get_app_configs():
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = models_module


def create_groups(apps, schema_editor):
    _ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")

    def permissions(codes):
        result = []
        for code in codes:
            app_label, codename = code.split(".")
            result.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        return result

    contributor, _ = Group.objects.get_or_create(name="contributor")
    contributor.permissions.set(permissions(CONTRIBUTOR))
    editor, _ = Group.objects.get_or_create(name="editor")
    editor.permissions.set(Permission.objects.filter(content_type__app_label="articles"))
    admin, _ = Group.objects.get_or_create(name="admin")
    admin.permissions.set(Permission.objects.all())


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(
        name__in=["contributor", "editor", "admin"]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("articles", "0002_workflow_revisions_images"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
