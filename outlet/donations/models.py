"""
Donations: who gave (Donor), recurring gifts (Gift), each payment (Donation),
the Stripe events already applied (StripeEvent) and each email owed to a donor
(DonorEmail). Money is an integer in minor units plus an ISO currency code.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Frequency(models.TextChoices):
    ONCE = "once", _("One time")
    MONTH = "month", _("Monthly")
    YEAR = "year", _("Yearly")


class Campaign(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    description = models.TextField(blank=True)
    goal_amount = models.PositiveBigIntegerField(help_text=_("In minor units (cents)."))
    currency = models.CharField(max_length=3, default="usd")
    deadline = models.DateField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(goal_amount__gt=0), name="campaign_goal_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class Donor(models.Model):
    # None once erased: no form can submit it, and any number of erased donors can hold it
    # under the unique constraint, so nobody can make an erasure collide (a placeholder
    # address could be typed into the donate form first).
    email = models.EmailField(unique=True, null=True, blank=True)
    name = models.CharField(max_length=200, blank=True)
    language = models.CharField(
        _("language"),
        max_length=10,
        blank=True,
        default="",
        # Also in the database: bulk writers (imports, COPY) name only their own columns.
        db_default="",
        help_text=_("Of their receipts and account emails. Empty: the site's default."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["email"]
        # Newsletter segments ask "has this address given?" per subscriber, by lower case.
        indexes = [models.Index(Lower("email"), name="donor_email_lower_idx")]

    def __str__(self) -> str:
        return self.email or f"Erased donor #{self.pk}"


class Attribution(models.Model):
    """Where a gift came from and what the donor agreed to; shared by Gift and Donation."""

    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL)
    source = models.CharField(max_length=200, blank=True, db_index=True)
    utm = models.JSONField(default=dict, blank=True)
    public_credit = models.BooleanField(default=False)
    public_name = models.CharField(max_length=200, blank=True)
    newsletter_opt_in = models.BooleanField(default=False)

    class Meta:
        abstract = True


class Gift(Attribution):
    """A recurring gift: one Stripe subscription."""

    class Status(models.TextChoices):
        INCOMPLETE = "incomplete", pgettext_lazy("gift status", "Incomplete")
        ACTIVE = "active", pgettext_lazy("gift status", "Active")
        PAST_DUE = "past_due", pgettext_lazy("gift status", "Past due")
        CANCELLED = "cancelled", pgettext_lazy("gift status", "Cancelled")

    class EndReason(models.TextChoices):
        DONOR = "donor", pgettext_lazy("gift end reason", "Cancelled by the donor")
        STAFF = "staff", pgettext_lazy("gift end reason", "Cancelled by staff")
        PAYMENT_FAILED = "payment_failed", pgettext_lazy("gift end reason", "Payments failed")
        OTHER = "other", pgettext_lazy("gift end reason", "Ended by Stripe")

    donor = models.ForeignKey(Donor, on_delete=models.PROTECT, related_name="gifts")
    amount = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    interval = models.CharField(max_length=5, choices=Frequency.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.INCOMPLETE)
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    stripe_subscription_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=20, choices=EndReason.choices, blank=True)
    stripe_event_at = models.PositiveBigIntegerField(
        default=0, help_text=_("Time (Unix) of the newest subscription event applied.")
    )
    # Set when the subscription was made elsewhere and adopted from the Stripe account
    # (stripe_adopt); a later run updates such a gift, never one made here.
    adopted_at = models.DateTimeField(
        null=True, blank=True, help_text=_("Adopted from the Stripe account (stripe_adopt).")
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="gift_amount_positive"),
            models.CheckConstraint(condition=~Q(interval="once"), name="gift_interval_recurring"),
        ]

    def __str__(self) -> str:
        return f"{self.get_interval_display()} gift #{self.pk} from {self.donor_id}"

    @property
    def is_live(self) -> bool:
        return self.status in (self.Status.ACTIVE, self.Status.PAST_DUE)


class PaymentMethod(models.TextChoices):
    """How a payment was made, as Stripe's charge names it (payment_method_details.type)."""

    CARD = "card", _("Card")
    SEPA_DEBIT = "sepa_debit", _("SEPA Direct Debit")
    US_BANK_ACCOUNT = "us_bank_account", _("ACH Direct Debit")
    BACS_DEBIT = "bacs_debit", _("Bacs Direct Debit")


class Donation(Attribution):
    """One payment: a one-time gift, or one charge of a recurring gift."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("payment status", "Pending")
        # A bank debit (SEPA, ACH, Bacs) on its way: Stripe says whether it succeeded days
        # later. Not money yet: no receipt, and no total counts it.
        PROCESSING = "processing", pgettext_lazy("payment status", "Processing")
        PAID = "paid", pgettext_lazy("payment status", "Paid")
        FAILED = "failed", pgettext_lazy("payment status", "Failed")
        REFUNDED = "refunded", pgettext_lazy("payment status", "Refunded")
        # Left before Stripe's charge step and expired (services.checkouts_abandoned_expire).
        ABANDONED = "abandoned", pgettext_lazy("payment status", "Abandoned checkout")

    donor = models.ForeignKey(Donor, on_delete=models.PROTECT, related_name="donations")
    gift = models.ForeignKey(
        Gift, null=True, blank=True, on_delete=models.PROTECT, related_name="donations"
    )
    frequency = models.CharField(max_length=5, choices=Frequency.choices, default=Frequency.ONCE)
    amount = models.PositiveBigIntegerField(help_text=_("Charged, in minor units, fee included."))
    fee_amount = models.PositiveBigIntegerField(default=0, help_text=_("Processing fee covered."))
    currency = models.CharField(max_length=3)
    # A renewal Stripe paid (in part or in full) from the customer's credit balance: that
    # part was not charged now, so it is not in `amount` (0 when the credit paid it all).
    credit_amount = models.PositiveBigIntegerField(
        default=0,
        db_default=0,
        help_text=_("Paid from the donor's Stripe credit balance, not charged."),
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    stripe_payment_intent_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    stripe_invoice_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    stripe_charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    # Read from the charge when Stripe names it (a bank debit's processing or success):
    # a receipt says how it was paid, and a SEPA receipt names the mandate.
    payment_method_type = models.CharField(
        max_length=40, choices=PaymentMethod.choices, blank=True, default="", db_default=""
    )
    mandate_reference = models.CharField(max_length=255, blank=True, default="", db_default="")
    failure_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True, db_index=True)
    refund_requested_at = models.DateTimeField(null=True, blank=True)
    refunded_amount = models.PositiveBigIntegerField(default=0)
    refunded_at = models.DateTimeField(null=True, blank=True)
    disputed_at = models.DateTimeField(null=True, blank=True)
    dispute_status = models.CharField(max_length=30, blank=True)
    disputed_amount = models.PositiveBigIntegerField(
        default=0, help_text=_("Held or lost to an open or lost dispute; 0 once won.")
    )
    dispute_notified_at = models.DateTimeField(null=True, blank=True)
    refunds_read_at = models.PositiveBigIntegerField(
        default=0,
        db_default=0,
        help_text=_(
            "Time (Unix) the charge's refunded amount was last read from Stripe (after "
            "a refund failed): a charge.refunded event written before then is out of date."
        ),
    )
    # Made by the browser once per checkout and sent with every submit of it: a double
    # submit, or a retry after an uncertain answer, finds this donation instead of
    # starting a second one (and a second charge).
    checkout_key = models.CharField(max_length=64, blank=True)
    # History adopted with its gift (a paid invoice from before the move): no receipt owed.
    adopted_at = models.DateTimeField(
        null=True, blank=True, help_text=_("Adopted from the Stripe account (stripe_adopt).")
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0) | Q(credit_amount__gt=0),
                name="donation_amount_positive",
            ),
            models.UniqueConstraint(
                fields=["checkout_key"],
                condition=~Q(checkout_key=""),
                name="donation_checkout_key_unique",
            ),
        ]
        permissions = [("refund_donation", "Can refund a donation")]
        indexes = [models.Index(fields=["status", "paid_at"])]

    def __str__(self) -> str:
        return f"Donation #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("admin:donations_donation_change", args=[self.pk])


class Refund(models.Model):
    """One refund of a donation, by its Stripe id, as Stripe last reported it. A refund can
    fail after it was made (a closed card): its amount then counts again, the editors are
    told once (`editors_notified_at`), and the donation can be refunded again."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("refund status", "Pending")
        REQUIRES_ACTION = "requires_action", pgettext_lazy("refund status", "Requires action")
        SUCCEEDED = "succeeded", pgettext_lazy("refund status", "Succeeded")
        FAILED = "failed", pgettext_lazy("refund status", "Failed")
        CANCELED = "canceled", pgettext_lazy("refund status", "Canceled")

    donation = models.ForeignKey(Donation, on_delete=models.CASCADE, related_name="refunds")
    stripe_refund_id = models.CharField(max_length=255, unique=True)
    amount = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    failure_reason = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    editors_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Refund {self.stripe_refund_id} of donation #{self.donation_id}"

    @property
    def gave_back(self) -> bool:
        """Failed or canceled: the money stayed with us."""
        return self.status in (self.Status.FAILED, self.Status.CANCELED)


class StripeEvent(models.Model):
    """A Stripe event id already applied: the unique constraint makes a repeat a no-op."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    received_at = models.DateTimeField(auto_now_add=True)
    # Stripe's own time of the event (its `created`): a backup's manifest keeps the newest,
    # and a restore replays Stripe's event list from there (outlet/core/backups/).
    created = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class DonorEmail(models.Model):
    """One email owed to a donor. `dedupe_key` makes "once per payment" a database fact;
    `status` makes a repeated send task harmless."""

    class Kind(models.TextChoices):
        RECEIPT = "receipt", _("Receipt")
        # Sign-in links come from the reader account now (outlet/readers); the kind stays
        # for the rows of those sent before.
        MANAGE_LINK = "manage_link", _("Manage link (before reader accounts)")
        PAST_DUE = "past_due", _("Renewal failed")
        GIFT_ENDED = "gift_ended", _("Gift ended")
        GIFT_CANCELLED = "gift_cancelled", _("Gift cancelled by donor")
        AMOUNT_CHANGED = "amount_changed", _("Amount changed")
        CARD_UPDATED = "card_updated", _("Card updated")
        PAYMENT_ACTION_REQUIRED = "action_required", _("Renewal to confirm (3-D Secure)")
        PAYMENT_FAILED = "payment_failed", _("Bank payment failed after processing")

    class Status(models.TextChoices):
        READY = "ready", pgettext_lazy("email status", "Ready")
        SENT = "sent", pgettext_lazy("email status", "Sent")
        FAILED = "failed", pgettext_lazy("email status", "Failed")
        SKIPPED = "skipped", pgettext_lazy("email status", "Not needed any more")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    donor = models.ForeignKey(Donor, on_delete=models.CASCADE, related_name="emails")
    donation = models.ForeignKey(Donation, null=True, blank=True, on_delete=models.CASCADE)
    gift = models.ForeignKey(Gift, null=True, blank=True, on_delete=models.CASCADE)
    dedupe_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    # Where the email sends the donor to act, when that is not their account: a renewal's
    # hosted invoice page, where the bank's confirmation (3-D Secure) happens.
    action_url = models.URLField(max_length=2000, blank=True, default="", db_default="")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.READY)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The few emails still owed or given up on, counted on every /metrics scrape
            # without reading the sent ones (one row per receipt ever sent).
            models.Index(
                fields=["status", "kind", "created_at"],
                name="donor_email_unsent_idx",
                condition=Q(status__in=["ready", "failed"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.donor_id}"
