"""Adversarial review of mailed bounces (issue 26): a DSN sent again (replayed, or sent
twice by a remote server) acts once per delivery; the breaker does not pause an issue
again for bounces the editor already decided; transactional soft bounces do not pile up
across months; a poller whose claim another finished does not crash."""

from __future__ import annotations

import pytest

from outlet.core.addresses import email_digest
from outlet.newsletters.bounces import mailbox
from outlet.newsletters.bounces.addresses import delivery_return_path, message_return_path
from outlet.newsletters.bounces.intake import bounce_message_process
from outlet.newsletters.bounces.models import BounceMessage
from outlet.newsletters.issues import issue_resume
from outlet.newsletters.models import Delivery, Issue, Subscriber, Suppression
from outlet.newsletters.sending.breaker import issue_held_bounces_confirm
from tests.factories import SubscriberFactory
from tests.newsletters.test_bounce_relay import (  # noqa: F401  (_own_relay: autouse fixture)
    FIXTURES,
    _own_relay,
    delivery_of,
    send,
)

HARD, SOFT = "dsn-5.1.1-after-acceptance.eml", "dsn-4.2.2-mailbox-full.eml"


def returned(name: str, email: str, return_path: str, copy: int = 0) -> str:
    """The DSN `name` about `email`; `copy` > 0 gives it another Message-Id (the same
    bounce sent again, by a remote server or by whoever holds the return path)."""
    raw = (FIXTURES / name).read_text()
    raw = raw.replace("{recipient}", email).replace("{return_path}", return_path)
    if copy:
        raw = raw.replace("Message-Id: <", f"Message-Id: <again{copy}.", 1)
    return bounce_message_process(raw=raw.encode(), source=BounceMessage.Source.PIPE).outcome


def about(name: str, delivery: Delivery, copy: int = 0) -> str:
    email = delivery.subscriber.email
    return returned(name, email, delivery_return_path(delivery_id=delivery.pk, email=email), copy)


@pytest.mark.django_db(transaction=True)
def test_one_readers_bounce_sent_again_and_again_does_not_trip_the_breaker(daily, settings):
    settings.NEWSLETTER_BOUNCE_BREAKER_RATE = 0.1
    reader = SubscriberFactory(email="gone@example.com", newsletters=[daily])
    SubscriberFactory.create_batch(39, newsletters=[daily])
    issue = send(daily)
    delivery = delivery_of(issue, reader)

    for copy in range(8):  # one DSN, its Message-Id changed each time
        assert about(HARD, delivery, copy) == "hard"

    issue.refresh_from_db()
    assert not issue.bounce_breaker_tripped
    assert issue.status != Issue.Status.PAUSED
    assert Suppression.objects.filter(email_hash=email_digest(reader.email)).exists()


@pytest.mark.django_db(transaction=True)
def test_one_soft_bounce_sent_again_counts_once(daily):
    reader = SubscriberFactory(email="full@example.com", newsletters=[daily])
    delivery = delivery_of(send(daily), reader)

    for copy in range(3):
        assert about(SOFT, delivery, copy) == "soft"

    reader.refresh_from_db()
    assert reader.soft_bounce_count == 1
    assert reader.status == Subscriber.Status.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_transactional_soft_bounces_months_apart_do_not_suppress(daily):
    """Mailbox full once in January (a newsletter copy), once in June and once in December
    (a receipt each time), every newsletter copy between them delivered: no run of three."""
    reader = SubscriberFactory(email="full@example.com", newsletters=[daily])
    SubscriberFactory(newsletters=[daily])
    about(SOFT, delivery_of(send(daily), reader))
    for _ in range(2):
        send(daily)  # delivered: nothing came back
        assert returned(SOFT, reader.email, message_return_path(email=reader.email)) == "soft"

    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ACTIVE
    assert not Suppression.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_after_the_editor_resumes_one_late_bounce_does_not_pause_the_issue_again(daily, settings):
    settings.NEWSLETTER_BOUNCE_BREAKER_RATE = 0.1
    readers = SubscriberFactory.create_batch(40, newsletters=[daily])
    issue = send(daily)
    # Mid-send (as when the relay's upstream broke halfway): the issue is still sending.
    Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.SENDING)
    for reader in readers[:20]:
        about(HARD, delivery_of(issue, reader))
    issue.refresh_from_db()
    assert issue.bounce_breaker_tripped and issue.status == Issue.Status.PAUSED

    issue_held_bounces_confirm(issue=issue)  # the editor: they were real
    issue_resume(issue=issue)
    assert about(HARD, delivery_of(issue, readers[20])) == "hard"  # one more dead address

    issue.refresh_from_db()
    assert not issue.bounce_breaker_tripped
    assert issue.status == Issue.Status.SENDING
    assert Suppression.objects.filter(email_hash=email_digest(readers[20].email)).exists()


@pytest.mark.django_db(transaction=True)
def test_a_poller_whose_claim_another_poller_finished_goes_on(daily, tmp_path, monkeypatch):
    """A claim released (BOUNCE_CLAIM_SECONDS passed) while its poller still works on it:
    the other poller takes it over and finishes it first. The first one must not crash,
    nor leave the rest of the Maildir untaken."""
    root = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    vacation = (FIXTURES / "vacation-reply.eml").read_text()
    for n in range(2):
        raw = vacation.replace("{recipient}", f"r{n}@example.com")
        (root / "new" / f"{n}.msg").write_text(raw.replace("{return_path}", f"x{n}@x.test"))
    real = mailbox.bounce_message_process

    def finished_by_another(*, raw, source):
        processed = real(raw=raw, source=source)
        claimed = root / mailbox.CLAIM_FOLDER / "cur" / "0.msg"
        if claimed.exists():  # the other poller moves it to cur/, done
            claimed.rename(root / "cur" / "0.msg:2,S")
        return processed

    monkeypatch.setattr(mailbox, "bounce_message_process", finished_by_another)

    assert sum(mailbox.maildir_poll(path=root, keep=True).values()) == 2
    assert sorted(p.name for p in (root / "cur").iterdir()) == ["0.msg:2,S", "1.msg:2,S"]
    assert BounceMessage.objects.count() == 2


@pytest.mark.parametrize(
    ("said", "outcome"),
    [
        ("Sorry, no mailbox here by that name. (#5.1.1)", "hard"),
        ("Remote host said: 554 5.7.1 Message rejected: content looks like spam", "policy"),
        ("Remote host said: 552 5.3.4 Message size exceeds fixed limit", "policy"),
        ("Remote host said: 552 5.2.2 Mailbox full", "soft"),
    ],
)
def test_a_bounce_in_no_standard_form_is_judged_by_its_status_code_like_a_dsn(
    settings, said, outcome
):
    """A qmail-style bounce of one issue refused as spam (or too big) says nothing about
    the reader's mailbox: a DSN saying so is POLICY, and so must this be (not HARD)."""
    from outlet.newsletters.bounces.reading import bounce_read

    settings.BOUNCE_DOMAIN = "bounces.outlet.test"
    raw = (FIXTURES / "qmail-bounce.eml").read_text()
    raw = raw.replace("Sorry, no mailbox here by that name. (#5.1.1)", said)
    raw = raw.replace("{recipient}", "a@example.com").replace(
        "{return_path}", "bounces+x@bounces.outlet.test"
    )

    assert bounce_read(raw.encode()).outcome == outcome


@pytest.mark.django_db(transaction=True)
def test_a_relay_breaking_late_in_a_long_issue_trips_within_a_window(daily, settings):
    """The breaker judges windows, not the whole issue, so that a relay breaking halfway
    through a long send trips within a window. By mail too: the upstream breaks after the
    first 100 of 120 copies, and the 20 after it all come back as unknown mailboxes."""
    settings.NEWSLETTER_BOUNCE_BREAKER_RATE = 0.1
    settings.NEWSLETTER_BOUNCE_BREAKER_SAMPLE = 20
    SubscriberFactory.create_batch(120, newsletters=[daily])
    issue = send(daily)
    late = Delivery.objects.filter(issue=issue).select_related("subscriber").order_by("pk")[100:]

    for delivery in late:
        assert about(HARD, delivery) == "hard"

    issue.refresh_from_db()
    assert issue.bounce_breaker_tripped
    # Fewer than MIN_BOUNCES went before it tripped, not 10 % of the whole issue (12).
    assert Suppression.objects.count() < 5


def test_a_bounce_mailbox_without_a_bounce_domain_stops_startup(tmp_path):
    """Without BOUNCE_DOMAIN no copy carries a token: every bounce polled would be refused
    as forged, and a forged message keeps nothing, so the whole mailbox would be lost."""
    from tests.core.test_settings import PRODUCTION_ENV, _manage

    result = _manage("check", **PRODUCTION_ENV, BOUNCE_MAILDIR=str(tmp_path))

    assert result.returncode != 0
    assert "BOUNCE_DOMAIN" in result.stderr and "BOUNCE_MAILDIR" in result.stderr
    assert _manage("check", **PRODUCTION_ENV, BOUNCE_DOMAIN="bounces.example.org").returncode == 0


@pytest.mark.django_db(transaction=True)
def test_bounces_held_by_mail_after_the_issue_went_out_can_be_lifted(daily, settings):
    """A relay fault found after the whole issue went out: the editor must be able to say
    the held bounces were not real (nothing to send again: the relay took every copy),
    not only confirm them."""
    from outlet.newsletters.models import HeldBounce
    from outlet.newsletters.sending.breaker import issue_held_bounces_lift

    settings.NEWSLETTER_BOUNCE_BREAKER_RATE = 0.1
    readers = SubscriberFactory.create_batch(40, newsletters=[daily])
    issue = send(daily)
    Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.SENT)
    for reader in readers[:20]:
        about(HARD, delivery_of(issue, reader))
    held = HeldBounce.objects.filter(issue=issue, for_editor=True).count()
    assert held

    assert issue_held_bounces_lift(issue=issue) == held

    assert not HeldBounce.objects.filter(issue=issue).exists()
    assert Suppression.objects.count() == 20 - held  # only those before the trip
