"""
The Stripe customers follow the donor: when a donor's address or name changes, every
Stripe customer holding their payments (a donor who gave more than once may have
several) gets the new email and name; when a donor is erased, both are cleared there too.

Stripe is never called inside the transaction that changed the donor: the change queues
`donations.donor_stripe_customers_sync` after commit, which reads the donor afresh and
sends what is true then, so a repeat, a retry or two changes in a row all end with
Stripe holding the latest values. Temporary faults (Stripe unreachable, 5xx, 429) are
retried with backoff; a refusal is not (it would be refused again), and a customer
deleted at Stripe is skipped.
"""

from __future__ import annotations

import logging

from django.db import transaction

from .. import stripe_gateway
from ..models import Donation, Donor, Gift

logger = logging.getLogger(__name__)


def donor_stripe_sync_queue(*, donor_id: int) -> None:
    """Have the donor's Stripe customers follow their record once this transaction
    commits (a broker that is down then is logged, never an error for the change)."""
    from ..tasks import donor_stripe_customers_sync_task

    transaction.on_commit(lambda: donor_stripe_customers_sync_task.delay(donor_id), robust=True)


def _stripe_customer_ids(donor_id: int) -> list[str]:
    held = set(
        Donation.objects.filter(donor_id=donor_id)
        .exclude(stripe_customer_id="")
        .values_list("stripe_customer_id", flat=True)
    )
    held |= set(
        Gift.objects.filter(donor_id=donor_id)
        .exclude(stripe_customer_id="")
        .values_list("stripe_customer_id", flat=True)
    )
    return sorted(held)


def donor_stripe_customers_sync(*, donor_id: int) -> int:
    """Send the donor's current email and name (empty once erased) to each of their Stripe
    customers. Returns how many were updated. Raises the StripeError of a customer that
    could not be updated (stripe_gateway.TEMPORARY_ERRORS are worth a retry)."""
    donor = Donor.objects.filter(pk=donor_id).first()
    if donor is None:
        return 0
    updated = 0
    for customer_id in _stripe_customer_ids(donor_id):
        try:
            stripe_gateway.customer_update(
                customer_id=customer_id, email=donor.email or "", name=donor.name
            )
        except stripe_gateway.InvalidRequestError as exc:
            if exc.code != "resource_missing":
                raise
            # Deleted at Stripe: it holds nothing of the donor's any more.
            logger.info("Stripe customer %s of donor %s no longer exists", customer_id, donor_id)
            continue
        updated += 1
    return updated
