"""The reader's account: sign in by an emailed link, then newsletters, gifts, data.

Thin: a form parses, one service acts, the view renders or redirects. Every page here is
never_cache (`private, no-store`): it shows one reader's data. The session is a signed
cookie scoped to /account/ (session.py), so reader pages elsewhere stay public."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from outlet.core.language import language_choices_for_readers, language_tag
from outlet.core.ratelimits import client_ip

from . import selectors, services
from .forms import DeleteForm, EmailForm
from .models import Reader
from .session import reader_session_end, reader_session_reader, reader_session_start
from .tokens import LinkExpired, LinkInvalid, LinkRevoked, LinkUsed

#: What a redirect back to the account page says: ?done=<key>.
DONE_MESSAGES = {
    "signed-in": _("You are signed in."),
    "subscribed": _("You are subscribed. The next issue comes to your inbox."),
    "unsubscribed": _("You are unsubscribed from that newsletter."),
    "unsubscribed-all": _("You are unsubscribed from every newsletter."),
    "suppressed": _(
        "We cannot send newsletters to this address (it bounced or asked us to "
        "stop). Write to us if you would like that lifted."
    ),
    "amount": _("Your new amount applies from your next renewal. We have emailed you a note."),
    "cancelled": _("Your recurring gift is cancelled. We have emailed you a note."),
    "card": _("Your card is updated. Future renewals will use it."),
    "email-sent": _(
        "If that address can be used, a link to confirm it is on its way there. "
        "Your address changes once you open it."
    ),
    "language": _("Our emails to you are in this language from now on."),
}

#: What the sign-in page says after a redirect to it: ?done=<key>.
SIGNED_OUT_MESSAGES = {
    "email-changed": _(
        "Your address is changed. Sign in with it: enter it below and we will email you a link."
    ),
}


def _sign_in_page(request: HttpRequest, *, status: int = 200, **context) -> HttpResponse:
    context.setdefault("form", EmailForm())
    return render(request, "readers/sign_in_request.html", context, status=status)


ReaderView = Callable[..., HttpResponse]


def reader_required(view: ReaderView) -> Callable[..., HttpResponse]:
    """The signed-in reader as the view's second argument; the sign-in page otherwise
    (403 for an action, so a stale form never looks like it worked)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        reader = reader_session_reader(request)
        if reader is None:
            response = _sign_in_page(
                request, status=403 if request.method == "POST" else 200, signed_out=True
            )
            reader_session_end(response)
            return response
        return view(request, reader, *args, **kwargs)

    return never_cache(wrapped)


def done(key: str) -> HttpResponse:
    response = redirect("readers:account")
    response["Location"] += f"?done={key}"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """Signed in: the account. Otherwise the sign-in form, whose answer is the same for
    known addresses, strangers and requests over the hourly allowance."""
    reader = reader_session_reader(request)
    if reader is not None and request.method == "GET":
        return account_page(request, reader)
    form = EmailForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.reader_sign_in_request(
            email=form.cleaned_data["email"], ip=client_ip(request) or "unknown"
        )
        minutes = max(1, settings.READER_SIGN_IN_MAX_AGE // 60)
        return render(request, "readers/sign_in_sent.html", {"valid_minutes": minutes})
    done = SIGNED_OUT_MESSAGES.get(request.GET.get("done", "")) if not form.errors else None
    return _sign_in_page(request, form=form, status=400 if form.errors else 200, done=done)


def account_page(
    request: HttpRequest, reader: Reader, *, error: str = "", status: int = 200
) -> HttpResponse:
    """The account; an action that failed renders it with its `error` (no redirect, so no
    message travels in an address someone else could craft)."""
    account = selectors.reader_account(reader=reader)
    context = {
        "account": account,
        "done": DONE_MESSAGES.get(request.GET.get("done", "")) if not error else None,
        "error": error,
        "email_form": EmailForm(),
        "languages": language_choices_for_readers(),
        "tax_statement": settings.DONATION_TAX_STATEMENT,
        "STRIPE_JS_URL": settings.STRIPE_JS_URL,
        "STRIPE_PUBLISHABLE_KEY": settings.STRIPE_PUBLISHABLE_KEY,
        "STRIPE_LOCAL": settings.STRIPE_DIALECT == "localstripe",
        "STRIPE_LOCALE": language_tag(account.language),
    }
    # In the reader's language: the account is theirs alone, never cached, and outside
    # the language prefixes (its cookie's path is /account/).
    language = account.language
    with translation.override(language):
        response = render(request, "readers/account.html", context, status=status)
    response["Content-Language"] = language
    return response


def _link_problem(request: HttpRequest, exc: LinkInvalid) -> HttpResponse:
    problem = "invalid"
    if isinstance(exc, LinkUsed):
        problem = "used"
    elif isinstance(exc, LinkRevoked):
        problem = "revoked"
    elif isinstance(exc, LinkExpired):
        problem = "expired"
    return render(
        request, "readers/link_problem.html", {"problem": problem, "form": EmailForm()}, status=410
    )


@never_cache
@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button, POST spends the link: mail scanners that open links must not
    use up a single-use link. Any browser may use it (another device works)."""
    if request.method != "POST":
        return render(request, "readers/sign_in.html")
    try:
        reader = services.reader_sign_in_use(token=token)
    except LinkInvalid as exc:
        return _link_problem(request, exc)
    response = done("signed-in")
    reader_session_start(response, reader)
    return response


@require_POST
@never_cache
def sign_out(request: HttpRequest) -> HttpResponse:
    response = redirect("readers:account")
    reader_session_end(response)
    return response


@require_POST
@reader_required
def sign_out_everywhere(request: HttpRequest, reader: Reader) -> HttpResponse:
    services.reader_sign_out_everywhere(reader=reader)
    response = render(request, "readers/signed_out.html")
    reader_session_end(response)
    return response


@reader_required
def data_export(request: HttpRequest, reader: Reader) -> HttpResponse:
    document = selectors.reader_data_export(reader=reader)
    response = HttpResponse(
        json.dumps(document, indent=2, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="my-data.json"'
    return response


@require_http_methods(["GET", "POST"])
@reader_required
def data_delete(request: HttpRequest, reader: Reader) -> HttpResponse:
    form = DeleteForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.reader_erase(reader=reader)
        except ValidationError as exc:
            form.add_error(None, " ".join(exc.messages))
        else:
            response = render(request, "readers/deleted.html")
            reader_session_end(response)
            return response
    return render(
        request,
        "readers/delete.html",
        {"form": form, "reader": reader},
        status=400 if form.errors else 200,
    )


@require_POST
@reader_required
def email_change(request: HttpRequest, reader: Reader) -> HttpResponse:
    form = EmailForm(request.POST)
    if form.is_valid():
        try:
            services.reader_email_change_request(
                reader=reader, email=form.cleaned_data["email"], ip=client_ip(request) or "unknown"
            )
        except ValidationError as exc:
            return account_page(request, reader, error=" ".join(exc.messages), status=400)
        return done("email-sent")
    return account_page(
        request, reader, error=gettext("Please enter a valid email address."), status=400
    )


@never_cache
@require_http_methods(["GET", "POST"])
def email_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """POST moves the records to the new address; it starts no session (services.py)."""
    if request.method != "POST":
        return render(request, "readers/email_confirm.html")
    try:
        services.reader_email_change_confirm(token=token)
    except LinkInvalid as exc:
        return _link_problem(request, exc)
    except ValidationError as exc:
        return render(
            request, "readers/email_confirm.html", {"error": " ".join(exc.messages)}, status=409
        )
    response = redirect("readers:account")
    response["Location"] += "?done=email-changed"
    reader_session_end(response)  # the epoch moved on: this browser's session ended too
    return response


@require_POST
@reader_required
def language_change(request: HttpRequest, reader: Reader) -> HttpResponse:
    """The language of the reader's emails; the account shows in it too."""
    language = request.POST.get("language", "")
    try:
        services.reader_language_set(reader=reader, language=language)
    except ValidationError as exc:
        return account_page(request, reader, error=" ".join(exc.messages), status=400)
    return done("language")


@require_POST
@reader_required
def newsletter_change(request: HttpRequest, reader: Reader) -> HttpResponse:
    """Subscribe to one newsletter (the signed-in click is its opt-in), leave one, or
    leave them all."""
    action = request.POST.get("action", "")
    newsletter_id = request.POST.get("newsletter", "")
    outcome = services.reader_newsletter_change(
        reader=reader,
        action=action,
        newsletter_id=int(newsletter_id) if newsletter_id.isdigit() else None,
        ip=client_ip(request),
    )
    if outcome is None:
        return account_page(
            request, reader, error=gettext("Please choose a newsletter."), status=400
        )
    return done(outcome)
