"""Writes for static pages: starting a translation (saving is the admin's own)."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext

from outlet.articles.services import content_changed
from outlet.core.language import language_q, site_languages

from .models import Page


def page_translation_create(*, page: Page, language: str, user: Any = None) -> Page:
    """A draft copy of `page` in `language`, linked to it as its translation.

    Refused (ValidationError) for a language the site does not publish in or one the
    page's translation group already has.
    """
    if language not in site_languages():
        raise ValidationError(gettext("Choose one of the site's languages."))
    with transaction.atomic():
        page = Page.objects.select_for_update().get(pk=page.pk)
        if page.translation_group is None:
            page.translation_group = uuid.uuid4()
            page.save(update_fields=["translation_group"])
        if (
            Page.objects.filter(translation_group=page.translation_group)
            .filter(language_q(language))
            .exists()
        ):
            raise ValidationError(
                gettext("“%(title)s” already has a translation in that language.")
                % {"title": page.title}
            )
        slug = base = f"{page.slug[:190]}-{language}"
        while Page.objects.filter(slug=slug).exists():
            slug = f"{base}-{uuid.uuid4().hex[:4]}"
        translation = Page.objects.create(
            title=page.title,
            slug=slug,
            body=page.body,
            seo_title=page.seo_title,
            seo_description=page.seo_description,
            status=Page.Status.DRAFT,
            language=language,
            translation_group=page.translation_group,
        )
        content_changed()
    return translation
