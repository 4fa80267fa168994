"""The newsletters' mail tasks (not the sending engine's lanes): a temporary mail fault is
tried again by Celery itself (run inline here, as `apply` does: every retry, then the
fault once they are used up), and a task that mails once still mails once."""

from __future__ import annotations

import smtplib

import pytest
from django.core import mail

from outlet.core.tasks import MAIL_TASK_OPTIONS
from outlet.newsletters import tasks
from tests.factories import IssueFactory, SubscriberFactory

pytestmark = pytest.mark.django_db

MAIL_TASKS = [
    (tasks.subscriber_confirmation_send_task, 8),
    (tasks.subscriber_preferences_link_send_task, 5),
    (tasks.issue_test_send_task, 5),
]


@pytest.mark.parametrize(("task", "retries"), MAIL_TASKS)
def test_mail_tasks_are_retried_by_celery_itself_with_the_mail_backoff(task, retries):
    assert task.autoretry_for == MAIL_TASK_OPTIONS["autoretry_for"]
    assert task.retry_backoff == MAIL_TASK_OPTIONS["retry_backoff"]
    assert task.retry_backoff_max == MAIL_TASK_OPTIONS["retry_backoff_max"]
    assert task.queue == "mail" and task.acks_late and task.max_retries == retries


def test_a_confirmation_is_tried_again_and_sent_once_the_server_answers(mail_server_down):
    subscriber = SubscriberFactory(status="pending", confirmed_at=None)
    args = (subscriber.pk, "2026-01-01T00:00:00")

    result = tasks.subscriber_confirmation_send_task.apply(args=args)

    assert mail_server_down.tries == 1 + 8
    assert isinstance(result.result, smtplib.SMTPServerDisconnected)
    # Each failed try gave its claim back, so the request is still mailed (once) later.
    mail_server_down.up()
    tasks.subscriber_confirmation_send_task.apply(args=args)
    tasks.subscriber_confirmation_send_task.apply(args=args)
    assert [m.to for m in mail.outbox] == [[subscriber.email]]


def test_a_preferences_link_is_tried_again_on_a_temporary_mail_fault(mail_server_down):
    subscriber = SubscriberFactory()

    result = tasks.subscriber_preferences_link_send_task.apply(args=(subscriber.pk,))

    assert mail_server_down.tries == 1 + 5
    assert isinstance(result.result, smtplib.SMTPServerDisconnected)


def test_a_test_send_is_tried_again_and_still_mailed_once(mail_server_down):
    issue = IssueFactory(subject="Draft edition")

    result = tasks.issue_test_send_task.apply(args=(issue.pk, ["editor@example.org"], "req-1"))

    assert mail_server_down.tries == 1 + 5
    assert isinstance(result.result, smtplib.SMTPServerDisconnected)
    # The request's claim was given back with each fault: the editor's request is not lost.
    mail_server_down.up()
    tasks.issue_test_send_task.apply(args=(issue.pk, ["editor@example.org"], "req-1"))
    tasks.issue_test_send_task.apply(args=(issue.pk, ["editor@example.org"], "req-1"))
    assert [m.subject for m in mail.outbox] == ["[Test] Draft edition"]


def test_a_test_send_that_fails_once_is_mailed_on_its_retry(mail_server_down, monkeypatch):
    from outlet.newsletters import issues

    issue = IssueFactory(subject="Draft edition")
    build = issues.issue_test_message

    def down_once(**kwargs):
        if mail_server_down.tries == 1:
            mail_server_down.up()
        return build(**kwargs)

    monkeypatch.setattr(issues, "issue_test_message", down_once)
    result = tasks.issue_test_send_task.apply(args=(issue.pk, ["editor@example.org"], "req-2"))

    assert result.successful()
    assert [m.to for m in mail.outbox] == [["editor@example.org"]]
