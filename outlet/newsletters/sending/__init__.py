"""The fan-out engine: render an issue once, then claim, personalise, send and record.

How a send moves (driven by tasks.py), and where each step lives:

1. `plan.deliveries_plan` walks the recipients by primary key in chunks (no
   OFFSET, never the whole list in memory) and inserts one `Delivery` per
   subscriber; the unique (issue, subscriber) constraint plus `ignore_conflicts`
   makes a repeated or resumed plan harmless.
2. Batch tasks ("lanes", NEWSLETTER_SEND_LANES per issue) each call
   `batch_send`, which claims (`claims.deliveries_claim`) up to
   NEWSLETTER_BATCH_SIZE claimable rows: pending ones whose retry time has
   come, and rows whose lease expired because the worker holding them died.
   The claim is an UPDATE guarded by the claimable condition that stamps a
   fresh lease token; on PostgreSQL the candidates are first locked with
   SELECT ... FOR UPDATE SKIP LOCKED so workers never wait on each other.
3. The batch re-checks who is still mailable (someone who unsubscribed since
   the plan is skipped) and sends: `smtp.smtp_batch_send` opens one SMTP
   connection and sends each message (one round trip per message with
   PIPELINING), recording each outcome as soon as the server has answered.
   That order is the guarantee: a row is marked sent only after the server
   accepted it, so a crash can lose no one; the only message that can go out
   twice is the one in flight on a connection whose worker died. Through an
   anymail ESP that batches (`esp.esp_batch_mode`), `esp.esp_batch_send` sends
   API calls of NEWSLETTER_ESP_BATCH_SIZE recipients with merge data, each
   call's outcomes recorded when it returns: a dead worker can duplicate one call.
4. The issue is rendered once (`rendering.issue_render`, frozen on the issue when
   sending starts) and serialised once per process into a MIME skeleton
   (`skeleton.skeleton_for`); each recipient's copy is the skeleton with their
   links, greeting and headers substituted in as strings.

This module holds only `batch_send`, which ties the steps together, and the
names the rest of the project imports.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone

from outlet.core.logs.context import log_context_from
from outlet.core.metrics.instruments import newsletter_messages_record
from outlet.newsletters.models import Issue
from outlet.newsletters.sending.batch import LEASE_LOST, BatchResult, MailServerDown, RateLimiter
from outlet.newsletters.sending.claims import (
    Claimed,
    OutcomeRecorder,
    Recipient,
    claimable,
    deliveries_claim,
)
from outlet.newsletters.sending.esp import esp_batch_mode, esp_batch_send
from outlet.newsletters.sending.plan import deliveries_plan, delivery_counts, next_wake_seconds
from outlet.newsletters.sending.rendering import (
    HTML_SIZE_LIMIT,
    RenderedIssue,
    greeting_for,
    html_to_text,
    issue_render,
    rich_text_for_email,
    sample_personalise,
)
from outlet.newsletters.sending.skeleton import MessageSkeleton, skeleton_for
from outlet.newsletters.sending.smtp import smtp_batch_send

__all__ = [
    "HTML_SIZE_LIMIT",
    "LEASE_LOST",
    "BatchResult",
    "Claimed",
    "MailServerDown",
    "MessageSkeleton",
    "OutcomeRecorder",
    "Recipient",
    "RenderedIssue",
    "batch_send",
    "claimable",
    "deliveries_claim",
    "deliveries_plan",
    "delivery_counts",
    "esp_batch_mode",
    "greeting_for",
    "html_to_text",
    "issue_render",
    "next_wake_seconds",
    "rich_text_for_email",
    "sample_personalise",
    "skeleton_for",
]

logger = logging.getLogger(__name__)


@log_context_from
def batch_send(*, issue_id: int, size: int | None = None) -> BatchResult:
    """Claim one batch of the issue's deliveries and send it (SMTP or ESP).

    Raises MailServerDown (after handing the unsent rows back) when the mail
    server cannot be reached, so the caller can pause the issue.
    """
    result = BatchResult()
    issue = (
        Issue.objects.select_related("newsletter")
        .defer("rendered_html", "rendered_text")  # read once per process, by skeleton_for
        .filter(pk=issue_id)
        .first()
    )
    if issue is None or issue.status != Issue.Status.SENDING:
        result.stopped = "not sending"
        return result
    token, claimed, lease_started = deliveries_claim(
        issue_id=issue_id, size=size or settings.NEWSLETTER_BATCH_SIZE, newsletter=issue.newsletter
    )
    result.claimed = len(claimed)
    if not claimed:
        return result
    Issue.objects.filter(pk=issue_id).update(heartbeat_at=timezone.now())
    skeleton = skeleton_for(issue)
    limiter = RateLimiter(settings.NEWSLETTER_RATE_LIMIT_PER_SECOND)
    esp_mode = esp_batch_mode()
    if esp_mode is not None:
        result = esp_batch_send(
            issue_id=issue_id,
            token=token,
            lease_started=lease_started,
            claimed=claimed,
            skeleton=skeleton,
            limiter=limiter,
            mode=esp_mode,
            result=result,
        )
    else:
        result = smtp_batch_send(
            issue_id=issue_id,
            token=token,
            lease_started=lease_started,
            claimed=claimed,
            skeleton=skeleton,
            limiter=limiter,
            result=result,
        )
    newsletter_messages_record(
        sent=result.sent, deferred=result.retry, bounced=result.failed, skipped=result.skipped
    )
    logger.info(
        "issue %s batch: sent=%d deferred=%d bounced=%d skipped=%d",
        issue_id, result.sent, result.retry, result.failed, result.skipped,
    )  # fmt: skip
    return result
