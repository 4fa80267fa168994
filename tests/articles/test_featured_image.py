"""A featured image, once stored, survives every later save; the same file uploaded
again is stored once."""

import pytest
from django.core.files.storage import default_storage

from outlet.articles.models import Article, ArticleImage
from outlet.articles.services import article_image_save, article_save
from tests.articles.conftest import image_upload
from tests.articles.test_admin_workflow import change_url, form_data
from tests.factories import ArticleFactory

pytestmark = pytest.mark.django_db


def _stored_files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def illustrated(editor, media_root) -> Article:
    article = ArticleFactory(image_alt="A chart of the districts")
    article.featured_image = image_upload(size=(1300, 731))
    return article_save(article=article, user=editor)


def _form_errors(response) -> str:
    context = response.context_data or {}
    form = context.get("adminform").form if context.get("adminform") else None
    return str(form.errors if form is not None else response.status_code)


def _resave_data(article: Article, **fields) -> dict:
    return form_data(
        section=article.section,
        headline=article.headline,
        slug=article.slug,
        image_alt=article.image_alt,
        **fields,
    )


def test_saving_an_article_with_a_featured_image_again_keeps_the_image(
    client, editor, illustrated, media_root
):
    client.force_login(editor)
    name = illustrated.featured_image.name
    files_before = _stored_files(media_root)

    response = client.post(change_url(illustrated), _resave_data(illustrated, dek="Changed."))

    assert response.status_code == 302, _form_errors(response)
    illustrated.refresh_from_db()
    assert illustrated.featured_image.name == name
    assert illustrated.dek == "Changed."
    assert _stored_files(media_root) == files_before


def test_uploading_the_same_featured_image_again_stores_no_second_copy(
    client, editor, illustrated, media_root
):
    client.force_login(editor)
    files_before = _stored_files(media_root)
    data = _resave_data(illustrated)
    data["featured_image"] = image_upload(size=(1300, 731))

    response = client.post(change_url(illustrated), data)

    assert response.status_code == 302, _form_errors(response)
    assert _stored_files(media_root) == files_before


def test_the_same_library_image_uploaded_twice_is_stored_once(editor, media_root):
    first = article_image_save(
        image=ArticleImage(image=image_upload(), alt_text="Council chamber"), user=editor
    )
    files_before = _stored_files(media_root)

    second = article_image_save(
        image=ArticleImage(image=image_upload(), alt_text="Council chamber again"), user=editor
    )

    assert second.image.name == first.image.name
    assert _stored_files(media_root) == files_before
    assert default_storage.exists(first.image.name)


def test_changing_a_library_images_alt_text_keeps_the_image(client, editor, media_root):
    image = article_image_save(
        image=ArticleImage(image=image_upload(), alt_text="Council chamber"), user=editor
    )
    client.force_login(editor)

    response = client.post(
        f"/admin/articles/articleimage/{image.pk}/change/",
        {"alt_text": "The council chamber at night", "caption": "", "credit": ""},
    )

    assert response.status_code == 302, _form_errors(response)
    image.refresh_from_db()
    assert image.alt_text == "The council chamber at night"
    assert default_storage.exists(image.image.name)


def test_the_change_page_shows_the_stored_featured_image(client, editor, illustrated):
    client.force_login(editor)

    text = client.get(change_url(illustrated)).content.decode()

    assert f'<img src="{illustrated.featured_image.url}"' in text
