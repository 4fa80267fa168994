"""The account's gifts: receipts, and a recurring gift's amount, card and cancellation,
each through the donations app's own self-service services (which confirm by email)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from outlet.donations import selectors as donations
from outlet.donations import services as donation_services
from outlet.donations.forms import AmountChangeForm
from outlet.donations.models import Gift

from .models import Reader
from .views import account_page, done, reader_required


def _gift(reader: Reader, gift_id: int) -> Gift:
    donor = donations.donor_for_email(email=reader.email)
    gift = donations.donor_gift(donor=donor, gift_id=gift_id) if donor else None
    if gift is None:
        raise Http404("No such gift.")
    return gift


@reader_required
def receipt(request: HttpRequest, reader: Reader, donation_id: int) -> HttpResponse:
    donor = donations.donor_for_email(email=reader.email)
    donation = donations.donor_receipt(donor=donor, donation_id=donation_id) if donor else None
    if donation is None:
        raise Http404("No such receipt.")
    context = {"donation": donation, "tax_statement": settings.DONATION_TAX_STATEMENT}
    return render(request, "readers/receipt.html", context)


@require_POST
@reader_required
def gift_amount(request: HttpRequest, reader: Reader, gift_id: int) -> HttpResponse:
    gift = _gift(reader, gift_id)
    form = AmountChangeForm(request.POST, currency=gift.currency)
    if not form.is_valid():
        errors = [str(error) for error in form.errors.get("amount", [])]
        return account_page(
            request,
            reader,
            error=" ".join(errors) or gettext("Please enter an amount."),
            status=400,
        )
    try:
        donation_services.gift_amount_change(gift=gift, amount=form.cleaned_data["amount"])
    except ValidationError as exc:
        return account_page(request, reader, error=" ".join(exc.messages), status=400)
    return done("amount")


@require_POST
@reader_required
def gift_cancel(request: HttpRequest, reader: Reader, gift_id: int) -> HttpResponse:
    gift = _gift(reader, gift_id)
    try:
        donation_services.gift_cancel(gift=gift)
    except ValidationError as exc:
        return account_page(request, reader, error=" ".join(exc.messages), status=400)
    return done("cancelled")


def _error_json(message: str, *, status: int = 400) -> JsonResponse:
    return JsonResponse({"action": "error", "message": message, "fields": {}}, status=status)


@require_POST
@reader_required
def gift_card_start(request: HttpRequest, reader: Reader, gift_id: int) -> JsonResponse:
    gift = _gift(reader, gift_id)
    try:
        client_secret = donation_services.gift_card_setup_start(gift=gift)
    except ValidationError as exc:
        return _error_json(" ".join(exc.messages))
    return JsonResponse({"action": "setup", "client_secret": client_secret})


@require_POST
@reader_required
def gift_card_confirm(request: HttpRequest, reader: Reader, gift_id: int) -> JsonResponse:
    gift = _gift(reader, gift_id)
    try:
        donation_services.gift_card_update(
            gift=gift, setup_intent_id=request.POST.get("setup_intent", "")
        )
    except ValidationError as exc:
        return _error_json(" ".join(exc.messages))
    return JsonResponse({"action": "done", "redirect": reverse("readers:account") + "?done=card"})
