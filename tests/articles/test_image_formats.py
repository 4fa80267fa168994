"""Featured images reach readers as small as the browser can take: WebP and AVIF
renditions in a <picture> with the JPEG as the fallback, each served with a year-long,
immutable cache lifetime (a changed image is a new upload under a new name)."""

import re

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from outlet.articles.images import rendition_name
from outlet.articles.services import article_save
from tests.articles.conftest import image_upload
from tests.factories import ArticleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pictured(media_root, editor):
    article = ArticleFactory(image_alt="A chart of the districts")
    article.featured_image = image_upload(size=(1300, 731))
    article_save(article=article, user=editor)
    return article


def rendition(article, width: int, extension: str) -> str:
    return rendition_name(article.featured_image.name, width).removesuffix(".jpg") + extension


def test_featured_image_gets_webp_and_avif_renditions_at_every_width(pictured):
    for width in (480, 800, 1200):
        for extension, image_format in ((".webp", "WEBP"), (".avif", "AVIF")):
            path = rendition(pictured, width, extension)
            with default_storage.open(path) as file, Image.open(file) as image:
                assert (image.format, image.width) == (image_format, width)


@pytest.mark.parametrize("where", ["article", "home"])
def test_reader_pages_offer_avif_then_webp_then_jpeg_in_a_picture(client, pictured, where):
    path = pictured.get_absolute_url() if where == "article" else "/"

    text = client.get(path).content.decode()

    picture = re.search(r"<picture>(.*?)</picture>", text, re.S).group(1)
    sources = re.findall(r'<source type="(image/\w+)" srcset="([^"]+)" sizes="[^"]+">', picture)
    assert [kind for kind, _ in sources] == ["image/avif", "image/webp"]
    assert ".w480.avif 480w" in sources[0][1] and ".w1200.avif 1200w" in sources[0][1]
    assert ".w800.webp 800w" in sources[1][1]
    assert re.search(r'<img [^>]*srcset="[^"]*\.w480\.jpg 480w', picture)


@pytest.mark.parametrize(
    ("extension", "content_type"),
    [(".jpg", "image/jpeg"), (".avif", "image/avif"), (".webp", "image/webp")],
)
def test_renditions_are_served_with_a_long_immutable_cache_lifetime(
    client, pictured, settings, extension, content_type
):
    settings.DEBUG = False

    response = client.get(default_storage.url(rendition(pictured, 800, extension)))

    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert "max-age=31536000" in response["Cache-Control"]
    assert "immutable" in response["Cache-Control"]


def test_uploaded_originals_are_served_with_the_same_lifetime(client, pictured, settings):
    settings.DEBUG = False

    response = client.get(pictured.featured_image.url)

    assert response.status_code == 200
    assert "immutable" in response["Cache-Control"]


@pytest.mark.parametrize(
    "path",
    ["/media/../pyproject.toml", "/media/%2e%2e/pyproject.toml", "/media/", "/media/renditions/"],
)
def test_nothing_outside_the_uploads_is_served_from_media(client, media_root, settings, path):
    settings.DEBUG = False
    (media_root / "renditions").mkdir(parents=True, exist_ok=True)

    response = client.get(path)

    assert response.status_code in (400, 404)
    assert b"[project]" not in response.content


def test_images_stored_before_the_new_formats_get_them_from_the_command(pictured):
    from django.core.management import call_command

    for width in (480, 800, 1200):
        default_storage.delete(rendition(pictured, width, ".avif"))
        default_storage.delete(rendition(pictured, width, ".webp"))

    call_command("renditions_create", verbosity=0)

    for width in (480, 800, 1200):
        assert default_storage.exists(rendition(pictured, width, ".avif"))
        assert default_storage.exists(rendition(pictured, width, ".webp"))


def test_library_images_in_the_body_are_offered_as_avif_and_webp_too(client, media_root, editor):
    from outlet.articles.models import ArticleImage
    from outlet.articles.services import article_image_save

    image = article_image_save(
        image=ArticleImage(image=image_upload(size=(1000, 600)), alt_text="Voters queue"),
        user=editor,
    )
    article = ArticleFactory(
        body=f'<figure><img src="{image.image.url}" alt="Voters queue"></figure>'
    )

    text = client.get(article.get_absolute_url()).content.decode()

    picture = re.search(r"<figure><picture>(.*?)</picture></figure>", text, re.S).group(1)
    assert re.search(r'<source type="image/avif" srcset="[^"]*\.w800\.avif 800w"', picture)
    assert re.search(r'<source type="image/webp" srcset="[^"]*\.w480\.webp 480w', picture)
    assert re.search(r'<img [^>]*alt="Voters queue"[^>]*srcset="[^"]*\.w800\.jpg 800w"', picture)


@pytest.mark.parametrize("name", ["authors/page.html", "body/drawing.svg", "authors/x.xhtml"])
def test_uploads_a_browser_could_run_are_served_as_downloads(client, settings, tmp_path, name):
    # MEDIA_ROOT is served from the site's own origin: a page or an SVG there could script it.
    settings.MEDIA_ROOT = tmp_path / "media"
    file = settings.MEDIA_ROOT / name
    file.parent.mkdir(parents=True)
    file.write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')

    response = client.get(f"/media/{name}")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"
