"""ESP transport: a batch through an anymail ESP's batch API with per-recipient merge data.

Contract: one API call per NEWSLETTER_ESP_BATCH_SIZE recipients, each call's
outcomes recorded when it returns (a dead worker can duplicate one call). A call
that fails as a whole (ESP down, request refused) is the server's fault, not the
recipients': the rows go back untouched and MailServerDown pauses the issue.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from html import escape as html_escape
from typing import Any

from django.conf import settings
from django.core.mail import mailers

from outlet.newsletters.sending.batch import (
    ESP_REFUSED,
    LEASE_LOST,
    SERVER_FAULT_REFUSALS,
    BatchResult,
    MailServerDown,
    MailServerRefusing,
    RateLimiter,
    stop_reason,
)
from outlet.newsletters.sending.claims import GAVE_UP, PAUSE_MARK, Claimed, OutcomeRecorder
from outlet.newsletters.sending.refusals import Refusals
from outlet.newsletters.sending.skeleton import MERGE_KEYS, MessageSkeleton

# --- ESP batch sending (anymail merge data) -----------------------------------------

#: anymail backends whose ESP sends a batch with on-the-fly (non-template) content and
#: per-recipient merge data, with the ESP's merge-field syntax (a `str.format` pattern
#: for a key). HTML gets pre-escaped values, so every syntax here substitutes verbatim.
#: Postmark (merge data only with stored templates), Amazon SES (likewise) and Resend
#: are not here: they keep the per-message path.
ESP_MERGE_FIELD_FORMATS: dict[str, str] = {
    "anymail.backends.mailgun.EmailBackend": "%recipient.{}%",
    "anymail.backends.sparkpost.EmailBackend": "{{{{{{{}}}}}}}",  # {{{key}}}: not escaped
    "anymail.backends.sendgrid.EmailBackend": "-{}-",  # legacy substitutions
}
#: Backends that need to be told the format (anymail builds their substitution keys).
_ESP_TELL_FORMAT = {"anymail.backends.sendgrid.EmailBackend"}

#: anymail statuses that mean the ESP took the message for this recipient. "unknown"
#: is a call the ESP accepted without saying per recipient (SparkPost's mixed result):
#: sending again would duplicate the accepted ones, and bounces arrive by webhook.
_ESP_ACCEPTED = {"sent", "queued", "unknown"}
#: A whole call refused with one of these may be one bad address among good ones.
_ADDRESS_REFUSAL_STATUSES = {400, 422}


@dataclass(frozen=True)
class EspMode:
    merge_field_format: str
    esp_extra: dict[str, Any]


_esp_modes: dict[tuple[str, str], EspMode | None] = {}


def esp_call_failed(exc: Exception) -> MailServerDown:
    """What a failed ESP API call means for the issue. A 4xx other than 429 is the
    service refusing the request itself (key, domain, sender): a setting to fix, so the
    editor resumes (MailServerRefusing); anything else (5xx, 429, unreachable) resumes
    by itself once the service answers (MailServerDown)."""
    status = getattr(exc, "status_code", None)
    if status is not None and 400 <= status < 500 and status != 429:
        return MailServerRefusing(f"The email service refused the batch: {exc}")
    return MailServerDown(f"The email service refused the batch: {exc}")


def esp_batch_mode() -> EspMode | None:
    """How to batch through the configured anymail ESP, or None for the per-message path.

    NEWSLETTER_ESP_MERGE_FIELD_FORMAT: empty picks the format from EMAIL_BACKEND
    (`ESP_MERGE_FIELD_FORMATS`), "off" never batches, anything else is the format
    (for an ESP not in the table, or anymail's test backend). Only anymail backends
    batch; Django's SMTP, locmem and console backends always send per message.
    """
    backend = settings.EMAIL_BACKEND
    configured = settings.NEWSLETTER_ESP_MERGE_FIELD_FORMAT
    key = (backend, configured)
    if key not in _esp_modes:
        _esp_modes[key] = _esp_mode_resolve(backend, configured)
    return _esp_modes[key]


def _esp_mode_resolve(backend: str, configured: str) -> EspMode | None:
    from anymail.backends.base import AnymailBaseBackend
    from django.utils.module_loading import import_string

    if configured.lower() == "off" or not issubclass(import_string(backend), AnymailBaseBackend):
        return None
    merge_format = configured or ESP_MERGE_FIELD_FORMATS.get(backend)
    if not merge_format:
        return None
    extra = {"merge_field_format": merge_format} if backend in _ESP_TELL_FORMAT else {}
    return EspMode(merge_field_format=merge_format, esp_extra=extra)


def esp_api_answers(mail_connection: Any) -> bool | None:
    """Does the ESP's API answer? Any HTTP reply below 500 counts (an unauthenticated
    probe of the API base gets 401 or 404 from a working ESP); a 5xx, a timeout or a
    refused connection does not. None for a backend without an HTTP API (SMTP, test).
    """
    api_url = getattr(mail_connection, "api_url", None)
    if not api_url:
        return None
    import requests

    try:
        response = requests.get(api_url, timeout=10)
    except requests.RequestException:
        return False
    return response.status_code < 500


def esp_batch_message(
    *, skeleton: MessageSkeleton, mode: EspMode, deliveries: list[Claimed]
) -> Any:
    """One AnymailMessage for a chunk: anymail sends each `to` address its own copy,
    with its own merge data (links, greeting), headers and metadata (the delivery id)."""
    from anymail.message import AnymailMessage

    template = skeleton.esp_template(mode.merge_field_format)
    merge_data: dict[str, dict[str, str]] = {}
    merge_headers: dict[str, dict[str, str]] = {}
    merge_metadata: dict[str, dict[str, str]] = {}
    for delivery in deliveries:
        copy = skeleton.personalise(
            delivery_id=delivery.pk, subscriber=delivery.subscriber, build_data=False
        )
        address = delivery.subscriber.email
        data: dict[str, str] = {}
        for mark, (text_key, html_key) in MERGE_KEYS.items():
            data[text_key] = copy.values[mark]
            data[html_key] = html_escape(copy.values[mark])
        merge_data[address] = data
        merge_headers[address] = {
            name: copy.headers[name]
            for name in ("Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post")
        }
        merge_metadata[address] = {"delivery_id": str(delivery.pk)}
    message = AnymailMessage(
        subject=skeleton.subject,
        body=template.text,
        from_email=skeleton.from_header,
        to=list(merge_data),
        reply_to=[skeleton.reply_to],
        headers={"List-Id": skeleton.list_id, "Precedence": "bulk"},
    )
    message.attach_alternative(template.html, "text/html")
    message.merge_data = merge_data
    message.merge_headers = merge_headers
    message.merge_metadata = merge_metadata
    message.metadata = {"issue_id": str(skeleton.issue_id)}
    if mode.esp_extra:
        message.esp_extra = dict(mode.esp_extra)
    return message


def esp_batch_send(
    *,
    issue_id: int,
    token: uuid.UUID,
    lease_started: float,
    claimed: list[Claimed],
    skeleton: MessageSkeleton,
    limiter: RateLimiter,
    mode: EspMode,
    result: BatchResult,
) -> BatchResult:
    """`batch_send` through an ESP's batch API: one call per NEWSLETTER_ESP_BATCH_SIZE
    recipients, each call's outcomes recorded as soon as it returns.

    Every recipient of a call is in flight until it returns, so a worker killed
    mid-call can duplicate at most that call's recipients. An error from the call
    itself (ESP down, refused request) sends the chunk back to retry with backoff,
    hands the rest back untouched and raises MailServerDown so the issue pauses.
    """
    from anymail.exceptions import AnymailError, AnymailRecipientsRefused

    chunk_size = max(1, settings.NEWSLETTER_ESP_BATCH_SIZE)
    with OutcomeRecorder(token, lease_started=lease_started, issue_id=issue_id) as recorder:
        recorder.skipped([d for d in claimed if not d.mailable])
        queue = [d for d in claimed if d.mailable]
        mail_connection = mailers.default
        position = 0
        refusals = Refusals(recorder)  # addresses refused alone, awaiting a verdict
        try:
            if queue:
                mail_connection.open()  # one HTTP session (kept alive) for the batch's calls
            while position < len(queue):
                taken = queue[position : position + chunk_size]
                for _ in (d for d in taken if d.mailable):
                    limiter.acquire()  # before the checks: a rate-limited wait can be long
                # The claim has just checked the status and who is mailable, unless a
                # rate-limited wait came since.
                if (position or limiter.per_second) and (
                    reason := stop_reason(
                        recorder,
                        issue_id,
                        skeleton.newsletter,
                        queue[position:],
                        held=refusals.held_deliveries(),
                    )
                ):
                    result.stopped = reason
                    break
                recorder.skipped([d for d in taken if not d.mailable])
                chunk = [d for d in taken if d.mailable]
                # A rate-limited chunk can outlast the lease: the fence comes after the wait.
                if not recorder.lease_held() and not recorder.renew(
                    [d for d in queue[position:] if d.mailable] + refusals.held_deliveries()
                ):
                    result.stopped = LEASE_LOST
                    break
                if not chunk:
                    position += len(taken)
                    continue
                message = esp_batch_message(skeleton=skeleton, mode=mode, deliveries=chunk)
                try:
                    mail_connection.send_messages([message])
                except AnymailRecipientsRefused:
                    pass  # every address refused: the statuses below say so, per recipient
                except (AnymailError, OSError) as exc:
                    if getattr(exc, "status_code", None) not in _ADDRESS_REFUSAL_STATUSES:
                        # The call failed as a whole (ESP down, 5xx, refused key): that is
                        # the service's fault, not an attempt on these recipients. They go
                        # back untouched (the `finally` below), however long it lasts.
                        raise esp_call_failed(exc) from exc
                    result.stopped = _esp_send_one_by_one(
                        issue_id=issue_id,
                        chunk=chunk,
                        later=[d for d in queue[position + len(taken) :] if d.mailable],
                        refusal=exc,
                        refusals=refusals,
                        skeleton=skeleton,
                        mode=mode,
                        mail_connection=mail_connection,
                        recorder=recorder,
                    )
                    if result.stopped:
                        break
                    position += len(taken)
                    continue
                recipients = message.anymail_status.recipients
                statuses = [recipients.get(d.subscriber.email) for d in chunk]
                fresh = [d for d in chunk if not d.tripped_pause]
                if len(fresh) >= SERVER_FAULT_REFUSALS and all(
                    outcome is not None and outcome.status in ESP_REFUSED for outcome in statuses
                ):
                    # Every address of a chunk refused (SparkPost answers so for a call
                    # it refuses): the service, not a chunk of dead addresses. The rows
                    # go back untouched and marked (as for a refusing SMTP server: when
                    # they come back they are judged one by one); the editor resumes.
                    recorder.release(chunk, paused_by="every address of a call refused")
                    raise MailServerRefusing(
                        f"The email service refused all {len(chunk)} addresses of a call "
                        f"({statuses[0].status if statuses[0] else ''}). Nobody was marked "
                        "as bounced; check the service's account and sending domain, then resume"
                    )
                position += len(taken)
                if _outcomes_record(recorder, chunk, message):
                    refusals.accepted()
        finally:
            if position < len(queue):
                recorder.release(queue[position:])
            with contextlib.suppress(Exception):
                mail_connection.close()
            refusals.finish()
            recorder.finish()
    result.counts_take(recorder.counts)
    return result


def _outcomes_record(recorder: OutcomeRecorder, chunk: list[Claimed], message: Any) -> bool:
    """Record each recipient's outcome of a call that returned; True if any was accepted."""
    from outlet.newsletters.services import subscriber_soft_bounce_record

    recipients = message.anymail_status.recipients
    statuses = [recipients.get(d.subscriber.email) for d in chunk]
    any_accepted = any(o is not None and o.status in _ESP_ACCEPTED for o in statuses)
    for delivery in chunk:
        email = delivery.subscriber.email
        outcome = recipients.get(email)
        status_name = outcome.status if outcome is not None else None
        if status_name in _ESP_ACCEPTED:
            recorder.sent(delivery)
        elif status_name in ESP_REFUSED and delivery.tripped_pause and not any_accepted:
            # It paused the issue before and still nobody in its call got
            # through: no verdict on the address yet. Retried, mark kept.
            recorder.retry_later(delivery, f"{PAUSE_MARK}ESP {status_name}")
        elif status_name in ESP_REFUSED:
            recorder.bounces.hard_bounce(recorder, delivery, f"ESP {status_name} the address")
        else:  # "failed" (or no answer for this address): try again later
            detail = f"ESP status {status_name or 'missing'}"
            if recorder.retry_later(delivery, detail) == GAVE_UP:
                subscriber_soft_bounce_record(email=email, detail=detail)
    return any_accepted


def _esp_send_one_by_one(
    *,
    issue_id: int,
    chunk: list[Claimed],
    later: list[Claimed],
    refusal: Exception,
    refusals: Refusals,
    skeleton: MessageSkeleton,
    mode: EspMode,
    mail_connection: Any,
    recorder: OutcomeRecorder,
) -> str:
    """A call refused whole with 400/422 may be one bad address among good ones
    (Mailgun: "'to' parameter is not a valid address"): send the chunk one address
    per call, so one address cannot hold back, or pause, everyone else's issue.

    Each refusal is held by `refusals` as the SMTP loop holds one: failed, unsuppressed,
    once the service takes another message; SERVER_FAULT_REFUSALS in a row mean the
    service refuses the requests (sender, domain) and the issue pauses with the rows
    untouched. Before each call the issue's status, the next reader and the lease are
    checked as between SMTP messages (`later` are the batch's rows after this chunk:
    renewals cover them). Why the batch stopped, or "".
    """
    from anymail.exceptions import AnymailError, AnymailRecipientsRefused

    for index, delivery in enumerate(chunk):
        rest = chunk[index:] + later
        if reason := stop_reason(
            recorder,
            issue_id,
            skeleton.newsletter,
            rest,
            next_only=True,
            held=refusals.held_deliveries(),
        ):
            return reason
        if not delivery.mailable:  # unsubscribed since the claim
            recorder.skipped([delivery])
            continue
        if not recorder.lease_held() and not recorder.renew(
            [d for d in rest if d.mailable] + refusals.held_deliveries()
        ):
            return LEASE_LOST
        error: Exception | None = refusal if len(chunk) == 1 else None
        if error is None:
            message = esp_batch_message(skeleton=skeleton, mode=mode, deliveries=[delivery])
            try:
                mail_connection.send_messages([message])
            except AnymailRecipientsRefused:
                pass  # its status says so
            except (AnymailError, OSError) as exc:
                if getattr(exc, "status_code", None) not in _ADDRESS_REFUSAL_STATUSES:
                    raise esp_call_failed(exc) from exc  # the caller hands the rows back
                error = exc
            if error is None:
                if _outcomes_record(recorder, [delivery], message):
                    refusals.accepted()
                continue
        refusals.call_refused(delivery, f"The email service refused this address: {error}")
    return ""
