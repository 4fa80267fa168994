"""Uploads are checked; accepted images get renditions that pages offer in srcset."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from outlet.articles import images
from outlet.articles.images import rendition_name, validate_image_upload
from outlet.articles.models import ArticleImage
from outlet.articles.services import article_image_save, article_save
from tests.articles.conftest import image_upload
from tests.factories import ArticleFactory

pytestmark = pytest.mark.django_db


def test_a_jpeg_of_reasonable_size_is_accepted():
    validate_image_upload(image_upload())


def test_a_text_file_posing_as_an_image_is_refused():
    fake = SimpleUploadedFile("photo.jpg", b"<?php echo 'hi'; ?>", content_type="image/jpeg")

    with pytest.raises(ValidationError, match="not an image we can read"):
        validate_image_upload(fake)


def test_tiny_and_huge_images_are_refused():
    with pytest.raises(ValidationError, match="at least 320 pixels wide"):
        validate_image_upload(image_upload(size=(100, 100)))
    with pytest.raises(ValidationError, match="neither side may exceed 8000"):
        validate_image_upload(image_upload(size=(9000, 400), image_format="GIF"))


def test_oversized_files_are_refused(monkeypatch):
    monkeypatch.setattr(images, "MAX_UPLOAD_BYTES", 1000)

    with pytest.raises(ValidationError, match="images may be at most"):
        validate_image_upload(image_upload())


def test_other_image_formats_are_refused():
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (800, 600)).save(buffer, format="BMP")
    bmp = SimpleUploadedFile("photo.bmp", buffer.getvalue(), content_type="image/bmp")

    with pytest.raises(ValidationError, match="BMP images are not accepted"):
        validate_image_upload(bmp)


def test_featured_image_gets_renditions_and_a_srcset(client, media_root, editor):
    article = ArticleFactory(image_alt="A chart of the districts")
    article.featured_image = image_upload(size=(1300, 731))

    article_save(article=article, user=editor)

    for width in (480, 800, 1200):
        assert default_storage.exists(rendition_name(article.featured_image.name, width))
    assert not default_storage.exists(rendition_name(article.featured_image.name, 1600))
    text = client.get(article.get_absolute_url()).content.decode()
    assert ".w480.jpg 480w" in text and ".w1200.jpg 1200w" in text and "1300w" in text
    assert 'alt="A chart of the districts"' in text


def test_body_images_from_the_library_get_srcset_and_lazy_loading(client, media_root, editor):
    image = article_image_save(
        image=ArticleImage(image=image_upload(size=(1000, 600)), alt_text="Voters queue"),
        user=editor,
    )
    url = image.image.url
    article = ArticleFactory(body=f'<figure><img src="{url}" alt="Voters queue"></figure>')

    text = client.get(article.get_absolute_url()).content.decode()

    assert 'loading="lazy"' in text
    assert ".w800.jpg 800w" in text


def test_admin_upload_of_a_non_image_is_a_clear_error_and_keeps_the_text(
    client, editor, media_root
):
    client.force_login(editor)
    fake = SimpleUploadedFile("chart.png", b"not really a png", content_type="image/png")

    response = client.post(
        "/admin/articles/articleimage/add/",
        {"image": fake, "alt_text": "A careful description", "caption": "", "credit": ""},
    )

    text = response.content.decode()
    assert response.status_code == 200
    assert "Upload a valid image" in text or "not an image we can read" in text
    assert "A careful description" in text
    assert not ArticleImage.objects.exists()


def test_image_library_picker_lists_images_for_the_figure_dialog(client, contributor, media_root):
    article_image_save(
        image=ArticleImage(image=image_upload(), alt_text="Council chamber at night"), user=None
    )
    client.force_login(contributor)

    response = client.get("/admin/articles/articleimage/picker/", {"CKEditorFuncNum": "3"})

    text = response.content.decode()
    assert response.status_code == 200
    assert 'data-alt="Council chamber at night"' in text
    assert 'data-callback="3"' in text
    assert "articles/image-picker.js" in text


def test_the_body_editor_offers_the_image_library(client, editor):
    client.force_login(editor)

    text = client.get("/admin/articles/article/add/").content.decode()

    assert "/admin/articles/articleimage/picker/" in text


def test_the_picker_refuses_a_non_image_with_a_clear_error_and_keeps_the_text(
    client, editor, media_root
):
    client.force_login(editor)
    fake = SimpleUploadedFile("chart.png", b"not really a png", content_type="image/png")

    response = client.post(
        "/admin/articles/articleimage/picker/?CKEditorFuncNum=2",
        {"image": fake, "alt_text": "A careful description", "caption": "", "credit": ""},
    )

    text = response.content.decode()
    assert response.status_code == 200
    assert "Upload a valid image" in text or "not an image we can read" in text
    assert 'value="A careful description"' in text
    assert "data-picked" not in text
    assert not ArticleImage.objects.exists()
