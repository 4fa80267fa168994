from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import translation

from outlet.core.language import language_versions

from .models import Page
from .selectors import page_translations


def page_detail(request: HttpRequest, slug: str) -> HttpResponse:
    page = get_object_or_404(Page.objects.published(), slug=slug)
    if page.language_code != translation.get_language():
        return redirect(page, permanent=True)
    versions = language_versions(page, page_translations(page=page))
    return render(request, "pages/page_detail.html", {"page": page, "language_versions": versions})
