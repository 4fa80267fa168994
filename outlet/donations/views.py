"""Reader-facing pages: give, finish a payment, thank. (A donor manages gifts from the
reader account, outlet/readers.)

Thin: a form parses, one service acts, the view renders or answers JSON to donate.js."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import translation
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from outlet.core.language import language_tag
from outlet.core.ratelimits import client_ip

from . import selectors, services
from .currencies import currency_rule
from .forms import UTM_FIELDS, DonationForm, donate_prefill
from .models import Campaign, Donation
from .services import CheckoutStep
from .tokens import checkout_token_make, checkout_token_read


def _stripe_context() -> dict[str, Any]:
    return {
        "STRIPE_JS_URL": settings.STRIPE_JS_URL,
        "STRIPE_PUBLISHABLE_KEY": settings.STRIPE_PUBLISHABLE_KEY,
        # Development loads the Payment Element shim (stripe-elements-shim.js) over localstripe.
        "STRIPE_LOCAL": settings.STRIPE_DIALECT == "localstripe",
        # Stripe Elements' `locale`: the page's language ("es", "pt-BR", "fr").
        "STRIPE_LOCALE": language_tag(),
    }


def donate(request: HttpRequest) -> HttpResponse:
    campaign = None
    if slug := request.GET.get("campaign"):
        campaign = Campaign.objects.filter(slug=slug, is_active=True).first()
    campaign = campaign or selectors.campaign_featured()
    initial: dict[str, Any] = {
        "amount_choice": str(
            settings.DONATION_PRESETS[1 if len(settings.DONATION_PRESETS) > 1 else 0]
        ),
        "frequency": request.GET.get("frequency", "once"),
        "source": request.GET.get("source", "")[:200],
        "campaign": campaign.slug if campaign else "",
    }
    for name in UTM_FIELDS:
        initial[name] = request.GET.get(name, "")[:200]
    initial.update(donate_prefill(query=request.GET))
    context = {
        "form": DonationForm(initial=initial),
        "campaign": campaign,
        "campaign_raised": selectors.campaign_raised(campaign=campaign) if campaign else 0,
        "currency": settings.DONATION_CURRENCY,
        "currency_step": currency_rule(settings.DONATION_CURRENCY).step,
        "currency_display_places": currency_rule(settings.DONATION_CURRENCY).display_places,
        "fee_percent": settings.DONATION_FEE_PERCENT,
        "fee_fixed": settings.DONATION_FEE_FIXED,
        "min_amount": settings.DONATION_MIN_AMOUNT,
        "payment_method_types": ",".join(settings.DONATION_PAYMENT_METHOD_TYPES),
        "payment_method_configuration": (
            ""
            if settings.DONATION_PAYMENT_METHOD_TYPES
            else settings.STRIPE_PAYMENT_METHOD_CONFIGURATION
        ),
        **_stripe_context(),
    }
    return render(request, "donations/donate.html", context)


def _step_json(step: CheckoutStep) -> JsonResponse:
    token = checkout_token_make(donation_id=step.donation.pk)
    answer = {
        "action": step.action,
        "token": token,
        "client_secret": step.client_secret,
        # Step messages are English msgids (gettext_noop in services): said in the
        # reader's language here.
        "message": gettext(step.message) if step.message else "",
        "redirect": reverse("donations:thanks", args=[token]) if step.action == "done" else "",
    }
    if step.action == "confirm":
        # Where a redirect method (a bank's page, iDEAL…) brings the reader back; Stripe
        # adds the PaymentIntent's id. The token names this checkout's donation.
        # SITE_URL, like every link in our emails: the request's own host may be a proxy's.
        answer["return_url"] = (
            settings.SITE_URL.rstrip("/")
            + reverse("donations:return")
            + "?"
            + urlencode({"token": token})
        )
    return JsonResponse(answer, status=200)


def _error_json(message: str, *, status: int = 400, fields: dict | None = None) -> JsonResponse:
    return JsonResponse(
        {"action": "error", "message": message, "fields": fields or {}}, status=status
    )


def _donation_from_token(request: HttpRequest) -> Donation:
    donation_id = checkout_token_read(token=request.POST.get("token", ""))
    if donation_id is None:
        raise Http404("Unknown payment.")
    return get_object_or_404(Donation, pk=donation_id)


@never_cache
@require_POST
def checkout_intent(request: HttpRequest) -> JsonResponse:
    """The Payment Element's submit: the pending donation and the payment to confirm."""
    form = DonationForm(request.POST)
    if not form.is_valid():
        fields = {name: [str(e) for e in errors] for name, errors in form.errors.items()}
        return _error_json(gettext("Please check the highlighted fields."), fields=fields)
    data = form.cleaned_data
    campaign = Campaign.objects.filter(slug=data["campaign"]).first() if data["campaign"] else None
    try:
        step = services.checkout_intent_create(
            email=data["email"],
            name=data["name"],
            amount=data["amount"],
            cover_fee=data["cover_fee"],
            frequency=data["frequency"],
            campaign=campaign,
            source=data["source"],
            utm=data["utm"],
            public_credit=data["public_credit"],
            public_name=data["public_name"],
            newsletter_opt_in=data["newsletter_opt_in"],
            ip=client_ip(request) or "unknown",
            checkout_key=data["checkout_key"],
            language=translation.get_language(),
        )
    except ValidationError as exc:
        limited = any(error.code == "rate_limited" for error in exc.error_list)
        return _error_json(" ".join(exc.messages), status=429 if limited else 400)
    return _step_json(step)


@never_cache
def checkout_return(request: HttpRequest) -> HttpResponse:
    """Where a redirect method brings the reader back: the outcome read from Stripe."""
    donation_id = checkout_token_read(token=request.GET.get("token", ""))
    if donation_id is None:
        raise Http404("Unknown payment.")
    donation = get_object_or_404(Donation.objects.select_related("donor", "gift"), pk=donation_id)
    try:
        state = services.checkout_return_read(
            donation=donation, payment_intent_id=request.GET.get("payment_intent", "")
        )
    except services.ReturnMismatch as exc:
        raise Http404("Unknown payment.") from exc
    donation.refresh_from_db()
    greeting = selectors.donation_greeting_name(donation=donation)
    return render(
        request,
        "donations/return.html",
        {"donation": donation, "state": state, "greeting_name": greeting},
    )


@never_cache
@require_POST
def checkout_refresh(request: HttpRequest) -> JsonResponse:
    donation = _donation_from_token(request)
    try:
        step = services.checkout_confirmed(donation=donation)
    except ValidationError as exc:
        return _error_json(" ".join(exc.messages))
    return _step_json(step)


@never_cache
def thanks(request: HttpRequest, token: str) -> HttpResponse:
    donation_id = checkout_token_read(token=token)
    if donation_id is None:
        raise Http404("Unknown payment.")
    donation = get_object_or_404(Donation.objects.select_related("donor", "gift"), pk=donation_id)
    greeting = selectors.donation_greeting_name(donation=donation)
    return render(
        request, "donations/thanks.html", {"donation": donation, "greeting_name": greeting}
    )


def supporters(request: HttpRequest) -> HttpResponse:
    return render(
        request, "donations/supporters.html", {"supporters": selectors.public_supporters()}
    )
