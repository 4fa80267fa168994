"""Writes and reads about newsletter issues: the editor's actions and the send's life.

Every status change takes the issue's row lock first (`select_for_update`),
checks where the issue stands and only then moves it, so two editors pressing
"Send now" at once, or a scheduled start racing a manual one, start one send.

    draft ──schedule──▶ scheduled ──(time comes)──▶ sending ──▶ sent
      └──────────────send now──────────────────────▶   │ ▲
                                             pause ▼   │ resume
                                                  paused
    draft, scheduled, sending, paused ──cancel──▶ cancelled

Tasks are queued with `transaction.on_commit`, so a worker never sees an issue
before the change that concerns it is committed.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import mailers
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.text import Truncator
from django.utils.translation import gettext

from outlet.core.logs.context import log_context_from
from outlet.newsletters.measuring.links import issue_links_register
from outlet.newsletters.measuring.recording import issue_stats_refresh
from outlet.newsletters.models import Delivery, Issue, IssueArticle, Newsletter
from outlet.newsletters.selectors import newsletter_recipients
from outlet.newsletters.sending import (
    HTML_SIZE_LIMIT,
    MessageSkeleton,
    RenderedIssue,
    delivery_counts,
    issue_render,
    sample_personalise,
)
from outlet.newsletters.sending.breaker import issue_bounces_judge, issue_breaker_reset

MAX_TEST_ADDRESSES = 5
SENDABLE_FROM = (Issue.Status.DRAFT, Issue.Status.SCHEDULED)

logger = logging.getLogger(__name__)


def _locked(issue: Issue) -> Issue:
    return Issue.objects.select_for_update().select_related("newsletter").get(pk=issue.pk)


def _lanes_start(issue_id: int, count: int | None = None) -> None:
    """Start the issue's lanes as a new generation, which retires every earlier lane.

    Resume and the stall check start lanes while earlier ones may still be queued
    (a lane waiting for a retry time comes back by itself); a lane of an older
    generation stops when it next runs, so there are never more than
    NEWSLETTER_SEND_LANES (a retired lane finishes at most the batch in hand).
    The row lock gives two callers at once two different generations.
    """
    from outlet.newsletters.tasks import issue_batch_send_task

    with transaction.atomic():
        issue = Issue.objects.select_for_update().only("lane_generation").get(pk=issue_id)
        generation = issue.lane_generation + 1
        Issue.objects.filter(pk=issue_id).update(lane_generation=generation)
    for lane in range(count or settings.NEWSLETTER_SEND_LANES):
        issue_batch_send_task.delay(issue_id, lane, generation)


# --- Composing and checking ------------------------------------------------------


def issue_articles_set(*, issue: Issue, article_ids: list[int]) -> None:
    """Replace the issue's articles with these, in this order."""
    with transaction.atomic():
        IssueArticle.objects.filter(issue=issue).delete()
        IssueArticle.objects.bulk_create(
            [
                IssueArticle(issue=issue, article_id=article_id, position=position)
                for position, article_id in enumerate(article_ids)
            ]
        )


def issue_problems(*, issue: Issue, rendered: RenderedIssue | None = None) -> list[str]:
    """What stops the issue from being sent, in words for an editor."""
    problems = []
    if not issue.subject.strip():
        problems.append(gettext("The issue has no subject."))
    has_text = bool(issue.intro.strip() or issue.body.strip())
    if not has_text and not issue.issue_articles.exists():
        problems.append(
            gettext("The issue has no content: add an introduction, articles or body text.")
        )
    unpublished = [
        item.article.headline
        for item in issue.issue_articles.select_related("article")
        if not item.article.is_public
    ]
    if unpublished:
        problems.append("Not published yet: " + "; ".join(unpublished) + ".")
    if not newsletter_recipients(issue.newsletter, issue.segment).exists():
        problems.append(
            gettext("No active subscriber of this newsletter is in the chosen segment.")
        )
    if rendered is not None and len(rendered.html.encode("utf-8")) > HTML_SIZE_LIMIT:
        problems.append(
            f"The email is {len(rendered.html.encode('utf-8')) // 1024} KB; "
            "Gmail clips messages over 100 KB. Remove an article or shorten the text."
        )
    return problems


def _check_sendable(issue: Issue) -> RenderedIssue:
    if issue.status not in SENDABLE_FROM:
        raise ValidationError(
            f"This issue is {issue.get_status_display().lower()}; it cannot be sent again."
        )
    rendered = issue_render(issue=issue)
    problems = issue_problems(issue=issue, rendered=rendered)
    if problems:
        raise ValidationError(problems)
    return rendered


# --- The editor's actions --------------------------------------------------------


@log_context_from
def issue_send_now(*, issue: Issue) -> Issue:
    """Freeze the rendered issue, mark it sending and queue the plan. Refused twice."""
    with transaction.atomic():
        issue = _locked(issue)
        rendered = _check_sendable(issue)
        now = timezone.now()
        issue.rendered_html = rendered.html
        issue.rendered_text = rendered.text
        issue_links_register(issue=issue, html=rendered.html)
        issue.status = Issue.Status.SENDING
        issue.started_at = now
        issue.heartbeat_at = now
        issue.pause_reason = ""
        issue.save(
            update_fields=[
                "rendered_html",
                "rendered_text",
                "status",
                "started_at",
                "heartbeat_at",
                "pause_reason",
                "updated_at",
            ]
        )
        from outlet.newsletters.tasks import issue_plan_task

        issue_id = issue.pk
        transaction.on_commit(lambda: issue_plan_task.delay(issue_id))
    return issue


def issue_schedule(*, issue: Issue, send_at: datetime) -> Issue:
    with transaction.atomic():
        issue = _locked(issue)
        if send_at <= timezone.now():
            raise ValidationError(gettext("Choose a time in the future, or use “Send now”."))
        _check_sendable(issue)
        issue.status = Issue.Status.SCHEDULED
        issue.scheduled_at = send_at
        issue.save(update_fields=["status", "scheduled_at", "updated_at"])
    return issue


def issue_unschedule(*, issue: Issue) -> Issue:
    with transaction.atomic():
        issue = _locked(issue)
        if issue.status != Issue.Status.SCHEDULED:
            raise ValidationError(gettext("Only a scheduled issue can be unscheduled."))
        issue.status = Issue.Status.DRAFT
        issue.save(update_fields=["status", "updated_at"])
    return issue


@log_context_from
def issue_pause(*, issue: Issue, reason: str = "", retry_after: int | None = None) -> Issue:
    """Stop handing out batches; batches in flight stop at their next check.

    With `retry_after` (seconds) the pause is the engine's own (mail server
    down) and the tick resumes the send by itself once the server answers.
    """
    with transaction.atomic():
        issue = _locked(issue)
        if issue.status != Issue.Status.SENDING:
            raise ValidationError(gettext("Only a sending issue can be paused."))
        issue.status = Issue.Status.PAUSED
        issue.pause_reason = (reason or "Paused by an editor.")[:300]
        issue.auto_resume_at = (
            timezone.now() + timedelta(seconds=retry_after) if retry_after is not None else None
        )
        issue.save(update_fields=["status", "pause_reason", "auto_resume_at", "updated_at"])
    return issue


def issue_resume(*, issue: Issue, auto_due: datetime | None = None) -> Issue:
    """Send on. With `auto_due` (beat's auto-resume) only if, under the row lock, the
    issue is still paused with an auto-resume due by then: an editor or a takedown may
    have changed it since beat read it, and their word stands."""
    with transaction.atomic():
        issue = _locked(issue)
        if auto_due is not None and (
            issue.status != Issue.Status.PAUSED
            or issue.auto_resume_at is None
            or issue.auto_resume_at > auto_due
        ):
            return issue
        if issue.status != Issue.Status.PAUSED:
            raise ValidationError(gettext("Only a paused issue can be resumed."))
        issue.status = Issue.Status.SENDING
        issue.pause_reason = ""
        issue.auto_resume_at = None
        issue.heartbeat_at = timezone.now()
        reset = issue_breaker_reset(issue=issue)
        issue.save(
            update_fields=[
                "status", "pause_reason", "auto_resume_at", "heartbeat_at", "updated_at", *reset
            ]
        )  # fmt: skip
        issue_id = issue.pk
        if issue.planned_at is None:
            from outlet.newsletters.tasks import issue_plan_task

            transaction.on_commit(lambda: issue_plan_task.delay(issue_id))
        else:
            transaction.on_commit(lambda: _lanes_start(issue_id))
    return issue


def issues_pause_for_takedown(*, articles: list[Any], **_: Any) -> int:
    """Receiver of `articles_taken_down`: an issue still mailing one of these articles
    (its text was frozen when sending started) pauses for the editor and says why;
    one paused already no longer resumes by itself. How many issues it stopped."""
    if not articles:
        return 0
    headlines = {article.pk: article.headline for article in articles}
    stopped = 0
    carrying = IssueArticle.objects.filter(article_id__in=list(headlines))
    for issue in Issue.objects.select_for_update().filter(
        status__in=[Issue.Status.SENDING, Issue.Status.PAUSED],
        pk__in=carrying.values("issue_id"),
    ):
        article_id = carrying.filter(issue=issue).values_list("article_id", flat=True).first()
        headline = Truncator(headlines[article_id]).chars(100)
        issue.status = Issue.Status.PAUSED
        issue.auto_resume_at = None
        issue.pause_reason = (
            f"“{headline}” in this issue was taken down from the site. Nothing more is "
            "sent: cancel the issue, or resume to send the rest as it was frozen, "
            "that article included."
        )[:300]
        issue.save(update_fields=["status", "pause_reason", "auto_resume_at", "updated_at"])
        stopped += 1
    return stopped


def issue_cancel(*, issue: Issue) -> Issue:
    """Stop for good. Deliveries not yet sent stay pending, as a record of who missed it."""
    with transaction.atomic():
        issue = _locked(issue)
        if issue.status in (Issue.Status.SENT, Issue.Status.CANCELLED):
            raise ValidationError(f"This issue is already {issue.get_status_display().lower()}.")
        issue.status = Issue.Status.CANCELLED
        issue.save(update_fields=["status", "updated_at"])
        # The bounces of the window it stopped in are judged now, not never.
        issue_bounces_judge(issue_id=issue.pk, final=True)
    return issue


def issue_test_addresses_parse(raw: str) -> list[str]:
    """Split and validate a few addresses; a malformed one is refused by name."""
    addresses = [part.strip() for part in raw.replace(";", ",").replace("\n", ",").split(",")]
    addresses = [address for address in addresses if address]
    if not addresses:
        raise ValidationError(gettext("Enter at least one address for the test."))
    if len(addresses) > MAX_TEST_ADDRESSES:
        raise ValidationError(
            gettext("Send a test to at most %(count)s addresses.") % {"count": MAX_TEST_ADDRESSES}
        )
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError(f"“{address}” is not a valid email address.") from None
    return addresses


def issue_test_send(*, issue: Issue, addresses: str) -> list[str]:
    """Queue a test copy (subject marked [Test]) to a few addresses; returns them."""
    parsed = issue_test_addresses_parse(addresses)
    from outlet.newsletters.tasks import issue_test_send_task

    issue_id = issue.pk
    request_id = uuid.uuid4().hex
    transaction.on_commit(lambda: issue_test_send_task.delay(issue_id, parsed, request_id))
    return parsed


def issue_test_message(*, issue: Issue, to: list[str]):
    """The test copy itself: the current draft, rendered now, with sample links."""
    from django.core.mail import EmailMultiAlternatives

    rendered = issue_render(issue=issue)
    skeleton = MessageSkeleton.build(issue=issue)
    message = EmailMultiAlternatives(
        subject=f"[Test] {issue.subject}",
        body=sample_personalise(rendered.text, html=False),
        from_email=skeleton.from_header,
        to=to,
        reply_to=[skeleton.reply_to],
        headers={"List-Id": skeleton.list_id, "X-Outlet-Test": "yes"},
    )
    message.attach_alternative(sample_personalise(rendered.html, html=True), "text/html")
    return message


# --- The engine's own steps ------------------------------------------------------


@log_context_from
def issue_plan(*, issue: Issue) -> int:
    """Create the deliveries (safe to repeat) and start the lanes after the first chunk."""
    from outlet.newsletters.sending import deliveries_plan

    started = False

    def start() -> None:
        nonlocal started
        started = True
        _lanes_start(issue.pk)

    # Run in-process (task_always_eager: tests, a broker-less setup), lanes started by
    # the first chunk would run inside it, find the plan unfinished and wait for it by
    # re-queuing themselves, which runs them again at once: unbounded recursion. There
    # the lanes start once the plan is complete.
    from outlet.celery import app

    eager = bool(app.conf.task_always_eager)
    total = deliveries_plan(issue=issue, on_first_chunk=None if eager else start)
    if eager and total:
        start()
    if not started:
        issue_sending_check(issue_id=issue.pk)
    return total


def issue_sending_check(*, issue_id: int) -> bool:
    """Mark the issue sent once it is planned and no row is pending or leased."""
    with transaction.atomic():
        issue = Issue.objects.select_for_update().filter(pk=issue_id).first()
        if issue is None or issue.status != Issue.Status.SENDING or issue.planned_at is None:
            return False
        if Delivery.objects.filter(
            issue_id=issue_id, status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING]
        ).exists():
            return False
        if issue_bounces_judge(issue_id=issue_id, final=True):
            return False  # the breaker tripped on the last window: paused for the editor
        issue.status = Issue.Status.SENT
        issue.sent_at = timezone.now()
        issue.save(update_fields=["status", "sent_at", "updated_at"])
        # The report's sent and delivered figures, counted once the last row is final.
        issue_stats_refresh(issue_id=issue_id)
    return True


def mail_server_available() -> bool:
    """Does the configured mail server or ESP answer? An anymail backend opens no
    connection of its own, so its API is asked (`esp_api_answers`)."""
    from outlet.newsletters.sending.esp import esp_api_answers

    connection = mailers.default
    answers = esp_api_answers(connection)
    if answers is not None:
        return answers
    try:
        connection.open()
    except OSError:
        return False
    connection.close()
    return True


def issues_tick(*, now: datetime | None = None) -> dict[str, int]:
    """Beat's round: start due scheduled issues, revive stalled sends, resume after an
    outage, and show imports whose run died as failed.

    A send is stalled when no batch has touched it for a lease period (its
    workers died with their tasks); new lanes then pick up its expired leases.
    """
    now = now or timezone.now()
    done = {"started": 0, "revived": 0, "resumed": 0}
    for issue in Issue.objects.filter(status=Issue.Status.SCHEDULED, scheduled_at__lte=now):
        try:
            issue_send_now(issue=issue)
            done["started"] += 1
        except ValidationError as exc:
            Issue.objects.filter(pk=issue.pk, status=Issue.Status.SCHEDULED).update(
                status=Issue.Status.DRAFT,
                pause_reason=("Not sent: " + " ".join(exc.messages))[:300],
            )
    stalled_before = now - timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS)
    # No heartbeat at all: sending since before heartbeats were recorded.
    stalled = Q(heartbeat_at__lt=stalled_before) | Q(heartbeat_at__isnull=True)
    for issue_id in Issue.objects.filter(stalled, status=Issue.Status.SENDING).values_list(
        "pk", flat=True
    ):
        if issue_sending_check(issue_id=issue_id):
            continue
        if Issue.objects.filter(stalled, pk=issue_id).update(heartbeat_at=now):
            if Issue.objects.filter(pk=issue_id, planned_at__isnull=True).exists():
                from outlet.newsletters.tasks import issue_plan_task

                issue_plan_task.delay(issue_id)
            else:
                _lanes_start(issue_id)
            done["revived"] += 1
    from outlet.newsletters.audience.importing import subscriber_imports_stalled_fail

    done["imports_failed"] = subscriber_imports_stalled_fail(now=now)
    due = Issue.objects.filter(status=Issue.Status.PAUSED, auto_resume_at__lte=now)
    if due.exists():
        if mail_server_available():
            for issue in due:
                if issue_resume(issue=issue, auto_due=now).status == Issue.Status.SENDING:
                    done["resumed"] += 1
        else:
            due.update(
                auto_resume_at=now + timedelta(seconds=settings.NEWSLETTER_SMTP_DOWN_RETRY_SECONDS)
            )
    if any(done.values()):  # an idle tick is said at DEBUG only (core.log_filters)
        logger.info("issues tick: %s", " ".join(f"{k}={v}" for k, v in done.items() if v))
    return done


# --- Reads for editors ------------------------------------------------------------


@dataclass(frozen=True)
class IssueProgress:
    status: str
    status_label: str
    planned: int
    sent: int
    failed: int
    suppressed: int
    remaining: int
    rate_per_minute: float
    eta_seconds: int | None
    pause_reason: str

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def issue_progress(*, issue: Issue) -> IssueProgress:
    """Counts for the admin's progress panel; rate is the average since the start."""
    counts = delivery_counts(issue=issue)
    done = counts["sent"] + counts["failed"] + counts["skipped"]
    remaining = counts["pending"] + counts["sending"]
    planned = sum(counts.values())
    rate = 0.0
    eta = None
    if issue.started_at and done:
        end = issue.sent_at or timezone.now()
        elapsed = max(1.0, (end - issue.started_at).total_seconds())
        rate = done / elapsed * 60
        if remaining and issue.status == Issue.Status.SENDING:
            eta = int(remaining / (done / elapsed))
    return IssueProgress(
        status=issue.status,
        status_label=issue.get_status_display(),
        planned=planned,
        sent=counts["sent"],
        failed=counts["failed"],
        suppressed=counts["skipped"],
        remaining=remaining,
        rate_per_minute=round(rate, 1),
        eta_seconds=eta,
        pause_reason=issue.pause_reason,
    )


def issues_archived(*, newsletter: Newsletter):
    """Sent issues of a newsletter, newest first: the public archive."""
    return Issue.objects.filter(newsletter=newsletter, status=Issue.Status.SENT).order_by(
        "-sent_at"
    )
