"""What came back to the bounce mailbox: one row per message, so each acts once."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from outlet.newsletters.bounces.reading import Outcome


class BounceMessage(models.Model):
    """A message taken in from the bounce mailbox (intake.py).

    `key` (a digest of the message as sent back, trace headers left out) is unique: the
    row is written in the same transaction as the suppression or count the message
    causes, so a message read again (a worker restarted, Postfix retrying the pipe, a
    mailbox kept) finds its row and changes nothing. A message not understood keeps its
    bytes here, set aside for a person to read.
    """

    class Source(models.TextChoices):
        PIPE = "pipe", _("Postfix pipe")
        MAILDIR = "maildir", _("Maildir")
        IMAP = "imap", _("IMAP")

    key = models.CharField(max_length=64, unique=True)
    message_id = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    detail = models.CharField(max_length=300, blank=True)
    delivery = models.ForeignKey(
        "newsletters.Delivery", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: The message itself, for one not understood (set aside); empty otherwise.
    raw = models.BinaryField(blank=True, default=b"")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("returned message")
        verbose_name_plural = _("returned messages")
        indexes = [
            models.Index(fields=["outcome", "received_at"], name="bounce_message_outcome_idx")
        ]

    def __str__(self) -> str:
        return f"{self.get_outcome_display()} ({self.received_at:%Y-%m-%d %H:%M})"
