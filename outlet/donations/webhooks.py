"""
Stripe webhooks: verify the signature on the raw body, then acknowledge.

Recording and dispatch of each event type comes with the donations models.
"""

import stripe
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    signature = request.headers.get("Stripe-Signature", "")
    try:
        stripe.Webhook.construct_event(request.body, signature, settings.STRIPE_WEBHOOK_SECRET)
    except (ValueError, stripe.SignatureVerificationError):
        return HttpResponse("Invalid payload or signature.", status=400, content_type="text/plain")
    return HttpResponse("OK", content_type="text/plain")
