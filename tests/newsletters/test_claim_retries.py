"""Rows waiting for a next attempt are claimed as soon as they are due, beside the rest
of the list, not held behind the claim frontier (`claims._claimed_up_to`) until the
end of the send, where only refused addresses would be left to look like a server
refusing everyone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F

from outlet.newsletters.issues import issue_send_now
from outlet.newsletters.models import Delivery, Issue
from outlet.newsletters.sending import (
    MailServerDown,
    batch_send,
    claims,
    deliveries_plan,
)
from tests.factories import IssueFactory, SubscriberFactory
from tests.newsletters.smtp_sinks import RefusingSmtpSink

pytestmark = pytest.mark.django_db


@pytest.fixture
def frontier(monkeypatch):
    """A fresh frontier, as in a worker process that just started."""
    fresh: dict[int, int] = {}
    monkeypatch.setattr(claims, "_claimed_up_to", fresh)
    return fresh


@pytest.fixture
def smtp(settings):
    sink = RefusingSmtpSink()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    yield sink
    sink.stop()


def start(issue: Issue) -> Issue:
    issue_send_now(issue=issue)
    issue.refresh_from_db()
    deliveries_plan(issue=issue)  # no lanes: the test sends the batches
    return issue


def minutes_pass(issue: Issue, seconds: int) -> None:
    """Time moves on for the rows backing off (each batch stands for `seconds`)."""
    Delivery.objects.filter(issue=issue, next_attempt_at__isnull=False).update(
        next_attempt_at=F("next_attempt_at") - timedelta(seconds=seconds)
    )


def send_until_done(issue: Issue, *, size: int, step: int, rounds: int = 80) -> list[str]:
    """Batches as the lanes send them, `step` seconds apart, until no row is left; the
    pauses they asked for (each resumed at once, as beat or an editor would)."""
    pauses = []
    for _ in range(rounds):
        try:
            batch_send(issue_id=issue.pk, size=size)
        except MailServerDown as exc:
            pauses.append(str(exc))
        minutes_pass(issue, step)
        if not Delivery.objects.filter(
            issue=issue, status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING]
        ).exists():
            return pauses
    raise AssertionError(f"rows left after {rounds} batches")


# --- Retries claimed when due, not piled up at the tail of the send -----------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "reply",
    [
        "554 5.7.1 Relay access denied",  # MailServerRefusing: an editor must resume
        "451 4.7.1 Greylisted, try again later",  # MailServerDown: beat resumes it
    ],
)
def test_retries_held_behind_the_frontier_do_not_pile_up_into_a_false_pause(
    smtp, daily, settings, frontier, reply
):
    """One reader in five refused, each refusal followed by an acceptance, so each is
    judged the reader's and retried (5.7.1: a relay denying outside domains, policy,
    never the reader's fault; 451: greylisting). Before the frontier a retry come due
    went out with the next batch, again beside accepted messages. With it every retry
    waits until this process has claimed every row ahead, the whole list, and then
    they all come due at once: SERVER_FAULT_REFUSALS refusals in a row, and the issue
    pauses as if the server refused everyone, once per five such readers (a row that
    tripped a pause does not count again, the next five do). For 5.7.1 each pause
    waits for an editor ("correct the server ... then resume"); for 451 each costs an
    outage wait before beat resumes. 12 such readers in 60: 2 pauses; in a 1M list
    with 0.1 % of them, 200."""
    settings.NEWSLETTER_RETRY_SECONDS = 60
    for number in range(60):
        domain = "example.com" if number % 5 == 0 else "newsroom.test"
        SubscriberFactory(email=f"r{number}@{domain}", newsletters=[daily])
    smtp.rcpt_reply = lambda address: None if address.endswith("@newsroom.test") else reply
    issue = start(IssueFactory(newsletter=daily))

    pauses = send_until_done(issue, size=5, step=60)

    assert pauses == [], f"{len(pauses)} pauses: {pauses[:1]}"
    assert len(smtp.accepted) == 48  # every reader at the newsroom
