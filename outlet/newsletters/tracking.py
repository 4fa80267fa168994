"""Delivery events and mailto unsubscribes from the email provider, via django-anymail.

Anymail verifies each webhook (its shared secret or the ESP's signature) and
normalises it into one `tracking` or `inbound` signal; these receivers turn
those into audience changes through services:

- a hard bounce, a rejection for an invalid address, or a spam complaint
  suppresses the address for every newsletter;
- a soft bounce (a "bounced" the ESP marks as temporary) is counted, and
  NEWSLETTER_SOFT_BOUNCE_LIMIT in a row suppress; a deferral ("deferred": the
  ESP is still trying) is not a bounce and changes nothing;
- a delivery ends a run of soft bounces;
- an ESP-side unsubscribe unsubscribes from everything;
- an inbound mail to NEWSLETTER_UNSUBSCRIBE_MAILTO whose subject carries the
  token from our List-Unsubscribe mailto unsubscribes that subscriber.

Webhook URLs: /anymail/<esp>/tracking/ and /anymail/<esp>/inbound/ with
ANYMAIL_WEBHOOK_SECRET (see anymail's documentation for each ESP).
"""

from __future__ import annotations

import logging
import re

from anymail.signals import EventType, RejectReason, inbound, tracking
from django.dispatch import receiver

from outlet.core.addresses import email_digest
from outlet.newsletters import services
from outlet.newsletters.measuring.recording import delivery_event_record, delivery_followed
from outlet.newsletters.models import DeliveryEvent, Newsletter, Suppression
from outlet.newsletters.tokens import LinkInvalid, unsubscribe_target

logger = logging.getLogger(__name__)

# How some ESPs mark a "bounced" event as temporary in their raw payload.
_SOFT_BOUNCE_MARKERS = (
    ("Type", {"SoftBounce", "Transient", "DnsError"}),  # Postmark
    ("severity", {"temporary"}),  # Mailgun
    ("bounceType", {"Transient"}),  # Amazon SES
)


def _is_soft_bounce(event) -> bool:
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    return any(raw.get(key) in values for key, values in _SOFT_BOUNCE_MARKERS)


@receiver(tracking, dispatch_uid="newsletters.tracking")
def tracking_event_receive(sender, event, esp_name, **kwargs) -> None:
    email = event.recipient
    if not email:
        return
    detail = f"{esp_name}: {event.description or event.mta_response or event.event_type}"
    event_type = event.event_type
    outcome = _outcome(event)
    if outcome is not None:
        metadata = event.metadata if isinstance(event.metadata, dict) else {}
        named = str(metadata.get("delivery_id", ""))
        bounce_apply(
            email=email,
            outcome=outcome,
            detail=detail,
            delivery_id=int(named) if named.isdigit() else None,
        )
    elif event_type == EventType.DELIVERED:
        services.subscriber_delivery_record(email=email)
    elif event_type == EventType.UNSUBSCRIBED:
        from outlet.newsletters.models import Subscriber

        subscriber = Subscriber.objects.filter(email_hash=email_digest(email)).first()
        if subscriber is not None:
            services.subscriber_unsubscribe(subscriber=subscriber)
    else:
        return
    logger.info("newsletter %s event for %s", event_type, email_digest(email)[:12])


def _outcome(event) -> str | None:
    """What an ESP event is for the reader: "complaint", "soft", "hard" or None."""
    event_type = event.event_type
    if event_type == EventType.COMPLAINED or event.reject_reason == RejectReason.SPAM:
        return "complaint"
    if event_type == EventType.BOUNCED and _is_soft_bounce(event):
        return "soft"
    if event_type == EventType.BOUNCED or (
        event_type == EventType.REJECTED
        and event.reject_reason in (RejectReason.BOUNCED, RejectReason.INVALID)
    ):
        return "hard"
    return None


def bounce_apply(
    *,
    email: str,
    outcome: str,
    detail: str,
    delivery_id: int | None,
    after_relay: bool = False,
) -> None:
    """A bounce or complaint about `email`, from an ESP's webhook or our own bounce
    mailbox (bounces/intake.py), applied the same way: counted for the issue whose
    delivery it followed (`delivery_id` when the message named it, else the reader's
    latest), then a complaint or hard bounce suppresses the address and a soft bounce
    counts toward NEWSLETTER_SOFT_BOUNCE_LIMIT.

    Only a final soft bounce comes here: a deferral is the sender still trying
    (greylisting answers one message with several), and counting each would suppress
    a good address before the message was even delivered.

    `after_relay`: a hard bounce that came back by mail after our relay accepted the copy
    (bounces/intake.py) counts toward its issue's bounce-rate breaker, which may hold it
    for the editor instead of suppressing (sending/breaker.py).
    """
    kind = DeliveryEvent.Kind.COMPLAINT if outcome == "complaint" else DeliveryEvent.Kind.BOUNCE
    delivery = delivery_followed(email_hash=email_digest(email), delivery_id=delivery_id)
    delivery_event_record(delivery=delivery, kind=kind)
    if outcome == "complaint":
        services.email_suppress(email=email, reason=Suppression.Reason.COMPLAINT, detail=detail)
    elif outcome == "soft":
        services.subscriber_soft_bounce_record(email=email, detail=detail)
    else:
        if after_relay and delivery_id is not None:
            from outlet.newsletters.sending.breaker import issue_mail_bounce_hold

            if issue_mail_bounce_hold(delivery_id=delivery_id, email=email):
                return
        services.email_suppress(email=email, reason=Suppression.Reason.HARD_BOUNCE, detail=detail)


_TOKEN_IN_SUBJECT = re.compile(r"unsubscribe\s+(\S+)", re.IGNORECASE)


@receiver(inbound, dispatch_uid="newsletters.inbound_unsubscribe")
def inbound_unsubscribe_receive(sender, event, esp_name, **kwargs) -> None:
    """Act on a List-Unsubscribe mailto: the token in the subject names the subscriber.

    The sender's address is not trusted (it is easily forged); only the
    signed token counts. Mail without a valid token is ignored.
    """
    message = event.message
    match = _TOKEN_IN_SUBJECT.search((message.subject or "") if message else "")
    if not match:
        return
    try:
        target = unsubscribe_target(match.group(1))
    except LinkInvalid:
        logger.info("newsletter mailto unsubscribe with a bad token ignored")
        return
    newsletter = (
        Newsletter.objects.filter(pk=target.newsletter_id).first() if target.newsletter_id else None
    )
    services.subscriber_unsubscribe(subscriber=target.subscriber, newsletter=newsletter)
