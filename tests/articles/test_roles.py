import pytest
from django.contrib.auth.models import Group

from tests.articles.conftest import ensure_editorial_groups

pytestmark = pytest.mark.django_db


def test_the_roles_exist_with_the_right_powers():
    ensure_editorial_groups()
    contributor = Group.objects.get(name="contributor")
    editor = Group.objects.get(name="editor")
    codes = set(contributor.permissions.values_list("codename", flat=True))

    assert {"add_article", "change_article", "add_articleauthor"} <= codes
    assert "publish_article" not in codes and "delete_article" not in codes
    assert editor.permissions.filter(codename="publish_article").exists()
    assert Group.objects.filter(name="admin").exists()


def test_recreating_the_roles_after_a_flush_gives_the_same_powers():
    Group.objects.all().delete()

    ensure_editorial_groups()

    contributor = Group.objects.get(name="contributor")
    assert contributor.permissions.filter(codename="add_articleauthor").exists()
    assert not contributor.permissions.filter(codename="publish_article").exists()
