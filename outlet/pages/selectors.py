from __future__ import annotations

from outlet.core.language import is_multilingual

from .models import Page


def page_translations(*, page: Page) -> list[Page]:
    """The page's published translations (none on a site with one language)."""
    if page.translation_group is None or not is_multilingual():
        return []
    return list(
        Page.objects.published()
        .filter(translation_group=page.translation_group)
        .exclude(pk=page.pk)
        .only("slug", "language", "translation_group")
    )
