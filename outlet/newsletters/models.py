"""The newsletter audience: lists, subscribers, their choices, consent and suppressions.

An address is stored once, normalised to lower case, with its SHA-256 digest
beside it (`email_hash`). The suppression list holds only digests, so an
erased address leaves nothing readable behind, yet an import or a sign-up can
still be refused. Every send path asks `Subscriber.objects.mailable()` (or the
selector `newsletter_recipients`), which checks status and suppression in SQL.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_prose_editor.fields import ProseEditorField

from outlet.core.addresses import email_digest, email_normalise
from outlet.core.language import language_valid


class Newsletter(models.Model):
    class Visibility(models.TextChoices):
        PUBLIC = "public", "Public"
        DONORS = "donors", "Donors only"

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    from_name = models.CharField(max_length=120)
    from_email = models.EmailField()
    reply_to = models.EmailField(blank=True)
    visibility = models.CharField(
        max_length=10, choices=Visibility.choices, default=Visibility.PUBLIC
    )
    is_active = models.BooleanField(default=True, help_text="Inactive lists are not offered.")
    track_opens = models.BooleanField(
        default=True,
        help_text="Count opens with a tiny image in each issue (approximate; "
        "NEWSLETTER_TRACK_OPENS turns it off everywhere).",
    )
    position = models.PositiveSmallIntegerField(default=0, help_text="Order on the sign-up page.")
    language = models.CharField(
        _("language"),
        max_length=10,
        blank=True,
        default="",
        # Also in the database: bulk writers (imports, COPY) name only their own columns.
        db_default="",
        help_text=_("Of its issues; offered first on pages in it. Empty: the default."),
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """A From address our DKIM signature would not align with fails DMARC at the
        receivers: refused here rather than discovered in the spam folder."""
        from django.core.exceptions import ValidationError

        from outlet.core.dkim_config import dkim_alignment_problem

        if self.from_email and (problem := dkim_alignment_problem(from_email=self.from_email)):
            raise ValidationError({"from_email": problem})

    @property
    def language_code(self) -> str:
        """Its issues' language: its own, or the site's default when blank."""
        return language_valid(self.language)

    @property
    def from_header(self) -> str:
        """The From: header value, e.g. `The Outlet Daily <daily@outlet.test>`."""
        from email.utils import formataddr

        return formataddr((self.from_name, self.from_email))


class Segment(models.TextChoices):
    """Who, among a newsletter's subscribers, an issue goes to."""

    ALL = "all", "Everyone subscribed"
    DONORS = "donors", "Donors"
    NON_DONORS = "non_donors", "Non-donors"
    LAPSED_DONORS = "lapsed_donors", "Lapsed donors (gave before, not in the last 12 months)"
    RECENT = "recent", "Recent sign-ups (last 30 days)"


class SubscriberQuerySet(models.QuerySet["Subscriber"]):
    def mailable(self) -> SubscriberQuerySet:
        """Active and not on the suppression list: the only people any send may reach."""
        return self.filter(status=Subscriber.Status.ACTIVE).exclude(
            email_hash__in=Suppression.objects.values("email_hash")
        )


class Subscriber(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending confirmation"
        ACTIVE = "active", "Active"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"

    class Source(models.TextChoices):
        FORM = "form", "Sign-up form"
        DONATION = "donation", "Donation form"
        IMPORT = "import", "Import"
        ADMIN = "admin", "Added by an editor"

    email = models.EmailField(max_length=254, unique=True, help_text="Stored in lower case.")
    email_hash = models.CharField(max_length=64, unique=True, editable=False)
    name = models.CharField(max_length=120, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.FORM)
    token = models.UUIDField(
        default=uuid.uuid4,
        unique=True,
        editable=False,
        help_text="Carried by signed links instead of the address.",
    )
    soft_bounce_count = models.PositiveSmallIntegerField(
        default=0, help_text="Soft bounces in a row; reset by a delivery."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    confirmation_sent_at = models.DateTimeField(
        null=True, blank=True, help_text="Last confirmation email, to space out re-sends."
    )
    language = models.CharField(
        _("language"),
        max_length=10,
        blank=True,
        default="",
        # Also in the database: bulk writers (imports, COPY) name only their own columns.
        db_default="",
        help_text=_("Of their emails: the sign-up page's. Empty: the site's default."),
    )

    objects = SubscriberQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="subscriber_email_ci_unique"),
        ]
        # Behind the admin's filters; its search has trigram indexes on PostgreSQL
        # (migration 0008), which Django's schema cannot express portably.
        indexes = [models.Index(fields=["source", "created_at"], name="subscriber_source_idx")]

    def __str__(self) -> str:
        return f"Subscriber #{self.pk}"

    def save(self, *args, **kwargs) -> None:
        # Derived columns only; the rules about who may subscribe live in services.
        self.email = email_normalise(self.email)
        self.email_hash = email_digest(self.email)
        super().save(*args, **kwargs)

    @property
    def is_mailable(self) -> bool:
        return (
            self.status == self.Status.ACTIVE
            and not Suppression.objects.filter(email_hash=self.email_hash).exists()
        )

    def get_admin_url(self) -> str:
        return reverse("admin:newsletters_subscriber_change", args=[self.pk])


class Subscription(models.Model):
    """One subscriber's choice of one newsletter.

    `confirmed_at` is empty until the subscriber follows a confirmation link
    for this choice, so a stranger cannot add lists to an active address.
    """

    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="subscriptions"
    )
    newsletter = models.ForeignKey(
        Newsletter, on_delete=models.CASCADE, related_name="subscriptions"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    paused_until = models.DateField(
        null=True, blank=True, help_text="No issues are sent until this day has passed."
    )

    class Meta:
        ordering = ["newsletter__position", "newsletter__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber", "newsletter"], name="subscription_once_per_newsletter"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber} → {self.newsletter}"

    @property
    def is_paused(self) -> bool:
        return self.paused_until is not None and self.paused_until >= timezone.localdate()


class ConsentRecord(models.Model):
    """Evidence of consent: what a person was shown, where, when and from which address."""

    class Kind(models.TextChoices):
        SIGNUP = "signup", "Signed up"
        CONFIRM = "confirm", "Confirmed by email link"
        IMPORT = "import", "Imported; editor confirmed consent"
        PREFERENCES = "preferences", "Changed preferences"
        DONATION = "donation", "Opted in on the donation form"

    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="consent_records"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    form = models.CharField(max_length=80, blank=True, help_text="Which form, e.g. article-box.")
    page_url = models.URLField(max_length=500, blank=True)
    text_shown = models.TextField(blank=True)
    newsletters = models.CharField(
        max_length=500, blank=True, help_text="Names of the newsletters chosen, as shown."
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    # Imported consent (kind IMPORT): what the previous platform's file says, where it has it.
    source = models.TextField(
        blank=True, help_text=_("Where an imported consent came from: platform, file, import.")
    )
    opted_in_at = models.DateTimeField(null=True, blank=True)
    opted_in_ip = models.GenericIPAddressField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.created_at:%Y-%m-%d %H:%M}"


class Suppression(models.Model):
    """An address (by digest only) that no send and no import may reach again."""

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        SOFT_BOUNCES = "soft_bounces", "Too many soft bounces in a row"
        COMPLAINT = "complaint", "Spam complaint"
        ERASED = "erased", "Erased on request"
        MANUAL = "manual", "Added by an editor"
        # From an imported list: what the previous platform said of the address.
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed at the previous platform")
        CLEANED = "cleaned", _("Cleaned (undeliverable) at the previous platform")
        EMAIL_DISABLED = "email_disabled", _("Email disabled at the previous platform")

    email_hash = models.CharField(max_length=64, unique=True)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} {self.email_hash[:12]}…"


# --- Issues and their delivery (the sending engine) ---------------------------

ISSUE_EDITOR_EXTENSIONS = {
    "Bold": True,
    "Italic": True,
    "Heading": {"levels": [2, 3]},
    "BulletList": True,
    "OrderedList": True,
    "ListItem": True,
    "Blockquote": True,
    "Link": {"enableTarget": False, "protocols": ["http", "https", "mailto"]},
    "HardBreak": True,
    "HorizontalRule": True,
    "History": True,
    "Typographic": True,
    "NoInjectedStyles": True,
}


class Issue(models.Model):
    """One edition of a newsletter, from draft to sent.

    Status changes only through the `issue_*` services in issues.py, under a
    row lock, so a second "send" can never start a second fan-out. When sending
    starts, the message is rendered once and frozen in `rendered_html` and
    `rendered_text`; later edits to articles do not change what goes out.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"

    newsletter = models.ForeignKey(Newsletter, on_delete=models.PROTECT, related_name="issues")
    subject = models.CharField(max_length=200, blank=True)
    preheader = models.CharField(
        max_length=200, blank=True, help_text="The line inboxes show after the subject."
    )
    intro = ProseEditorField(
        config={"extensions": ISSUE_EDITOR_EXTENSIONS},
        sanitize=True,
        blank=True,
        help_text="The editor's introduction at the top of the email.",
    )
    body = ProseEditorField(
        config={"extensions": ISSUE_EDITOR_EXTENSIONS},
        sanitize=True,
        blank=True,
        help_text="Free text after the articles (optional).",
    )
    appeal = models.ForeignKey(
        "articles.Appeal",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="A donation appeal closing the email (optional).",
    )
    segment = models.CharField(max_length=20, choices=Segment.choices, default=Segment.ALL)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    planned_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Every delivery row exists."
    )
    sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    planned_count = models.PositiveIntegerField(default=0, editable=False)
    heartbeat_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When a batch last worked on it; a watchdog revives stalls.",
    )
    lane_generation = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="Lanes started together; a lane of an older generation stops.",
    )
    pause_reason = models.CharField(max_length=300, blank=True, editable=False)
    auto_resume_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Paused by the engine (mail server down): retry from then.",
    )
    rendered_html = models.TextField(blank=True, editable=False)
    rendered_text = models.TextField(blank=True, editable=False)
    # The bounce-rate breaker's current window (sending/breaker.py): messages the servers
    # judged (accepted or refused as unknown mailboxes) and hard bounces among them,
    # added to by every lane with atomic increments.
    bounce_window_judged = models.PositiveIntegerField(default=0, editable=False)
    bounce_window_hard = models.PositiveIntegerField(default=0, editable=False)
    bounce_breaker_tripped = models.BooleanField(
        default=False,
        editable=False,
        help_text="Too many hard bounces: they wait for the editor, nobody is suppressed.",
    )
    mail_bounces_since = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Mailed hard bounces count for the breaker from its last reset.",
    )
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    articles = models.ManyToManyField(
        "articles.Article", through="IssueArticle", related_name="newsletter_issues", blank=True
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "scheduled_at"])]

    def __str__(self) -> str:
        return self.subject or f"Issue #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("newsletters:issue-detail", args=[self.newsletter.slug, self.pk])

    @property
    def archived_at(self):
        return self.sent_at or self.started_at


class IssueArticle(models.Model):
    """An article's place in an issue."""

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="issue_articles")
    # A deleted (taken-down) article leaves every issue; what went out is frozen in
    # Issue.rendered_html, and the web archive must not show it.
    article = models.ForeignKey("articles.Article", on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["issue", "article"], name="issue_article_once"),
        ]

    def __str__(self) -> str:
        return f"{self.issue} #{self.position}"


class Delivery(models.Model):
    """One subscriber's copy of one issue: the unit the engine claims, sends and records.

    A worker claims rows by writing its `lease_token` and `leased_until`; rows
    whose lease has expired (their worker died) may be claimed again. Outcomes
    are written only where the token still matches, so a late worker cannot
    overwrite the record of the one that took over.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending (leased)"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (unsubscribed or suppressed)"

    # Every index is written again by each claim and each outcome (status changes, so
    # no update is HOT): Delivery keeps three. The claim index serves lookups by
    # issue and the unique constraint lookups by subscriber.
    issue = models.ForeignKey(
        Issue, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_token = models.UUIDField(null=True, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber", "issue"], name="delivery_once_per_subscriber"
            ),
        ]
        indexes = [
            models.Index(fields=["issue", "status", "id"], name="delivery_claim_idx"),
            # The few rows waiting to be tried again (a retry, a batch handed back):
            # claimed first once due, found without walking the issue's other rows.
            models.Index(
                fields=["issue", "next_attempt_at"],
                name="delivery_retry_idx",
                condition=models.Q(status="pending", next_attempt_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"Delivery #{self.pk} ({self.status})"


class HeldBounce(models.Model):
    """A hard bounce whose address is not suppressed yet (sending/breaker.py).

    Every hard bounce waits here until its breaker window proves the bounce rate
    normal (then it is suppressed and the row goes), or trips the breaker: then it
    is `for_editor`, and the editor confirms it (suppressed) or lifts it (sent again).
    Holds the delivery and the digest of the address that bounced, not the address: the
    reader may move to another address before the bounce is judged, and the new one
    must not be suppressed for the old one's bounce.
    """

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="held_bounces")
    delivery = models.OneToOneField(Delivery, on_delete=models.CASCADE, related_name="+")
    email_hash = models.CharField(max_length=64, default="", editable=False)
    for_editor = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [models.Index(fields=["issue", "for_editor"], name="held_bounce_issue_idx")]

    def __str__(self) -> str:
        return f"Held bounce of delivery #{self.delivery_id}"


# Subscriber imports (audience/models.py), registered with this app.
from outlet.newsletters.audience.models import (  # noqa: E402
    SubscriberImport,
    SubscriberImportAddress,
    SubscriberImportPart,
    SubscriberImportRefusal,
)

# What readers did with each issue (measuring/models.py), registered with this app.
from outlet.newsletters.bounces.models import BounceMessage  # noqa: E402
from outlet.newsletters.measuring.models import (  # noqa: E402
    Click,
    DeliveryEvent,
    IssueLink,
    IssueStats,
    Open,
)

__all__ = [
    "BounceMessage",
    "Click",
    "ConsentRecord",
    "Delivery",
    "DeliveryEvent",
    "Issue",
    "IssueArticle",
    "IssueLink",
    "IssueStats",
    "Newsletter",
    "Open",
    "Segment",
    "Subscriber",
    "SubscriberImport",
    "SubscriberImportAddress",
    "SubscriberImportPart",
    "SubscriberImportRefusal",
    "Subscription",
    "Suppression",
]
