from __future__ import annotations

import re
from unittest import mock

import pytest
from django.core import mail
from django.urls import reverse


@pytest.fixture
def request_link(client, django_capture_on_commit_callbacks):
    """POST the sign-in form; run what it queued (the task, twice, as a redelivered task
    would). Returns the response and how many tasks were queued."""
    from outlet.readers.tasks import reader_sign_in_send_task

    def run_twice(*args):
        for _ in range(2):
            reader_sign_in_send_task.apply(args=args)

    def request(email: str, ip: str = "127.0.0.1", browser=None):
        with django_capture_on_commit_callbacks(execute=False) as queued:
            response = (browser or client).post(
                reverse("readers:account"), {"email": email}, REMOTE_ADDR=ip
            )
        with mock.patch.object(reader_sign_in_send_task, "delay", run_twice):
            for callback in queued:
                callback()
        return response, len(queued)

    return request


def link_in_mail(message=None) -> str:
    message = message or mail.outbox[-1]
    return re.search(r"https?://\S+(/account/sign-in/\S+/)", message.body).group(1)


def sign_in(client, token_path: str):
    return client.post(token_path)


@pytest.fixture
def run_tasks(monkeypatch, django_capture_on_commit_callbacks):
    """Readers' tasks run in process when their transaction commits."""
    from outlet.readers import tasks

    for task in (tasks.reader_sign_in_send_task, tasks.reader_email_change_send_task):
        monkeypatch.setattr(task, "delay", lambda *args, task=task: task.apply(args=args))
    return lambda: django_capture_on_commit_callbacks(execute=True)
