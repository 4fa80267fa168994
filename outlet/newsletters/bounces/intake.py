"""Taking in one returned message: read it, check its token, act once.

Contract: `bounce_message_process(raw=..., source=...)` acts on a message at most once,
whoever hands it in and however often (the `BounceMessage` row and the effects commit
together), and never loses one: a message not understood is stored, set aside and
counted. A hard bounce, soft bounce or complaint acts only when its token is ours and
was signed for the address it is about (the recipient the bounce names or, for a
complaint whose feedback loop redacted it, the reader the delivery went to); otherwise
it is FORGED and changes nothing. Acting goes through `tracking.bounce_apply`, the path
an ESP's webhook takes, so a bounce from the mailbox counts in the issue's figures exactly
like one from an ESP.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from outlet.core.addresses import email_digest
from outlet.newsletters.bounces.models import BounceMessage
from outlet.newsletters.bounces.reading import BounceReport, Outcome, bounce_read
from outlet.newsletters.models import Delivery, DeliveryEvent, Subscriber

logger = logging.getLogger(__name__)

#: Outcomes that change a reader's standing, and so need a token signed for them.
ACTING = {Outcome.HARD, Outcome.SOFT, Outcome.COMPLAINT}

#: Headers the receiving side adds on its way to the mailbox: left out of the key so the
#: same message piped twice, or read from a mailbox after a pipe, is recognised.
_TRACE = re.compile(
    rb"^(?:return-path|delivered-to|x-original-to|envelope-to|received):.*(?:\r?\n[ \t].*)*\r?\n",
    re.IGNORECASE | re.MULTILINE,
)
_ADDRESS = re.compile(r"[^\s<>;:,\"']+@[^\s<>;:,\"']+")


@dataclass(frozen=True)
class Processed:
    outcome: str
    new: bool  # False: the message had been taken in before; nothing was done again


def message_key(raw: bytes) -> str:
    head, separator, body = raw.partition(b"\r\n\r\n")
    if not separator:
        head, separator, body = raw.partition(b"\n\n")
    head = _TRACE.sub(b"", head + b"\n")
    return hashlib.sha256(head + separator + body).hexdigest()


def _verified(report: BounceReport) -> tuple[str | None, int | None, str]:
    """(the address the token was signed for, the delivery, why not) for an acting report."""
    token = report.token
    if token is None:
        return None, None, "bad token" if report.token_seen else "no token"
    candidates = list(report.recipients)
    delivery_id = token.delivery_id
    # A bounce names its recipient, and must name the one its token was signed for. A
    # feedback loop often redacts it: a complaint may stand on the delivery's own reader.
    if delivery_id is not None and (report.outcome == Outcome.COMPLAINT or not candidates):
        delivery = Delivery.objects.select_related("subscriber").filter(pk=delivery_id).first()
        if delivery is not None and delivery.subscriber is not None:
            candidates.append(delivery.subscriber.email)
    for candidate in candidates:
        if candidate and token.signed_for(candidate):
            if token.expired:
                return None, None, "token expired"
            return candidate, delivery_id, ""
    return None, None, "token not signed for the reported address"


def _soft_run_check(*, subscriber_id: int, delivery_id: int | None) -> None:
    """End the reader's run of soft bounces if a copy sent between their last bounce and
    this one (`delivery_id`; None for a transactional message: now) did not come back.
    Through our own relay, the relay accepting a copy is no delivery (sending/claims.py
    does not end the run then): a copy that never bounced is the only sign that the
    mailbox took one. The last bounce is the last copy a soft bounce came back for, or
    the copy a transactional bounce was counted against (`tracking.bounce_apply`)."""
    before = {"delivery_id__lt": delivery_id} if delivery_id is not None else {}
    soft = (
        BounceMessage.objects.filter(
            outcome=Outcome.SOFT, delivery__subscriber_id=subscriber_id, **before
        )
        .order_by("-delivery_id")
        .values_list("delivery_id", flat=True)
        .first()
    )
    counted = (
        DeliveryEvent.objects.filter(
            kind=DeliveryEvent.Kind.BOUNCE, delivery__subscriber_id=subscriber_id, **before
        )
        .order_by("-delivery_id")
        .values_list("delivery_id", flat=True)
        .first()
    )
    previous = max((pk for pk in (soft, counted) if pk is not None), default=None)
    if previous is None:
        return
    came_back = BounceMessage.objects.filter(
        delivery__subscriber_id=subscriber_id, delivery_id__isnull=False
    ).values("delivery_id")
    between = Delivery.objects.filter(
        subscriber_id=subscriber_id, status=Delivery.Status.SENT, pk__gt=previous
    )
    if delivery_id is not None:
        between = between.filter(pk__lt=delivery_id)
    if between.exclude(pk__in=came_back).exists():
        Subscriber.objects.filter(pk=subscriber_id).update(soft_bounce_count=0)


def bounce_message_process(
    *, raw: bytes, source: str, envelope_recipient: str | None = None
) -> Processed:
    """Take in one returned message (see the module's contract)."""
    from outlet.newsletters.tracking import bounce_apply

    key = message_key(raw)
    done = BounceMessage.objects.filter(key=key).values_list("outcome", flat=True).first()
    if done is not None:
        return Processed(outcome=done, new=False)
    report = bounce_read(raw, envelope_recipient=envelope_recipient)
    outcome, detail = report.outcome, report.detail
    email: str | None = None
    delivery_id: int | None = None
    if outcome in ACTING:
        email, delivery_id, refused = _verified(report)
        if email is None:
            # Metadata only: a forgery's text is the forger's, and is not kept.
            outcome, detail = Outcome.FORGED, f"{refused}; said {report.outcome}"
    # What the row keeps says why without the address (a bounce's text often quotes it).
    detail = _ADDRESS.sub("…", detail)[:300]
    try:
        with transaction.atomic():
            # The delivery's row locked: two messages about one copy act one after the other.
            known = (
                Delivery.objects.select_for_update()
                .filter(pk=delivery_id)
                .values_list("pk", flat=True)
                .first()
                if delivery_id
                else None
            )
            # The same bounce again (a remote server's second DSN, or one replayed by
            # whoever holds the return path): recorded, but it acts once per copy.
            again = (
                known is not None
                and BounceMessage.objects.filter(delivery_id=known, outcome=outcome).exists()
            )
            BounceMessage.objects.create(
                key=key,
                message_id=report.message_id,
                source=source,
                outcome=outcome,
                detail=detail,
                delivery_id=known,
                raw=raw if outcome == Outcome.UNPARSED else b"",
            )
            if email is not None and not again:
                if outcome == Outcome.SOFT:
                    subscriber_id = (
                        Subscriber.objects.filter(email_hash=email_digest(email))
                        .values_list("pk", flat=True)
                        .first()
                    )
                    if subscriber_id is not None:
                        _soft_run_check(subscriber_id=subscriber_id, delivery_id=known)
                bounce_apply(
                    email=email,
                    outcome=outcome,
                    detail=f"bounce mailbox: {detail}",
                    delivery_id=delivery_id,
                    after_relay=True,
                )
    except IntegrityError:  # another worker took the same message in meanwhile
        done = BounceMessage.objects.filter(key=key).values_list("outcome", flat=True).first()
        return Processed(outcome=done or outcome, new=False)
    logger.info(
        "bounce mailbox: %s (%s)%s",
        outcome,
        detail,
        f" for {email_digest(email)[:12]}" if email else "",
    )
    return Processed(outcome=outcome, new=True)


def bounce_counts() -> dict[str, int]:
    """How many messages the bounce mailbox took in, by outcome (every outcome named)."""
    from django.db.models import Count

    counts = dict.fromkeys(Outcome.values, 0)
    for row in BounceMessage.objects.values("outcome").annotate(n=Count("pk")):
        counts[row["outcome"]] = row["n"]
    return counts
