"""
Donor sign-in links ("magic links"): how a donor proves they hold the address they gave
with, before cancelling a gift, changing its amount or swapping its card.

- Receipts and notices carry no sign-in: their link only leads to the form that asks for
  one, so a forwarded receipt lets nobody act on the gift.
- `donor_sign_in_link_request` answers the same, doing the same work, for donors and
  strangers: it counts the request against the address and the IP and queues one task;
  the task alone looks the address up. At most DONATION_SIGN_IN_LINKS_PER_HOUR emails
  go to one address per hour from one IP, and DONATION_SIGN_IN_LINKS_PER_ADDRESS_PER_HOUR
  from all of them; a request past that is dropped silently.
- The emailed link is single-use (one conditional UPDATE marks it used) and works for
  DONATION_MANAGE_LINK_MAX_AGE seconds; only a digest of its token is stored.

Small on purpose, so a reader account (issue 14) can reuse it: nothing here knows about
gifts; the view turns a used link into a short session (donations/donor_session.py).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from outlet.core.addresses import email_digest, email_normalise
from outlet.core.ratelimits import rate_limit_hit

from ..models import Donor, DonorEmail, DonorSignInLink
from .donor_emails import donor_email_queue

logger = logging.getLogger(__name__)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def donor_sign_in_link_request(*, email: str, ip: str) -> None:
    """Queue a sign-in link for this address, if it is within its hourly allowance.
    Same work and same answer whether or not the address has given."""
    from ..tasks import donor_sign_in_link_send_task

    address = email_normalise(email)
    digest = email_digest(address)
    # The IP first, so one busy IP spends nothing of an address's allowance; then the
    # address from this IP, so asking from elsewhere cannot lock the donor out; then the
    # address from everywhere, a higher cap against mail-bombing from many IPs.
    limits = [
        (f"donations:sign-in:ip:{ip}", settings.DONATION_RATE_LIMIT_PER_IP),
        (f"donations:sign-in:email-ip:{digest}:{ip}", settings.DONATION_SIGN_IN_LINKS_PER_HOUR),
        (f"donations:sign-in:email:{digest}", settings.DONATION_SIGN_IN_LINKS_PER_ADDRESS_PER_HOUR),
    ]
    within = all(rate_limit_hit(key, limit=limit, window=3600) for key, limit in limits)
    if not within:
        logger.info("Sign-in link request over its hourly allowance; dropped")
        return
    request_id = secrets.token_hex(16)  # makes a repeated task owe the email once
    transaction.on_commit(
        lambda: donor_sign_in_link_send_task.delay(address, request_id), robust=True
    )


def donor_sign_in_link_send(*, email: str, request_id: str) -> bool:
    """The task's work: owe a sign-in email if this address has given, once per request
    however often the task runs. True if owed now."""
    donor_id = Donor.objects.filter(email=email_normalise(email)).values_list("pk", flat=True)
    found = donor_id.first()
    if found is None:
        return False
    with transaction.atomic():
        owed = donor_email_queue(
            kind=DonorEmail.Kind.MANAGE_LINK, donor_id=found, dedupe_key=f"sign-in:{request_id}"
        )
    return owed is not None


def donor_sign_in_link_create(*, donor_id: int) -> str:
    """A new link's token (the caller puts it in the email; only its digest is kept)."""
    token = secrets.token_urlsafe(32)
    DonorSignInLink.objects.create(donor_id=donor_id, token_digest=_digest(token))
    return token


def donor_sign_in_link_use(*, token: str) -> Donor | None:
    """The donor a fresh, unused link belongs to, marking it used; None otherwise."""
    oldest = timezone.now() - timedelta(seconds=settings.DONATION_MANAGE_LINK_MAX_AGE)
    with transaction.atomic():
        link = (
            DonorSignInLink.objects.select_for_update()
            .filter(token_digest=_digest(token), used_at__isnull=True, created_at__gte=oldest)
            .first()
        )
        if link is None:
            return None
        link.used_at = timezone.now()
        link.save(update_fields=["used_at"])
    return Donor.objects.filter(pk=link.donor_id).first()
