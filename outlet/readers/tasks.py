"""Celery tasks for readers: thin, safe to run twice. The address lookup happens here, not
in the request, so a request takes the same time for known addresses and strangers."""

from __future__ import annotations

from celery import shared_task

from outlet.core.tasks import MAIL_TASK_OPTIONS

from . import services


@shared_task(name="readers.reader_sign_in_send", **MAIL_TASK_OPTIONS)
def reader_sign_in_send_task(email: str, request_id: str) -> None:
    services.reader_sign_in_send(email=email, request_id=request_id)


@shared_task(name="readers.reader_email_change_send", **MAIL_TASK_OPTIONS)
def reader_email_change_send_task(
    reader_id: int, email: str, session_epoch: int | None = None
) -> None:
    services.reader_email_change_send(reader_id=reader_id, email=email, session_epoch=session_epoch)


@shared_task(name="readers.reader_email_change_notice", **MAIL_TASK_OPTIONS)
def reader_email_change_notice_task(
    old_email: str, new_email: str, done: bool, notice_id: str
) -> None:
    services.reader_email_change_notice_send(
        old_email=old_email, new_email=new_email, done=done, notice_id=notice_id
    )


@shared_task(
    name="readers.reader_link_uses_prune",
    queue="default",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def reader_link_uses_prune_task() -> None:
    """Beat, daily: forget the nonces of used links that have expired anyway."""
    services.reader_link_uses_prune()
