"""
Writes for donations, by concern; each module states its contract at its top:

- checkout.py       a reader gives: pending rows first, then Stripe, then the browser's step
- payment_element.py  the donate page's Payment Element flow: the intent created on submit,
                    the return page of redirect methods
- abandoned.py      checkouts left before the charge step: hidden, then expired
- stripe_events.py  applying what Stripe says (payments, invoices, subscriptions), once
- refunds.py        refunds and disputes
- self_service.py   a donor's own gifts: cancel, amount, card (from the reader account,
                    outlet/readers), a change of address, erasure
- stripe_customers.py  the donor's Stripe customers follow their address and name
- delayed.py        bank debits that settle days later: processing, then paid or failed
- donor_emails.py   emails owed to donors, sent once; the sweep that finds lost ones
- adoption.py       the Stripe account's existing subscriptions adopted as gifts (stripe_adopt)

Callers import from here (`services.checkout_intent_create`), not from the modules.
"""

from .abandoned import EXPIRED_MESSAGE, checkouts_abandoned_expire
from .adoption import (
    AdoptionFilter,
    AdoptionReport,
    adoption_filter_parse,
    adoption_plan,
    subscriptions_adopt,
)
from .checkout import (
    AUTHENTICATION_MESSAGE,
    GENERIC_STRIPE_MESSAGE,
    NEWSLETTER_CONSENT,
    CheckoutStep,
    checkout_refresh,
    donation_fee_compute,
    newsletter_opt_in_forward,
    payment_attempt_register,
)
from .delayed import (
    BANK_FAILURE_MESSAGE,
    payment_failure_after_processing,
    payment_processing_record,
)
from .donor_emails import (
    donor_email_failure_record,
    donor_email_queue,
    donor_email_send,
    donor_emails_sweep,
    stripe_event_record,
)
from .payment_element import (
    ReturnMismatch,
    checkout_confirmed,
    checkout_intent_create,
    checkout_return_read,
)
from .refunds import (
    charge_refund_apply,
    dispute_apply,
    dispute_close_apply,
    dispute_editors_notify,
    dispute_notifications_sweep,
    donation_refund,
    refund_apply,
    refund_failed_editors_notify,
)
from .self_service import (
    donor_email_change,
    donor_erase,
    donor_gifts_stop,
    gift_amount_change,
    gift_cancel,
    gift_card_setup_start,
    gift_card_update,
)
from .stripe_customers import donor_stripe_customers_sync, donor_stripe_sync_queue
from .stripe_events import (
    DECLINE_MESSAGE,
    PaymentTarget,
    donation_fail,
    donation_for_payment_intent,
    gift_end,
    invoice_apply,
    payment_intent_apply,
    payment_record,
    payment_record_if_matching,
    subscription_apply,
)

__all__ = [
    "AdoptionFilter",
    "AdoptionReport",
    "adoption_filter_parse",
    "adoption_plan",
    "subscriptions_adopt",
    "AUTHENTICATION_MESSAGE",
    "BANK_FAILURE_MESSAGE",
    "donor_stripe_customers_sync",
    "donor_stripe_sync_queue",
    "payment_failure_after_processing",
    "payment_processing_record",
    "DECLINE_MESSAGE",
    "GENERIC_STRIPE_MESSAGE",
    "NEWSLETTER_CONSENT",
    "CheckoutStep",
    "PaymentTarget",
    "charge_refund_apply",
    "checkout_confirmed",
    "checkout_intent_create",
    "checkout_return_read",
    "ReturnMismatch",
    "checkout_refresh",
    "dispute_apply",
    "dispute_close_apply",
    "dispute_editors_notify",
    "dispute_notifications_sweep",
    "donation_fail",
    "donation_fee_compute",
    "donation_for_payment_intent",
    "donation_refund",
    "donor_email_change",
    "donor_email_failure_record",
    "donor_email_queue",
    "donor_email_send",
    "donor_emails_sweep",
    "donor_erase",
    "donor_gifts_stop",
    "gift_amount_change",
    "checkouts_abandoned_expire",
    "EXPIRED_MESSAGE",
    "gift_cancel",
    "gift_card_setup_start",
    "gift_card_update",
    "gift_end",
    "invoice_apply",
    "newsletter_opt_in_forward",
    "payment_attempt_register",
    "payment_intent_apply",
    "payment_record",
    "payment_record_if_matching",
    "refund_apply",
    "refund_failed_editors_notify",
    "stripe_event_record",
    "subscription_apply",
]
