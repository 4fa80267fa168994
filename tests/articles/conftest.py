"""People in the newsroom, with the roles the data migration creates."""

import importlib
from io import BytesIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile


def ensure_editorial_groups() -> None:
    """Recreate the roles the data migrations made, if a transactional test flushed them."""
    from django.apps import apps

    if Group.objects.filter(name__in=["contributor", "editor", "admin"]).count() == 3:
        return
    importlib.import_module("outlet.articles.migrations.0003_editorial_groups").create_groups(
        apps, None
    )
    importlib.import_module("outlet.articles.migrations.0004_contributors_write_bylines").grant(
        apps, None
    )


def _member(username: str, group: str) -> User:
    ensure_editorial_groups()
    user = User.objects.create_user(username=username, password="pw-" + username, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def editor(db) -> User:
    return _member("ed", "editor")


@pytest.fixture
def contributor(db) -> User:
    return _member("connie", "contributor")


@pytest.fixture
def other_contributor(db) -> User:
    return _member("carl", "contributor")


def image_upload(name="photo.jpg", size=(1200, 675), image_format="JPEG") -> SimpleUploadedFile:
    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", size, (120, 40, 30)).save(buffer, format=image_format)
    content_type = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif"}[image_format]
    return SimpleUploadedFile(name, buffer.getvalue(), content_type=content_type)


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT
