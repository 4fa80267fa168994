"""Bounces through our own relay, where the relay accepting a copy says nothing about the
reader's mailbox: what comes back by mail counts toward the soft-bounce limit across
issues and toward the bounce-rate breaker; tokens age out; a forged message keeps nothing
of its content; two pollers never take the same file."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.utils import timezone

from outlet.core.addresses import email_digest
from outlet.newsletters.bounces import addresses, mailbox
from outlet.newsletters.bounces.addresses import delivery_return_path
from outlet.newsletters.bounces.intake import bounce_message_process
from outlet.newsletters.bounces.models import BounceMessage
from outlet.newsletters.issues import issue_plan, issue_send_now
from outlet.newsletters.models import Delivery, HeldBounce, Issue, Subscriber, Suppression
from outlet.newsletters.sending import batch_send
from outlet.newsletters.sending.breaker import issue_held_bounces_confirm
from tests.factories import IssueFactory, SubscriberFactory
from tests.newsletters.smtp_sinks import RefusingSmtpSink

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"


@pytest.fixture(autouse=True)
def _own_relay(settings):
    settings.BOUNCE_DOMAIN = "bounces.outlet.test"
    settings.NEWSLETTER_SOFT_BOUNCE_LIMIT = 3
    settings.EMAIL_BACKEND = "outlet.core.smtp_backend.EmailBackend"
    sink = RefusingSmtpSink()
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    yield sink
    sink.stop()


def send(newsletter) -> Issue:
    issue = IssueFactory(newsletter=newsletter)
    issue_send_now(issue=issue)
    issue.refresh_from_db()
    issue_plan(issue=issue)
    batch_send(issue_id=issue.pk)
    return issue


def returned(name: str, delivery: Delivery) -> str:
    email = delivery.subscriber.email
    raw = (FIXTURES / name).read_text()
    raw = raw.replace("{recipient}", email).replace(
        "{return_path}", delivery_return_path(delivery_id=delivery.pk, email=email)
    )
    return bounce_message_process(raw=raw.encode(), source=BounceMessage.Source.PIPE).outcome


def delivery_of(issue: Issue, subscriber) -> Delivery:
    return Delivery.objects.select_related("subscriber").get(issue=issue, subscriber=subscriber)


# --- Soft bounces by mail --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_mailbox_full_by_mail_three_issues_in_a_row_suppresses_the_reader(daily):
    full = SubscriberFactory(email="full@example.com", newsletters=[daily])
    SubscriberFactory.create_batch(2, newsletters=[daily])

    for _ in range(3):
        issue = send(daily)  # the relay accepts every copy: that is not a delivery
        assert returned("dsn-4.2.2-mailbox-full.eml", delivery_of(issue, full)) == "soft"

    assert Suppression.objects.get(email_hash=email_digest(full.email)).reason == (
        Suppression.Reason.SOFT_BOUNCES
    )


@pytest.mark.django_db(transaction=True)
def test_a_later_copy_that_did_not_come_back_ends_the_run_of_soft_bounces(daily):
    full = SubscriberFactory(email="full@example.com", newsletters=[daily])

    first = send(daily)
    returned("dsn-4.2.2-mailbox-full.eml", delivery_of(first, full))
    second = send(daily)
    returned("dsn-4.2.2-mailbox-full.eml", delivery_of(second, full))
    send(daily)  # this one was delivered: nothing came back
    fourth = send(daily)
    returned("dsn-4.2.2-mailbox-full.eml", delivery_of(fourth, full))

    full.refresh_from_db()
    assert full.soft_bounce_count == 1
    assert full.status == Subscriber.Status.ACTIVE


# --- The bounce-rate breaker -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_hard_bounces_by_mail_beyond_the_rate_trip_the_breaker_instead_of_the_list(daily, settings):
    settings.NEWSLETTER_BOUNCE_BREAKER_RATE = 0.1
    readers = SubscriberFactory.create_batch(40, newsletters=[daily])
    issue = send(daily)
    assert Delivery.objects.filter(issue=issue, status=Delivery.Status.SENT).count() == 40

    # The relay's upstream refused everyone (a broken route): 20 DSNs come back.
    for reader in readers[:20]:
        assert returned("dsn-5.1.1-after-acceptance.eml", delivery_of(issue, reader)) == "hard"

    issue.refresh_from_db()
    assert issue.bounce_breaker_tripped
    assert "bounce breaker" in issue.pause_reason
    # At most the rate's share went before it tripped; the rest wait for the editor.
    assert Suppression.objects.count() <= 0.1 * 40
    held = HeldBounce.objects.filter(issue=issue, for_editor=True).count()
    assert held + Suppression.objects.count() == 20
    assert issue_held_bounces_confirm(issue=issue) == held
    assert Suppression.objects.count() == 20


@pytest.mark.django_db(transaction=True)
def test_a_few_hard_bounces_by_mail_are_suppressed_at_once(daily, settings):
    settings.NEWSLETTER_BOUNCE_BREAKER_RATE = 0.1
    readers = SubscriberFactory.create_batch(40, newsletters=[daily])
    issue = send(daily)

    for reader in readers[:2]:
        returned("dsn-5.1.1-after-acceptance.eml", delivery_of(issue, reader))

    issue.refresh_from_db()
    assert not issue.bounce_breaker_tripped
    assert Suppression.objects.count() == 2
    assert not HeldBounce.objects.exists()


# --- Tokens age out --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("age_days", "outcome"), [(59, "hard"), (61, "forged")])
def test_a_token_older_than_the_limit_suppresses_nobody(daily, settings, age_days, outcome):
    settings.BOUNCE_TOKEN_MAX_AGE_DAYS = 60
    reader = SubscriberFactory(email="gone@example.com", newsletters=[daily])
    issue = send(daily)
    delivery = delivery_of(issue, reader)
    minted = timezone.now() - timedelta(days=age_days)
    with mock.patch.object(addresses, "_now", return_value=minted):
        return_path = delivery_return_path(delivery_id=delivery.pk, email=reader.email)
    raw = (FIXTURES / "dsn-5.1.1-after-acceptance.eml").read_text()
    raw = raw.replace("{recipient}", reader.email).replace("{return_path}", return_path)

    processed = bounce_message_process(raw=raw.encode(), source=BounceMessage.Source.PIPE)

    assert processed.outcome == outcome
    assert Suppression.objects.exists() == (outcome == "hard")
    if outcome == "forged":
        assert "expired" in BounceMessage.objects.get().detail


def test_a_token_changed_to_look_younger_is_not_ours(settings):
    settings.BOUNCE_DOMAIN = "bounces.outlet.test"
    address = delivery_return_path(delivery_id=7, email="a@example.org")
    token = addresses.token_from_address(address)
    assert token is not None and token.signed_for("a@example.org")
    younger = re.sub(r"-([0-9a-f]+)-", lambda m: f"-{int(m[1], 16) + 1:x}-", address, count=1)
    changed = addresses.token_from_address(younger)
    assert changed is not None and not changed.signed_for("a@example.org")


# --- A forged message keeps nothing of its content --------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_forged_message_keeps_metadata_only(daily):
    attacker = SubscriberFactory(email="attacker@example.com", newsletters=[daily])
    SubscriberFactory(email="victim@example.com", newsletters=[daily])
    issue = send(daily)
    own = delivery_return_path(
        delivery_id=delivery_of(issue, attacker).pk, email="attacker@example.com"
    )
    raw = (FIXTURES / "dsn-5.1.1-after-acceptance.eml").read_text()
    raw = raw.replace("{recipient}", "victim@example.com").replace("{return_path}", own)
    raw = raw.replace("User unknown", "User unknown CALL-ME-AT-555-0100")

    processed = bounce_message_process(raw=raw.encode(), source=BounceMessage.Source.PIPE)

    assert processed.outcome == "forged"
    row = BounceMessage.objects.get()
    assert bytes(row.raw) == b""
    assert "CALL-ME" not in row.detail and "unknown" not in row.detail.lower()
    assert row.detail.startswith("token not signed for the reported address")


# --- Two pollers, one Maildir ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_pollers_at_once_take_each_message_in_once(daily, tmp_path, monkeypatch):
    root = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    vacation = (FIXTURES / "vacation-reply.eml").read_text()
    for n in range(3):
        raw = vacation.replace("{recipient}", f"r{n}@example.com").replace(
            "{return_path}", f"bounces+x{n}@bounces.outlet.test"
        )
        (root / "new" / f"{n}.msg").write_text(raw)
    real = mailbox.bounce_message_process
    handed: list[bytes] = []
    nested: list[int] = []
    started: list[bool] = []

    def one_poller_midway(*, raw, source):
        handed.append(raw)
        if not started:  # the second poller runs while the first holds its first message
            started.append(True)
            nested.append(sum(mailbox.maildir_poll(path=root, keep=True).values()))
        return real(raw=raw, source=source)

    monkeypatch.setattr(mailbox, "bounce_message_process", one_poller_midway)

    first = sum(mailbox.maildir_poll(path=root, keep=True).values())

    assert len(handed) == 3  # each file handed to intake once, by one poller or the other
    assert first + nested[0] == 3
    assert sorted(p.name for p in (root / "cur").iterdir()) == [
        "0.msg:2,S",
        "1.msg:2,S",
        "2.msg:2,S",
    ]


@pytest.mark.django_db(transaction=True)
def test_a_claim_left_by_a_killed_poller_is_taken_over_later(daily, tmp_path, settings):
    root = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    raw = (FIXTURES / "vacation-reply.eml").read_text()
    claimed = root / mailbox.CLAIM_FOLDER / "cur"
    claimed.mkdir(parents=True)
    (claimed / "0.msg").write_text(raw)  # a poller claimed it, then died

    assert not mailbox.maildir_poll(path=root, keep=True)  # a fresh claim: not yet
    settings.BOUNCE_CLAIM_SECONDS = 0
    assert dict(mailbox.maildir_poll(path=root, keep=True)) == {"ignored": 1}
    assert [p.name for p in (root / "cur").iterdir()] == ["0.msg:2,S"]
