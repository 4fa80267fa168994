"""
Checkouts a reader left before Stripe's charge step: the card form refused the card, the
tab was closed. `checkout_start` writes its pending rows before Stripe is asked (so a
webhook always finds them), which leaves such rows behind; they are not donations. Until
they expire they are kept out of the editors' list and called abandoned in a donor's data
download (selectors.CHECKOUT_UNFINISHED); after DONATION_CHECKOUT_EXPIRY_HOURS they are
marked abandoned, and their never-started recurring gifts cancelled, so a late submit of
the old page can never charge them.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from ..models import Donation, Gift

EXPIRED_MESSAGE = gettext_noop(
    "This payment form expired before the card was charged, so nothing was charged. "
    "Please reload the page and try again."
)


def checkouts_abandoned_expire(*, older_than: timedelta | None = None) -> int:
    """Mark unfinished checkouts older than the expiry abandoned; the number marked. Only
    a pending row that never reached the charge step (no card read, no payment or invoice
    at Stripe) changes, in one conditional UPDATE: a repeat, or a checkout charged
    meanwhile, changes nothing."""
    from ..selectors import CHECKOUT_UNFINISHED

    age = older_than or timedelta(hours=settings.DONATION_CHECKOUT_EXPIRY_HOURS)
    expired = Donation.objects.filter(CHECKOUT_UNFINISHED, created_at__lt=timezone.now() - age)
    with transaction.atomic():
        gift_ids = list(expired.exclude(gift=None).values_list("gift_id", flat=True))
        count = expired.update(status=Donation.Status.ABANDONED, failure_message=EXPIRED_MESSAGE)
        # Only the gifts of checkouts this UPDATE abandoned: one whose card was read since
        # the list was made is being charged, and its gift must stay able to start.
        Gift.objects.filter(
            pk__in=gift_ids,
            status=Gift.Status.INCOMPLETE,
            stripe_subscription_id=None,
            donations__status=Donation.Status.ABANDONED,
        ).update(
            status=Gift.Status.CANCELLED,
            cancelled_at=timezone.now(),
            end_reason=Gift.EndReason.PAYMENT_FAILED,
        )
    return count
