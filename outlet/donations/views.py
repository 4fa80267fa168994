"""Reader-facing pages: give, finish a payment, thank, and manage gifts after signing in
with a single-use link.

Thin: a form parses, one service acts, the view renders or answers JSON to donate.js."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from outlet.core.ratelimits import client_ip

from . import selectors, services
from .donor_session import donor_session_donor, donor_session_start
from .forms import UTM_FIELDS, AmountChangeForm, DonationForm, ManageLinkForm
from .models import Campaign, Donation, Gift
from .services import CheckoutStep
from .tokens import checkout_token_make, checkout_token_read


def _stripe_context() -> dict[str, Any]:
    return {
        "STRIPE_JS_URL": settings.STRIPE_JS_URL,
        "STRIPE_PUBLISHABLE_KEY": settings.STRIPE_PUBLISHABLE_KEY,
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
    context = {
        "form": DonationForm(initial=initial),
        "campaign": campaign,
        "campaign_raised": selectors.campaign_raised(campaign=campaign) if campaign else 0,
        "currency": settings.DONATION_CURRENCY,
        "fee_percent": settings.DONATION_FEE_PERCENT,
        "fee_fixed": settings.DONATION_FEE_FIXED,
        **_stripe_context(),
    }
    return render(request, "donations/donate.html", context)


def _step_json(step: CheckoutStep) -> JsonResponse:
    token = checkout_token_make(donation_id=step.donation.pk)
    return JsonResponse(
        {
            "action": step.action,
            "token": token,
            "client_secret": step.client_secret,
            "payment_method": step.payment_method_id,
            "message": step.message,
            "redirect": reverse("donations:thanks", args=[token]) if step.action == "done" else "",
        },
        status=200,
    )


def _error_json(message: str, *, status: int = 400, fields: dict | None = None) -> JsonResponse:
    return JsonResponse(
        {"action": "error", "message": message, "fields": fields or {}}, status=status
    )


@never_cache
@require_POST
def checkout_start(request: HttpRequest) -> JsonResponse:
    form = DonationForm(request.POST)
    if not form.is_valid():
        fields = {name: [str(e) for e in errors] for name, errors in form.errors.items()}
        return _error_json("Please check the highlighted fields.", fields=fields)
    data = form.cleaned_data
    campaign = Campaign.objects.filter(slug=data["campaign"]).first() if data["campaign"] else None
    try:
        step = services.checkout_start(
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
        )
    except ValidationError as exc:
        return _error_json(" ".join(exc.messages), status=429 if "Too many" in str(exc) else 400)
    return _step_json(step)


def _donation_from_token(request: HttpRequest) -> Donation:
    donation_id = checkout_token_read(token=request.POST.get("token", ""))
    if donation_id is None:
        raise Http404("Unknown payment.")
    return get_object_or_404(Donation, pk=donation_id)


@never_cache
@require_POST
def checkout_charge(request: HttpRequest) -> JsonResponse:
    donation = _donation_from_token(request)
    try:
        step = services.checkout_charge(
            donation=donation, setup_intent_id=request.POST.get("setup_intent", "")
        )
    except ValidationError as exc:
        return _error_json(" ".join(exc.messages))
    return _step_json(step)


@never_cache
@require_POST
def checkout_refresh(request: HttpRequest) -> JsonResponse:
    donation = _donation_from_token(request)
    try:
        step = services.checkout_refresh(donation=donation)
    except ValidationError as exc:
        return _error_json(" ".join(exc.messages))
    return _step_json(step)


@never_cache
def thanks(request: HttpRequest, token: str) -> HttpResponse:
    donation_id = checkout_token_read(token=token)
    if donation_id is None:
        raise Http404("Unknown payment.")
    donation = get_object_or_404(Donation.objects.select_related("donor", "gift"), pk=donation_id)
    return render(request, "donations/thanks.html", {"donation": donation})


def supporters(request: HttpRequest) -> HttpResponse:
    return render(
        request, "donations/supporters.html", {"supporters": selectors.public_supporters()}
    )


@never_cache
def manage_request(request: HttpRequest) -> HttpResponse:
    """Ask for a sign-in link. The answer is the same for donors, strangers and requests
    over the hourly allowance (services/sign_in.py)."""
    form = ManageLinkForm(request.POST or None)
    sent = False
    if request.method == "POST" and form.is_valid():
        services.donor_sign_in_link_request(
            email=form.cleaned_data["email"], ip=client_ip(request) or "unknown"
        )
        sent = True
    return render(request, "donations/manage_request.html", {"form": form, "sent": sent})


def _expired(request: HttpRequest) -> HttpResponse:
    return render(request, "donations/manage_expired.html", status=403)


@never_cache
def sign_in(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button, POST uses the link: mail scanners that open links must not
    use up a single-use link."""
    if request.method != "POST":
        return render(request, "donations/sign_in.html")
    donor = services.donor_sign_in_link_use(token=token)
    if donor is None:
        return _expired(request)
    donor_session_start(request, donor)
    return redirect("donations:manage")


@never_cache
def manage(request: HttpRequest) -> HttpResponse:
    donor = donor_session_donor(request)
    if donor is None:
        return _expired(request)
    gifts, donations = selectors.donor_history(donor=donor)
    context = {
        "donor": donor,
        "gifts": gifts,
        "donations": donations,
        "amount_form": AmountChangeForm(),
        "card_gift": next((gift for gift in gifts if gift.is_live), None),
        "tax_statement": settings.DONATION_TAX_STATEMENT,
        **_stripe_context(),
    }
    return render(request, "donations/manage.html", context)


def _donor_gift(request: HttpRequest, gift_id: int) -> Gift | None:
    donor = donor_session_donor(request)
    if donor is None:
        return None
    return get_object_or_404(Gift.objects.select_related("donor"), pk=gift_id, donor=donor)


@require_POST
def manage_cancel(request: HttpRequest, gift_id: int) -> HttpResponse:
    gift = _donor_gift(request, gift_id)
    if gift is None:
        return _expired(request)
    try:
        services.gift_cancel(gift=gift)
        messages.success(request, "Your recurring gift is cancelled. We have emailed you a note.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("donations:manage")


@require_POST
def manage_amount(request: HttpRequest, gift_id: int) -> HttpResponse:
    gift = _donor_gift(request, gift_id)
    if gift is None:
        return _expired(request)
    form = AmountChangeForm(request.POST)
    if form.is_valid():
        try:
            services.gift_amount_change(gift=gift, amount=form.cleaned_data["amount"])
            messages.success(request, "Your new amount applies from your next renewal.")
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    else:
        errors = [str(error) for error in form.errors.get("amount", [])]
        messages.error(request, " ".join(errors) or "Please enter an amount.")
    return redirect("donations:manage")


_EXPIRED_MESSAGE = "This sign-in has expired. Please ask for a new link."


@require_POST
def manage_card_start(request: HttpRequest, gift_id: int) -> JsonResponse:
    gift = _donor_gift(request, gift_id)
    if gift is None:
        return _error_json(_EXPIRED_MESSAGE, status=403)
    try:
        client_secret = services.gift_card_setup_start(gift=gift)
    except ValidationError as exc:
        return _error_json(" ".join(exc.messages))
    return JsonResponse({"action": "setup", "client_secret": client_secret})


@require_POST
def manage_card_confirm(request: HttpRequest, gift_id: int) -> JsonResponse:
    gift = _donor_gift(request, gift_id)
    if gift is None:
        return _error_json(_EXPIRED_MESSAGE, status=403)
    try:
        services.gift_card_update(gift=gift, setup_intent_id=request.POST.get("setup_intent", ""))
    except ValidationError as exc:
        return _error_json(" ".join(exc.messages))
    messages.success(request, "Your card is updated. Future renewals will use it.")
    return JsonResponse({"action": "done", "redirect": reverse("donations:manage")})
