"""Reader-facing pages: sign-up, confirmation, preferences and unsubscribing.

Each view parses input with a form and calls one service. Links carry signed
subscriber tokens; a bad or old link gets a page offering a new one.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import REASON_CSRF_TOKEN_MISSING, REASON_NO_CSRF_COOKIE
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from outlet.core.ratelimits import client_ip
from outlet.core.site_url import site_url_absolute
from outlet.newsletters import services
from outlet.newsletters.forms import (
    CONSENT_TEXT,
    LinkRequestForm,
    PreferencesForm,
    SignupForm,
)
from outlet.newsletters.models import Newsletter, Subscriber
from outlet.newsletters.selectors import (
    newsletter_choices_for,
    newsletter_choices_public,
    newsletters_language_first,
)
from outlet.newsletters.tokens import (
    LinkExpired,
    LinkInvalid,
    confirm_target,
    preferences_target,
    preferences_url,
    unsubscribe_target,
)


def _bad_link(request: HttpRequest, exc: LinkInvalid) -> HttpResponse:
    return render(
        request,
        "newsletters/link_invalid.html",
        {"expired": isinstance(exc, LinkExpired), "form": LinkRequestForm()},
        status=400,
    )


def _too_many(request: HttpRequest) -> HttpResponse:
    return render(request, "newsletters/too_many.html", status=429)


#: Sec-Fetch-Site values of a post from our own page (absent: an older browser).
_OWN_FETCH_SITES = frozenset({"", "same-origin", "none"})


def _is_own_tokenless_signup(request: HttpRequest, reason: str) -> bool:
    """A sign-up posted from our own page that only lacked the token or its cookie.

    An allow-list: any other refusal (a wrong token, a foreign Origin or Referer), a
    post another site or a sibling subdomain sent, gets Django's own page.
    """
    if request.method != "POST" or request.path != reverse("newsletters:index"):
        return False
    if reason not in (REASON_NO_CSRF_COOKIE, REASON_CSRF_TOKEN_MISSING):
        return False
    if request.headers.get("Sec-Fetch-Site", "") not in _OWN_FETCH_SITES:
        return False
    origin = request.headers.get("Origin")
    return origin is None or origin in {settings.SITE_URL, *settings.CSRF_TRUSTED_ORIGINS}


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: Django's refusal, kinder to the sign-up box on cached pages.

    The box gets its token from static/js/forms.js; a reader without JavaScript posts
    without one. Nothing is signed up (the post may be forged), but the reader gets
    this page with what they typed and a fresh token: one more press and it is done.
    """
    if not _is_own_tokenless_signup(request, reason):
        return django_csrf_failure(request, reason)  # anything else gets Django's refusal
    form = SignupForm(
        initial={
            "email": request.POST.get("email", "")[:254],
            "newsletters": request.POST.getlist("newsletters")[:20],
            "form_name": request.POST.get("form_name", "")[:60],
            "page_url": request.POST.get("page_url", "")[:500],
        }
    )
    context = {
        "form": form,
        "newsletters": newsletter_choices_public(),
        "consent_text": CONSENT_TEXT,
        "confirm_needed": True,
    }
    return render(request, "newsletters/index.html", context, status=403)


@require_http_methods(["GET", "POST"])
def newsletter_index(request: HttpRequest) -> HttpResponse:
    """The list of newsletters with the sign-up form; also where every sign-up box posts."""
    form = SignupForm(request.POST or None, initial={"form_name": "newsletter-page"})
    if request.method == "POST":
        if form.is_bot:
            return redirect("newsletters:thanks")
        if form.is_valid():
            email = form.cleaned_data["email"]
            if not services.signup_attempt_allowed(ip=client_ip(request), email=email):
                return _too_many(request)
            services.subscriber_signup(
                email=email,
                newsletters=form.cleaned_data["newsletters"],
                source=Subscriber.Source.FORM,
                form=form.cleaned_data["form_name"] or "newsletter-page",
                page_url=site_url_absolute(form.cleaned_data["page_url"] or request.path),
                consent_text=CONSENT_TEXT,
                ip=client_ip(request),
                language=translation.get_language(),
            )
            return redirect("newsletters:thanks")
    return render(
        request,
        "newsletters/index.html",
        {
            "form": form,
            "newsletters": newsletters_language_first(
                newsletter_choices_public(), language=translation.get_language()
            ),
            "consent_text": CONSENT_TEXT,
        },
        status=400 if form.errors else 200,
    )


def signup_thanks(request: HttpRequest) -> HttpResponse:
    return render(request, "newsletters/thanks.html")


@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button (link scanners must not confirm); POST confirms."""
    try:
        subscriber = confirm_target(token).subscriber
    except LinkInvalid as exc:
        return _bad_link(request, exc)
    if request.method == "POST":
        services.subscriber_confirm(subscriber=subscriber, ip=client_ip(request))
        subscriber.refresh_from_db()
        if subscriber.status != Subscriber.Status.ACTIVE:
            # An old link after unsubscribing, or an address since suppressed.
            return _bad_link(request, LinkExpired("nothing left to confirm"))
        return render(
            request,
            "newsletters/confirmed.html",
            {"preferences_url": preferences_url(subscriber)},
        )
    return render(request, "newsletters/confirm.html", {"token": token})


@never_cache
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscriber = preferences_target(token).subscriber
    except LinkInvalid as exc:
        return _bad_link(request, exc)
    choices = newsletter_choices_for(subscriber=subscriber)
    current = subscriber.subscriptions.select_related("newsletter")
    if request.method == "POST" and request.POST.get("action") == "unsubscribe_all":
        services.subscriber_unsubscribe(subscriber=subscriber)
        return render(
            request,
            "newsletters/unsubscribed.html",
            {"preferences_url": preferences_url(subscriber)},
        )
    form = PreferencesForm(
        request.POST or None,
        newsletters=choices,
        initial={"newsletters": [s.newsletter for s in current]},
    )
    saved = ""
    if request.method == "POST" and form.is_valid():
        services.subscriber_preferences_update(
            subscriber=subscriber,
            newsletters=form.cleaned_data["newsletters"],
            paused_until=form.paused_until(),
            ip=client_ip(request),
        )
        if not form.cleaned_data["newsletters"]:
            return render(
                request,
                "newsletters/unsubscribed.html",
                {"preferences_url": preferences_url(subscriber)},
            )
        subscriber.refresh_from_db(fields=["status"])
        saved_as: dict[str, str] = {
            Subscriber.Status.ACTIVE: "saved",
            Subscriber.Status.PENDING: "confirm",
        }
        saved = saved_as.get(subscriber.status, "")
        current = subscriber.subscriptions.select_related("newsletter")
    paused_until = next((s.paused_until for s in current if s.is_paused), None)
    checked = {str(value) for value in form["newsletters"].value() or []}
    return render(
        request,
        "newsletters/preferences.html",
        {"form": form, "saved": saved, "paused_until": paused_until, "checked": checked},
    )


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """The List-Unsubscribe URL (RFC 8058).

    POST unsubscribes at once and answers 200, with no cookie or CSRF token:
    mailbox providers post `List-Unsubscribe=One-Click` from their servers.
    GET only shows a button, so link scanners change nothing.
    """
    try:
        target = unsubscribe_target(token)
    except LinkInvalid as exc:
        return _bad_link(request, exc)
    newsletter = (
        Newsletter.objects.filter(pk=target.newsletter_id).first() if target.newsletter_id else None
    )
    # No preferences link here: unsubscribe links never expire and travel in forwarded
    # mail, so re-subscribing goes through a fresh link sent to the address itself.
    context = {"newsletter": newsletter}
    if request.method == "POST":
        services.subscriber_unsubscribe(subscriber=target.subscriber, newsletter=newsletter)
        return render(request, "newsletters/unsubscribed.html", context)
    return render(request, "newsletters/unsubscribe.html", context)


@require_http_methods(["GET", "POST"])
def link_request(request: HttpRequest) -> HttpResponse:
    """Ask for a fresh confirmation or preferences link; the same answer for any address."""
    form = LinkRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        if not services.signup_attempt_allowed(ip=client_ip(request), email=email):
            return _too_many(request)
        services.subscriber_link_request(email=email)
        return render(request, "newsletters/link_sent.html")
    return render(
        request, "newsletters/link_request.html", {"form": form}, status=400 if form.errors else 200
    )
