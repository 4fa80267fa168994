"""What an article page tells search engines and social networks about itself."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.serializers.json import DjangoJSONEncoder
from django.templatetags.static import static
from django.utils.safestring import SafeString, mark_safe

from outlet.core.language import active_language, language_tag
from outlet.core.site_url import site_url_absolute

from .images import rendition_name, rendition_widths
from .models import Article

_JSON_SCRIPT_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


absolute = site_url_absolute


# Social networks crop shared images to about 1200×630 and refuse SVG: an article
# without a featured image is shared with this one.
DEFAULT_SHARE_IMAGE = ("img/share-default.png", 1200, 630)
SHARE_IMAGE_WIDTH = 1200
# Google's publisher logo fits 600×60; OUTLET_LOGO_URL replaces the bundled one.
DEFAULT_LOGO = ("img/logo.png", 600, 60)


@dataclass(frozen=True)
class ShareImage:
    url: str
    width: int | None
    height: int | None


def article_share_image(article: Article) -> ShareImage:
    """The image social networks and search engines show for an article, with its size:
    the 1200-wide rendition where the upload is wider (not a many-megabyte original)."""
    image = article.featured_image
    width, height = article.image_width, article.image_height
    if not image:
        path, width, height = DEFAULT_SHARE_IMAGE
        return ShareImage(absolute(static(path)), width, height)
    if width and height and SHARE_IMAGE_WIDTH in rendition_widths(width):
        url = default_storage.url(rendition_name(str(image.name), SHARE_IMAGE_WIDTH))
        return ShareImage(
            absolute(url), SHARE_IMAGE_WIDTH, round(height * SHARE_IMAGE_WIDTH / width)
        )
    return ShareImage(absolute(image.url), width, height)


def publisher_logo() -> dict[str, Any]:
    if settings.OUTLET_LOGO_URL:
        return {"@type": "ImageObject", "url": absolute(settings.OUTLET_LOGO_URL)}
    path, width, height = DEFAULT_LOGO
    return {"@type": "ImageObject", "url": absolute(static(path)), "width": width, "height": height}


def news_article_json_ld(article: Article) -> SafeString:
    """JSON-LD NewsArticle, escaped so no value can close the script element."""
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "NewsArticle"
        if article.kind == Article.Kind.NEWS
        else "AnalysisNewsArticle"
        if article.kind == Article.Kind.ANALYSIS
        else "OpinionNewsArticle",
        "headline": article.headline[:110],
        # The site's language for now; an article's own language on a bilingual site.
        "inLanguage": language_tag(active_language()),
        "description": article.seo_description or article.dek,
        "datePublished": article.publish_at,
        "dateModified": article.revised_at or article.publish_at,
        "mainEntityOfPage": article.canonical_address,
        "image": [article_share_image(article).url],
        "articleSection": article.section.name,
        "keywords": [tag.name for tag in article.tags.all()],
        "author": [
            {
                "@type": "Person",
                "name": byline.author.name,
                "url": absolute(byline.author.get_absolute_url()),
            }
            for byline in article.bylines.all()
        ],
        "publisher": {
            "@type": "NewsMediaOrganization",
            "name": settings.OUTLET_NAME,
            "url": settings.SITE_URL + "/",
            "logo": publisher_logo(),
        },
    }
    text = json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False)
    return mark_safe(text.translate(_JSON_SCRIPT_ESCAPES))  # noqa: S308 (escaped for <script>)
