"""What Stripe.js does in the browser, done over HTTP against localstripe, for
integration tests below the browser (the e2e tests use the real page and the shim,
outlet/static/js/stripe-elements-shim.js, which posts the same requests)."""

from __future__ import annotations

import re

import requests


def confirm_card_setup(base: str, client_secret: str, number: str, *, approve_3ds: bool = True):
    """localstripe's confirmCardSetup: returns (setup_intent_id, error_or_None)."""
    setup_intent_id = re.match(r"^(seti_\w+)_secret_", client_secret).group(1)
    url = f"{base}/v1/setup_intents/{setup_intent_id}/confirm"
    body = {
        "key": "pk_test_outlet",
        "use_stripe_sdk": True,
        "client_secret": client_secret,
        "payment_method_data": {
            "type": "card",
            "card": {"number": number, "exp_month": "12", "exp_year": "2034", "cvc": "123"},
            "billing_details": {"name": "Test Reader"},
        },
    }
    result = requests.post(url, json=body, timeout=10).json()
    if result.get("error"):
        return setup_intent_id, result["error"]
    if result.get("status") == "requires_action":
        action = "confirm" if approve_3ds else "cancel"
        result = requests.post(
            f"{base}/v1/setup_intents/{setup_intent_id}/{action}",
            json={"key": "pk_test_outlet", "use_stripe_sdk": True, "client_secret": client_secret},
            timeout=10,
        ).json()
        if result.get("status") != "succeeded":
            return setup_intent_id, {"message": "authentication failed"}
    return setup_intent_id, None


def confirm_payment(
    base: str, client_secret: str, number: str, *, approve_3ds: bool | None = True
) -> dict | None:
    """The Payment Element's confirmPayment with a card (the shim's requests): the
    PaymentIntent the server created is confirmed with the card's details, then 3-D Secure
    approved or failed (None: the challenge left open). Returns Stripe's error, or None."""
    payment_intent_id = re.match(r"^(pi_\w+)_secret_", client_secret).group(1)
    result = requests.post(
        f"{base}/v1/payment_intents/{payment_intent_id}/confirm",
        json={
            "key": "pk_test_outlet",
            "client_secret": client_secret,
            "payment_method_data": {
                "type": "card",
                "card": {"number": number, "exp_month": "12", "exp_year": "2034", "cvc": "123"},
                "billing_details": {"name": "Test Reader"},
            },
        },
        timeout=10,
    ).json()
    if result.get("error"):
        return result["error"]
    if result.get("status") == "requires_action" and approve_3ds is not None:
        result = confirm_card_payment(base, client_secret, approve=approve_3ds)
        if result.get("status") != "succeeded":
            return {"message": "authentication failed"}
    return None


def confirm_card_payment(base: str, client_secret: str, *, approve: bool = True) -> dict:
    """localstripe's 3-D Secure challenge of a PaymentIntent, approved or failed."""
    payment_intent_id = re.match(r"^(pi_\w+)_secret_", client_secret).group(1)
    return requests.post(
        f"{base}/v1/payment_intents/{payment_intent_id}/_authenticate?success={str(approve).lower()}",
        json={"key": "pk_test_outlet", "client_secret": client_secret},
        timeout=10,
    ).json()
