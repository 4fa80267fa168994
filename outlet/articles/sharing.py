"""Signed, expiring links that let someone without an account read one draft."""

from __future__ import annotations

from datetime import timedelta

from django.core import signing
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils.translation import gettext

from .models import Article

SALT = "outlet.articles.share"
SHARE_LINK_LIFETIME = timedelta(days=7)


def article_share_path(*, article: Article) -> str:
    token = signing.TimestampSigner(salt=SALT).sign(str(article.pk))
    return reverse("articles:share", kwargs={"token": token})


def article_for_share_token(*, token: str) -> Article:
    """The article a share token points at; PermissionDenied with a reason if it is not valid."""
    signer = signing.TimestampSigner(salt=SALT)
    try:
        pk = signer.unsign(token, max_age=SHARE_LINK_LIFETIME)
    except signing.SignatureExpired as exc:
        raise PermissionDenied(
            gettext("This preview link has expired. Ask the editor who sent it for a new one.")
        ) from exc
    except signing.BadSignature as exc:
        raise PermissionDenied(
            gettext("This preview link is not valid. Check that you copied all of it.")
        ) from exc
    article = Article.objects.filter(pk=pk).first()
    if article is None:
        raise PermissionDenied(gettext("The article this link was for no longer exists."))
    return article
