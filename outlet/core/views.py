from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_safe
from django.views.static import serve

from .health import health_report
from .outbox import captured_email, captured_emails


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    healthy, checks = health_report()
    failing = [name for name, c in checks.items() if c["required"] and not c["ok"]]
    return JsonResponse(
        {"status": "ok" if healthy else "failing", "failing": failing, "checks": checks},
        status=200 if healthy else 503,
    )


# Uploads are never rewritten under the same name (the storage gives a second upload of
# a name a new one, and renditions are named after their upload), so browsers and
# shared caches may keep each for a year without asking again.
MEDIA_CACHE_CONTROL = "public, max-age=31536000, immutable"
#: What uploads are shown as in the browser; anything else (a page, an SVG, a PDF that
#: reached MEDIA_ROOT some other way) is only downloaded, never run on the site's origin.
MEDIA_INLINE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif"}


@require_safe
def media(request: HttpRequest, path: str) -> HttpResponseBase:
    """An upload or one of its renditions from MEDIA_ROOT (directories and anything
    outside it: 404), with a year-long immutable lifetime. Behind Varnish or a CDN the
    origin sees each file about once; a web server pointed at MEDIA_ROOT with the same
    Cache-Control, and the same download rule for what is not MEDIA_INLINE_TYPES, can
    take over entirely."""
    response = serve(request, path, document_root=str(settings.MEDIA_ROOT))
    response["Cache-Control"] = MEDIA_CACHE_CONTROL
    kind = response.get("Content-Type", "").split(";")[0]
    if response.status_code == 200 and kind not in MEDIA_INLINE_TYPES:
        response["Content-Type"] = "application/octet-stream"
        response["Content-Disposition"] = "attachment"
    return response


@require_GET
@never_cache
def csrf_token(request: HttpRequest) -> JsonResponse:
    """A CSRF token for a form on a cached page (static/js/forms.js fetches it on first use).

    Cached pages carry no token, so a shared cache can give every reader the same
    bytes; this tiny private answer sets the reader's CSRF cookie and hands over a
    masked token for it, and Django's CsrfViewMiddleware checks both, and the
    Origin header, on the POST as usual. Other sites cannot read it (no CORS).
    """
    return JsonResponse({"token": get_token(request)})


def _require_debug() -> None:
    if not settings.DEBUG:
        raise Http404("The outbox exists only in development.")


@staff_member_required
@never_cache
def outbox_list(request: HttpRequest) -> HttpResponse:
    _require_debug()
    return render(request, "core/outbox_list.html", {"emails": captured_emails()})


@staff_member_required
@never_cache
def outbox_detail(request: HttpRequest, key: str) -> HttpResponse:
    _require_debug()
    email = captured_email(key)
    if email is None:
        raise Http404("No such captured email.")
    return render(
        request,
        "core/outbox_detail.html",
        {"email": email, "html": email.body("html"), "text": email.body("plain")},
    )


@staff_member_required
@never_cache
def outbox_html(request: HttpRequest, key: str) -> HttpResponse:
    """The HTML part alone, shown in a sandboxed iframe on the detail page."""
    _require_debug()
    email = captured_email(key)
    html = email.body("html") if email else None
    if html is None:
        raise Http404("No HTML part.")
    response = HttpResponse(html)
    # Captured mail is untrusted content: no scripts, shown only framed by our page.
    response["Content-Security-Policy"] = (
        "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
    )
    return response
