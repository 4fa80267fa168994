"""Records of what readers did with an issue, and the counters the admin reads.

Every record points at a `Delivery` (one subscriber's copy of one issue), never at
an address, and goes with it: erasing a subscriber deletes their deliveries and so
their clicks, opens and events. `issue` is repeated on clicks and opens so the
report's counts walk an index of that issue only. `IssueStats` keeps the figures
per issue, refreshed after each batch of records, so lists never count rows.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class IssueLink(models.Model):
    """A link of a sent issue that goes through the tracked redirect."""

    issue = models.ForeignKey("newsletters.Issue", on_delete=models.CASCADE, related_name="links")
    position = models.PositiveSmallIntegerField()
    url = models.URLField(max_length=2000)

    class Meta:
        ordering = ["issue", "position"]
        constraints = [
            models.UniqueConstraint(fields=["issue", "position"], name="issue_link_position_once"),
        ]

    def __str__(self) -> str:
        return self.url


class Click(models.Model):
    """One click on a tracked link. `nonce` makes a re-flushed batch harmless."""

    issue = models.ForeignKey("newsletters.Issue", on_delete=models.CASCADE, related_name="+")
    link = models.ForeignKey(IssueLink, on_delete=models.CASCADE, related_name="clicks")
    delivery = models.ForeignKey("newsletters.Delivery", on_delete=models.CASCADE, related_name="+")
    clicked_at = models.DateTimeField()
    nonce = models.BigIntegerField(unique=True)

    class Meta:
        indexes = [
            models.Index(fields=["issue", "delivery"], name="click_issue_delivery_idx"),
            models.Index(fields=["issue", "clicked_at"], name="click_issue_time_idx"),
            models.Index(fields=["issue", "link", "delivery"], name="click_issue_link_idx"),
        ]

    def __str__(self) -> str:
        return f"Click #{self.pk}"


class Open(models.Model):
    """One fetch of an issue's pixel; `machine` when a mail client's proxy prefetched it."""

    issue = models.ForeignKey("newsletters.Issue", on_delete=models.CASCADE, related_name="+")
    delivery = models.ForeignKey("newsletters.Delivery", on_delete=models.CASCADE, related_name="+")
    opened_at = models.DateTimeField()
    machine = models.BooleanField(default=False)
    nonce = models.BigIntegerField(unique=True)

    class Meta:
        indexes = [
            models.Index(fields=["issue", "delivery"], name="open_issue_delivery_idx"),
            models.Index(fields=["issue", "opened_at"], name="open_issue_time_idx"),
        ]

    def __str__(self) -> str:
        return f"Open #{self.pk}"


class DeliveryEvent(models.Model):
    """A bounce, complaint or unsubscribe that followed a delivery (once per kind)."""

    class Kind(models.TextChoices):
        BOUNCE = "bounce", "Bounced"
        COMPLAINT = "complaint", "Complaint"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribed"

    issue = models.ForeignKey("newsletters.Issue", on_delete=models.CASCADE, related_name="+")
    delivery = models.ForeignKey("newsletters.Delivery", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["delivery", "kind"], name="delivery_event_once"),
        ]
        indexes = [models.Index(fields=["issue", "kind"], name="delivery_event_issue_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} after delivery #{self.delivery_id}"


class IssueStats(models.Model):
    """An issue's figures, counted from indexed rows after each batch of records.

    Counts, not people: they stay when a subscriber's records are erased.
    """

    issue = models.OneToOneField(
        "newsletters.Issue", on_delete=models.CASCADE, primary_key=True, related_name="stats"
    )
    sent = models.PositiveIntegerField(default=0)
    bounced = models.PositiveIntegerField(default=0)
    complaints = models.PositiveIntegerField(default=0)
    unsubscribed = models.PositiveIntegerField(default=0)
    opened = models.PositiveIntegerField(default=0, help_text="Deliveries with any open.")
    opened_machine = models.PositiveIntegerField(
        default=0, help_text="Of those, deliveries only a mail client's proxy opened."
    )
    clicks = models.PositiveIntegerField(default=0)
    clicked = models.PositiveIntegerField(default=0, help_text="Deliveries with any click.")
    updated_at = models.DateTimeField(default=timezone.now)
    #: What erased subscribers had contributed (their rows are gone; their counts stay).
    erased = models.JSONField(default=dict, blank=True)
    #: Clicks and readers per link, opens and clicks per hour (measuring/breakdown.py).
    breakdown = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "issue stats"

    def __str__(self) -> str:
        return f"Figures of issue #{self.issue_id}"

    @property
    def delivered(self) -> int:
        return max(0, self.sent - self.bounced)
