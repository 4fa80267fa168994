"""What an article page tells search engines and social networks about itself."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.templatetags.static import static
from django.utils.safestring import SafeString, mark_safe

from outlet.core.site_url import site_url_absolute

from .models import Article

_JSON_SCRIPT_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


absolute = site_url_absolute


def article_image_url(article: Article) -> str:
    if article.featured_image:
        return absolute(article.featured_image.url)
    return absolute(static("img/demo-map.svg"))


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
        "description": article.seo_description or article.dek,
        "datePublished": article.publish_at,
        "dateModified": article.revised_at or article.publish_at,
        "mainEntityOfPage": absolute(article.get_absolute_url()),
        "image": [article_image_url(article)],
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
        },
    }
    text = json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False)
    return mark_safe(text.translate(_JSON_SCRIPT_ESCAPES))  # noqa: S308 (escaped for <script>)
