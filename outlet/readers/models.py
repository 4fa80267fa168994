"""
Readers: one row per address that has signed in to its account (or that staff sent a link
to). The address is the identity; the donor and subscriber records hold everything else
and are joined by address (selectors.py). `session_epoch` is what "sign out everywhere"
bumps: every session cookie carries the epoch it was opened under.
"""

from __future__ import annotations

from django.db import models


class Reader(models.Model):
    email = models.EmailField(unique=True)
    session_epoch = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    signed_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


class ReaderLinkUse(models.Model):
    """A single-use link already used: its nonce, under a unique constraint, so two
    clicks at once sign in once. Expired nonces are useless anyway and may be pruned."""

    nonce = models.CharField(max_length=64, unique=True)
    purpose = models.CharField(max_length=32)
    used_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-used_at"]

    def __str__(self) -> str:
        return f"{self.purpose} link used {self.used_at:%Y-%m-%d %H:%M}"
