"""The readers' mail tasks: a temporary mail fault is tried again (run inline here, as
`apply` does: every retry, then the fault once they are used up)."""

from __future__ import annotations

import smtplib

import pytest

from outlet.readers import services, tasks


@pytest.mark.parametrize(
    ("task", "service", "args"),
    [
        (tasks.reader_sign_in_send_task, "reader_sign_in_send", ("a@example.com", "r1")),
        (tasks.reader_email_change_send_task, "reader_email_change_send", (1, "b@example.com")),
        (
            tasks.reader_email_change_notice_task,
            "reader_email_change_notice_send",
            ("a@example.com", "b@example.com", False, "n1"),
        ),
    ],
)
def test_a_temporary_mail_fault_is_retried_later(monkeypatch, task, service, args):
    calls = []

    def down(**kwargs):
        calls.append(kwargs)
        raise smtplib.SMTPServerDisconnected("gone")

    monkeypatch.setattr(services, service, down)

    result = task.apply(args=args)

    assert len(calls) == 1 + 5  # the first try and five retries
    assert isinstance(result.result, smtplib.SMTPServerDisconnected)
