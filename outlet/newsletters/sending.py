"""The fan-out engine: render an issue once, then claim, personalise, send and record.

How a send moves (driven by tasks.py):

1. `deliveries_plan` walks the recipients by primary key in chunks (no OFFSET,
   never the whole list in memory) and inserts one `Delivery` per subscriber;
   the unique (issue, subscriber) constraint plus `ignore_conflicts` makes a
   repeated or resumed plan harmless.
2. Batch tasks ("lanes", NEWSLETTER_SEND_LANES per issue) each call
   `batch_send`, which claims up to NEWSLETTER_BATCH_SIZE claimable rows:
   pending ones whose retry time has come, and rows whose lease expired
   because the worker holding them died. The claim is an UPDATE guarded by the
   claimable condition that stamps a fresh lease token; on PostgreSQL the
   candidates are first locked with SELECT ... FOR UPDATE SKIP LOCKED so
   workers never wait on each other.
3. The batch re-checks who is still mailable (someone who unsubscribed since
   the plan is skipped), opens one SMTP connection and sends each message
   (on Django's SMTP backend straight on its connection, one round trip per
   message with PIPELINING: see `SmtpPipe`; otherwise through Django's email
   API), recording each outcome as soon as the server has answered. That order
   is the guarantee: a row is marked sent only after the server accepted it,
   so a crash can lose no one; the only message that can go out twice is the
   one in flight on a connection whose worker died. Through an anymail ESP that
   batches (`esp_batch_mode`), the batch goes out instead in API calls of
   NEWSLETTER_ESP_BATCH_SIZE recipients with merge data (`_esp_batch_send`), each
   call's outcomes recorded when it returns: a dead worker can duplicate one call.
4. The issue is rendered once (`Issue.rendered_html` / `rendered_text`, frozen
   when sending starts) and serialised once per process into a MIME skeleton;
   each recipient's copy is the skeleton with their links, greeting and
   headers substituted in as strings, not a new trip through the templates.
"""

from __future__ import annotations

import binascii
import contextlib
import email.policy
import logging
import re
import smtplib
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.utils import formataddr, formatdate
from html import escape as html_escape
from html import unescape
from typing import Any, cast
from urllib.parse import urlsplit

import css_inline
from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives, mailers
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Exists, F, Min, Model, OuterRef, Q, Value
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import strip_tags
from django_prose_editor.fields import ProseEditorField

from outlet.newsletters.models import (
    Delivery,
    Issue,
    Newsletter,
    Segment,
    Subscriber,
    Subscription,
    Suppression,
)
from outlet.newsletters.selectors import newsletter_recipients
from outlet.newsletters.tokens import (
    list_unsubscribe_headers,
    preferences_token,
    preferences_url,
    unsubscribe_token,
    unsubscribe_url,
)

logger = logging.getLogger(__name__)

#: Gmail clips HTML bodies above about 102 KB; stay clearly under it.
HTML_SIZE_LIMIT = 100 * 1024
PLAN_CHUNK_SIZE = 2000
#: Outcomes are written per message; the issue's status is re-read (pause, cancel)
#: at least this often during a batch, and the lease is renewed once a third of it
#: has passed.
CHECK_SECONDS = 0.5

# Per-recipient markers in the rendered issue, replaced by plain string substitution.
UNSUBSCRIBE_MARK = "@@UNSUBSCRIBE_URL@@"
PREFERENCES_MARK = "@@PREFERENCES_URL@@"
GREETING_MARK = "@@GREETING@@"

_inliner = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)


class MailServerDown(Exception):
    """The mail server refused connections or kept dropping them: pause, do not fail rows."""


# --- Rendering, once ------------------------------------------------------------


@dataclass(frozen=True)
class RenderedIssue:
    html: str
    text: str


def issue_render(*, issue: Issue) -> RenderedIssue:
    """The issue's HTML (CSS inlined) and plain text, with per-recipient markers."""
    items = [
        issue_article.article
        for issue_article in issue.issue_articles.select_related("article__section")
    ]
    context = {
        "issue": issue,
        "newsletter": issue.newsletter,
        "articles": items,
        "appeal": issue.appeal,
        "OUTLET_NAME": settings.OUTLET_NAME,
        "OUTLET_TAGLINE": settings.OUTLET_TAGLINE,
        "OUTLET_POSTAL_ADDRESS": settings.OUTLET_POSTAL_ADDRESS,
        "SITE_URL": settings.SITE_URL,
        "web_url": f"{settings.SITE_URL}{issue.get_absolute_url()}" if issue.pk else "",
        "donate_url": f"{settings.SITE_URL}/donate/",
        "unsubscribe_url": UNSUBSCRIBE_MARK,
        "preferences_url": PREFERENCES_MARK,
        "greeting": GREETING_MARK,
        "intro_html": rich_text_for_email(issue.intro),
        "body_html": rich_text_for_email(issue.body),
        "intro_text": html_to_text(issue_text_sanitise(issue.intro)),
        "body_text": html_to_text(issue_text_sanitise(issue.body)),
    }
    html = _inliner.inline(render_to_string("emails/newsletters/issue.html", context))
    text = render_to_string("emails/newsletters/issue.txt", context)
    return RenderedIssue(html=html, text=text)


_BLOCK_END = re.compile(r"</(p|h[1-6]|li|blockquote)>|<br\s*/?>", re.IGNORECASE)
_LINK = re.compile(r'<a\s[^>]*href="([^"]+)"[^>]*>(.*?)</a>', re.IGNORECASE | re.DOTALL)


def issue_text_sanitise(html: str) -> str:
    """An issue's rich text cleaned to its editor's allowlist (nh3, via django-prose-editor).

    The admin form cleans it when it is saved; cleaning again where it is rendered
    covers any other writer (a shell, a data migration, a future API)."""
    field = Issue._meta.get_field("intro")
    assert isinstance(field, ProseEditorField)
    return field.sanitize(html or "")


def rich_text_for_email(html: str) -> str:
    """Editor text, cleaned, ready for a narrow screen: the editor's non-breaking spaces
    (typed or pasted) would otherwise hold whole sentences on one line on a phone."""
    return issue_text_sanitise(html).replace("&nbsp;", " ").replace("\xa0", " ")


def html_to_text(html: str) -> str:
    """Sanitised rich text as plain text: paragraphs kept, links written out."""
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", html or "")
    text = strip_tags(_BLOCK_END.sub("\n\n", text))
    text = unescape(text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def greeting_for(name: str) -> str:
    first = (name or "").strip().split(" ")[0]
    return f"Hi {first}," if first else "Hello,"


def sample_personalise(content: str, *, html: bool) -> str:
    """A copy for previews, test sends and the web archive: no one's personal links."""
    preferences = f"{settings.SITE_URL}/newsletter/"
    return (
        content.replace(UNSUBSCRIBE_MARK, preferences)
        .replace(PREFERENCES_MARK, preferences)
        .replace(GREETING_MARK, "Hello,")
    )


# --- The MIME skeleton and cheap personalisation ---------------------------------


def _crlf(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\n", "\r\n")


def _qp(value: str) -> bytes:
    """Quoted-printable with CRLF line ends (b2a_qp uses LF for text without CRLF)."""
    encoded = binascii.b2a_qp(value.encode("utf-8"), istext=True)
    return encoded.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _header_value(value: str) -> str:
    try:
        value.encode("ascii")
    except UnicodeEncodeError:
        return Header(value, "utf-8").encode()
    return value


class PrebuiltMessage:
    """What `EmailMessage.message()` returns for a personalised copy: ready bytes.

    Django's SMTP backend only calls `as_bytes()`; tests and the locmem backend
    can parse it with the standard library.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data

    def as_bytes(self, *args, **kwargs) -> bytes:
        return self.data

    def as_string(self, *args, **kwargs) -> str:
        return self.data.decode("utf-8")

    def parsed(self):
        from email import policy
        from email.parser import BytesParser

        return BytesParser(policy=policy.default).parsebytes(self.data)

    def __getitem__(self, name: str):
        return self.parsed()[name]


class IssueMessage(EmailMultiAlternatives):
    """One recipient's copy. Its attributes are complete, so ESP backends (anymail)
    that read subject, bodies and headers work unchanged; SMTP and locmem get the
    pre-serialised bytes from `message()`."""

    prebuilt: bytes | None = None

    def message(self, *, policy=None):  # type: ignore[override]
        if self.prebuilt is None:
            # RFC 5322 allows lines of 998 characters. At the usual 78 the email package
            # turns the long, unbreakable <URL> of List-Unsubscribe into RFC 2047
            # encoded-words, which mail clients do not read as the header's links.
            policy = (policy or email.policy.default).clone(max_line_length=998)
            return super().message(policy=policy)
        return PrebuiltMessage(self.prebuilt)


@dataclass
class MessageSkeleton:
    """An issue serialised once per process; `personalise` fills in one recipient."""

    issue_id: int
    newsletter: Newsletter
    subject: str
    from_header: str
    envelope_from: str
    reply_to: str
    list_id: str
    domain: str
    html: str
    text: str
    head: bytes
    boundary: str
    html_qp: QpTemplate
    text_qp: QpTemplate
    link_samples: tuple[str, str, dict[str, str], str, str] | None = None

    @classmethod
    def build(cls, *, issue: Issue) -> MessageSkeleton:
        newsletter = issue.newsletter
        domain = urlsplit(settings.SITE_URL).hostname or "localhost"
        from_header = formataddr((newsletter.from_name, newsletter.from_email), charset="utf-8")
        reply_to = newsletter.reply_to or newsletter.from_email
        list_id = f"{_header_value(newsletter.name)} <{newsletter.slug}.{domain}>"
        boundary = f"=_outlet_{uuid.uuid4().hex}"
        head = (
            f"From: {from_header}\r\n"
            f"Subject: {_header_value(issue.subject)}\r\n"
            f"Reply-To: {reply_to}\r\n"
            f"List-Id: {list_id}\r\n"
            f"Precedence: bulk\r\n"
            f"MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
        ).encode("ascii")
        html, text = _crlf(issue.rendered_html), _crlf(issue.rendered_text)
        skeleton = cls(
            issue_id=issue.pk,
            newsletter=newsletter,
            subject=issue.subject,
            from_header=from_header,
            envelope_from=newsletter.from_email,
            reply_to=reply_to,
            list_id=list_id,
            domain=domain,
            html=html,
            text=text,
            html_qp=QpTemplate(html),
            text_qp=QpTemplate(text),
            head=head,
            boundary=boundary,
        )
        stand_in = Subscriber(token=uuid.uuid4())
        unsubscribe_sample = unsubscribe_token(stand_in, newsletter)
        preferences_sample = preferences_token(stand_in)
        headers_sample = list_unsubscribe_headers(stand_in, newsletter)
        url_sample = unsubscribe_url(stand_in, newsletter)
        prefs_sample = preferences_url(stand_in)
        if unsubscribe_sample in url_sample and preferences_sample in prefs_sample:
            skeleton.link_samples = (
                unsubscribe_sample,
                preferences_sample,
                headers_sample,
                url_sample,
                prefs_sample,
            )
        return skeleton

    def message_id(self, delivery_id: int) -> str:
        """Stable per delivery, so a retried copy is recognisably the same message."""
        return f"<issue-{self.issue_id}.delivery-{delivery_id}@{self.domain}>"

    def _links(self, recipient: Subscriber | Recipient) -> tuple[dict[str, str], str, str]:
        """(List-Unsubscribe headers, unsubscribe URL, preferences URL) for one subscriber.

        tokens.py builds them for a stand-in subscriber once per skeleton; each
        recipient only needs their own signed tokens swapped in, which keeps
        tokens.py the one place that decides what the links look like.
        """
        subscriber = cast(Subscriber, recipient)  # tokens.py reads only `token`
        if self.link_samples is None:
            headers = list_unsubscribe_headers(subscriber, self.newsletter)
            return (
                headers,
                unsubscribe_url(subscriber, self.newsletter),
                preferences_url(subscriber),
            )
        unsubscribe_sample, preferences_sample, headers_sample, url_sample, prefs_sample = (
            self.link_samples
        )
        token = unsubscribe_token(subscriber, self.newsletter)
        headers = {
            name: value.replace(unsubscribe_sample, token) for name, value in headers_sample.items()
        }
        preferences = prefs_sample.replace(preferences_sample, preferences_token(subscriber))
        return headers, url_sample.replace(unsubscribe_sample, token), preferences

    def personalise(
        self, *, delivery_id: int, subscriber: Subscriber | Recipient, build_data: bool = True
    ) -> PersonalCopy:
        """One recipient's copy; `build_data=False` skips the MIME bytes (the ESP path
        sends only the values and headers)."""
        list_headers, unsubscribe, preferences = self._links(subscriber)
        values = {
            UNSUBSCRIBE_MARK: unsubscribe,
            PREFERENCES_MARK: preferences,
            GREETING_MARK: greeting_for(subscriber.name),
        }
        headers = {
            "Message-ID": self.message_id(delivery_id),
            "List-Id": self.list_id,
            "Precedence": "bulk",
            **list_headers,
        }
        copy = PersonalCopy(skeleton=self, to=subscriber.email, values=values, headers=headers)
        if not build_data:
            return copy
        try:
            subscriber.email.encode("ascii")
        except UnicodeEncodeError:
            return copy  # an internationalised address: let Django build the message
        b = self.boundary
        copy.data = b"".join(
            [
                self.head,
                f"To: {subscriber.email}\r\n"
                f"Date: {_date_header()}\r\n"
                f"Message-ID: {headers['Message-ID']}\r\n"
                f"List-Unsubscribe: {list_headers['List-Unsubscribe']}\r\n"
                f"List-Unsubscribe-Post: {list_headers['List-Unsubscribe-Post']}\r\n"
                f"\r\n--{b}\r\n"
                'Content-Type: text/plain; charset="utf-8"\r\n'
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode("ascii"),
                self.text_qp.fill(values),
                f"\r\n--{b}\r\n"
                'Content-Type: text/html; charset="utf-8"\r\n'
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode("ascii"),
                self.html_qp.fill({mark: html_escape(value) for mark, value in values.items()}),
                f"\r\n--{b}--\r\n".encode("ascii"),
            ]
        )
        return copy


_date: tuple[int, str] = (0, "")


def _date_header() -> str:
    """RFC 5322 date of this second (formatted once per second, not per message)."""
    global _date
    second = int(time.time())
    if _date[0] != second:
        _date = (second, formatdate(second, localtime=False))
    return _date[1]


_MARKS = re.compile(f"({UNSUBSCRIBE_MARK}|{PREFERENCES_MARK}|{GREETING_MARK})")


class QpTemplate:
    """A body encoded quoted-printable once, with slots for the personal values.

    Each slot sits on lines of its own (soft line breaks around it), so a value
    encoded on its own joins the pre-encoded pieces without breaking the
    76-character line rule; per message only the short values are encoded.
    """

    def __init__(self, content: str) -> None:
        pieces = _MARKS.split(content)
        self.slots = pieces[1::2]
        texts = pieces[0::2]
        self.parts = [self._piece(t, last=i == len(texts) - 1) for i, t in enumerate(texts)]

    @staticmethod
    def _piece(piece: str, *, last: bool) -> bytes:
        encoded = _qp(piece)
        return encoded if last or encoded.endswith(b"\r\n") else encoded + b"=\r\n"

    def fill(self, values: dict[str, str]) -> bytes:
        out = [self.parts[0]]
        for slot, part in zip(self.slots, self.parts[1:], strict=True):
            out.append(self._piece(values[slot], last=False))
            out.append(part)
        return b"".join(out)


@dataclass
class PersonalCopy:
    """One recipient's copy: final MIME bytes, plus the parts for non-SMTP backends."""

    skeleton: MessageSkeleton
    to: str
    values: dict[str, str]
    headers: dict[str, str]
    data: bytes | None = None

    @property
    def text(self) -> str:
        text = self.skeleton.text
        for mark, value in self.values.items():
            text = text.replace(mark, value)
        return text

    @property
    def html(self) -> str:
        html = self.skeleton.html
        for mark, value in self.values.items():
            html = html.replace(mark, html_escape(value))
        return html

    def email_message(self) -> IssueMessage:
        """The copy as a Django message (anymail, locmem, or a non-ASCII address)."""
        message = IssueMessage(
            subject=self.skeleton.subject,
            body=self.text,
            from_email=self.skeleton.from_header,
            to=[self.to],
            reply_to=[self.skeleton.reply_to],
            headers=self.headers,
        )
        message.attach_alternative(self.html, "text/html")
        message.prebuilt = self.data
        return message


_skeletons: dict[tuple[int, str], MessageSkeleton] = {}


def skeleton_for(issue: Issue) -> MessageSkeleton:
    """The process-wide skeleton of a sending issue (built on first use)."""
    key = (issue.pk, f"{issue.started_at}")
    skeleton = _skeletons.get(key)
    if skeleton is None:
        _skeletons.clear()
        skeleton = _skeletons[key] = MessageSkeleton.build(issue=issue)
    return skeleton


# --- Planning ----------------------------------------------------------------------


def planner_statistics_ensure(*models: type[Model]) -> None:
    """ANALYZE the tables PostgreSQL holds no statistics for (never analysed).

    Without statistics the planner takes a table for a few pages and plans each
    batch's lookups by id as sequential scans of every delivery and subscriber.
    Autovacuum fills them in eventually, but not before a send that starts right
    after an import, or at all where autovacuum is off. A no-op elsewhere.
    """
    if db_connection.vendor != "postgresql":
        return
    tables = [model._meta.db_table for model in models]
    with db_connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE oid = ANY(%s::regclass[]) AND reltuples < 0",
            [tables],
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f"ANALYZE {db_connection.ops.quote_name(table)}")


def deliveries_plan(*, issue: Issue, on_first_chunk=None) -> int:
    """Create a pending delivery for every recipient of the issue; returns the total.

    Walks subscribers by primary key, PLAN_CHUNK_SIZE at a time, so memory stays
    flat and a crashed plan can simply run again. `on_first_chunk` lets sending
    start while the rest is still being planned.
    """
    recipients = newsletter_recipients(issue.newsletter, issue.segment or Segment.ALL)
    planner_statistics_ensure(Subscriber, Subscription, Suppression)
    last_id = 0
    first = True
    while True:
        ids = list(recipients.filter(pk__gt=last_id).values_list("pk", flat=True)[:PLAN_CHUNK_SIZE])
        if not ids:
            break
        if db_connection.vendor == "postgresql":  # one array parameter, no model instances
            with db_connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {Delivery._meta.db_table} "  # noqa: S608 (the model's table)
                    "(issue_id, subscriber_id, status, attempts, error) "
                    "SELECT %s, unnest(%s::bigint[]), %s, 0, '' ON CONFLICT DO NOTHING",
                    [issue.pk, ids, Delivery.Status.PENDING.value],
                )
        else:
            Delivery.objects.bulk_create(
                [Delivery(issue_id=issue.pk, subscriber_id=pk) for pk in ids],
                ignore_conflicts=True,
                batch_size=PLAN_CHUNK_SIZE,
            )
        last_id = ids[-1]
        if first:
            planner_statistics_ensure(Delivery)
            if on_first_chunk is not None:
                on_first_chunk()
        first = False
    total = Delivery.objects.filter(issue=issue).count()
    Issue.objects.filter(pk=issue.pk).update(
        planned_count=total, planned_at=timezone.now(), heartbeat_at=timezone.now()
    )
    return total


# --- Claiming ------------------------------------------------------------------------


@dataclass(slots=True)
class Recipient:
    """What sending needs of a subscriber (built from one query row, not a model)."""

    pk: int
    email: str
    name: str
    token: uuid.UUID


@dataclass(slots=True)
class Claimed:
    """A delivery leased to this batch."""

    pk: int
    attempts: int
    subscriber: Recipient
    #: May the subscriber still get the newsletter (asked in the same query as the claim)?
    mailable: bool = True

    @property
    def subscriber_id(self) -> int:
        return self.subscriber.pk


def _due(now: datetime) -> Q:
    return Q(status=Delivery.Status.PENDING) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )


def _lease_expired(now: datetime) -> Q:
    return Q(status=Delivery.Status.SENDING, leased_until__lt=now)


def claimable(now: datetime) -> Q:
    """Rows a batch may take: due pending rows, and rows whose worker's lease ran out."""
    return _due(now) | _lease_expired(now)


def deliveries_claim(
    *, issue_id: int, size: int, newsletter: Newsletter | None = None
) -> tuple[uuid.UUID, list[Claimed]]:
    """Lease up to `size` claimable deliveries of the issue to this caller.

    With `newsletter`, each claimed row also says whether its subscriber may still
    get that newsletter (`newsletter_recipients`, asked in the same query).

    The UPDATE repeats the claimable condition, so of two workers that picked
    the same candidates only one gets each row (SQLite serialises writers;
    PostgreSQL locks candidates with SKIP LOCKED first, so they rarely overlap).
    Pending rows and expired leases are looked up separately, each walking the
    (issue, status, id) index in order and stopping at `size`: one query with
    an OR would collect and sort every pending row of the issue on each claim.
    """
    token = uuid.uuid4()
    now = timezone.now()
    rows = Delivery.objects.filter(issue_id=issue_id).order_by("id")
    lookups = [rows.filter(_due(now)), rows.filter(_lease_expired(now))]
    with transaction.atomic():
        ids: list[int] = []
        for candidates in lookups:
            if db_connection.features.has_select_for_update_skip_locked:
                candidates = candidates.select_for_update(skip_locked=True)
            ids += candidates.values_list("id", flat=True)[: size - len(ids)]
            if len(ids) >= size:
                break
        if not ids:
            return token, []
        Delivery.objects.filter(claimable(now), id__in=ids).update(
            status=Delivery.Status.SENDING,
            lease_token=token,
            leased_until=now + timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS),
            attempts=F("attempts") + 1,
        )
    leased = Delivery.objects.filter(
        id__in=ids, lease_token=token, status=Delivery.Status.SENDING
    ).annotate(
        mailable=Exists(
            newsletter_recipients(newsletter, Segment.ALL).filter(pk=OuterRef("subscriber_id"))
        )
        if newsletter is not None
        else Value(True)
    )
    found = leased.order_by("id").values_list(
        "id", "attempts", "subscriber_id", "subscriber__email", "subscriber__name",
        "subscriber__token", "mailable",
    )  # fmt: skip
    claimed = [
        Claimed(pk, attempts, Recipient(subscriber_id, email, name, link_token), mailable)
        for pk, attempts, subscriber_id, email, name, link_token, mailable in found
    ]
    return token, claimed


# --- Recording outcomes ------------------------------------------------------------


SENT_STATEMENT = b"outlet_delivery_sent"
_SENT = Delivery.Status.SENT.value.encode()
#: Replies to pipelined outcome writes read at least this often (bounds the socket buffers).
UNREAD_REPLIES_MAX = 25


class OutcomeRecorder:
    """Writes each outcome as soon as it is known, guarded by the lease token.

    One short autocommit UPDATE per message. On PostgreSQL the "sent" UPDATE is
    handed to the server (written to its socket) before the next message goes
    out, and its reply is read while that message travels, so recording costs
    no extra round trip: a statement the server has received is executed even
    if this worker is killed a moment later. The session also skips waiting for
    the WAL flush (synchronous_commit off) during the batch: a worker crash
    loses nothing that way; only a crash of the database server itself could
    forget the last few outcomes, and those messages would go out again.
    """

    def __init__(self, token: uuid.UUID) -> None:
        self.token = token
        self.table = Delivery._meta.db_table
        self.token_db = Delivery._meta.get_field("lease_token").get_db_prep_value(
            token, db_connection
        )
        self.token_bytes = str(token).encode()
        self.postgres = db_connection.vendor == "postgresql"
        self.pgconn: Any = None
        self.awaiting_reply = False
        self.pipelined = False
        self.unread_syncs = 0
        self.pipeline_error: bytes | None = None
        self.sent_subscriber_ids: list[int] = []
        self.counts = {"sent": 0, "failed": 0, "retry": 0, "skipped": 0}
        self.renewed_at = time.monotonic()  # the claim has just set the lease

    def __enter__(self) -> OutcomeRecorder:
        if self.postgres:
            with db_connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit TO OFF")
            self.pgconn = db_connection.connection.pgconn
            sent_sql = (
                f"UPDATE {self.table} SET status = $1, sent_at = $2, lease_token = NULL, "  # noqa: S608 (table name from the model)
                "leased_until = NULL, error = '' WHERE id = $3 AND lease_token = $4"
            ).encode()
            # Prepared once per batch, so the server parses and plans it once, not per message.
            self.pgconn.send_prepare(SENT_STATEMENT, sent_sql)
            self.awaiting_reply = True
            self.drain()
        return self

    def __exit__(self, *exc) -> None:
        self.drain()
        if self.postgres:
            with db_connection.cursor() as cursor:
                cursor.execute(f"DEALLOCATE {SENT_STATEMENT.decode()}")
                cursor.execute("RESET synchronous_commit")

    def drain(self) -> None:
        """Read every reply still due from the server; call before any other query."""
        if self.pgconn is None:
            return
        from psycopg import DatabaseError, pq

        error = None
        if self.awaiting_reply:
            self.awaiting_reply = False
            while (reply := self.pgconn.get_result()) is not None:
                if reply.status != pq.ExecStatus.COMMAND_OK:
                    error = reply.error_message
        if self.pipelined:
            error = self._read_replies() or self.pipeline_error or error
            self.pipeline_error = None
            self.pgconn.exit_pipeline_mode()
            self.pipelined = False
        if error:
            message = (error or b"").decode(errors="replace")
            raise DatabaseError(f"recording a sent delivery failed: {message}")

    def _read_replies(self) -> bytes | None:
        """Read the replies to the pipelined outcomes sent so far (staying in pipeline
        mode); the last error message, if any."""
        from psycopg import pq

        error = None
        while self.unread_syncs:
            reply = self.pgconn.get_result()
            if reply is None:
                continue  # the end of one statement's results
            if reply.status == pq.ExecStatus.PIPELINE_SYNC:
                self.unread_syncs -= 1
            elif reply.status != pq.ExecStatus.COMMAND_OK:
                error = reply.error_message
        return error

    def sent(self, delivery: Claimed) -> None:
        now = timezone.now()
        if self.pgconn is not None:
            # Pipeline mode: the UPDATE and a Sync (its own commit) go to the server at
            # once and this worker moves on; the replies are read in batches.
            if not self.pipelined:
                self.drain()
                self.pgconn.enter_pipeline_mode()
                self.pipelined = True
            self.pgconn.send_query_prepared(
                SENT_STATEMENT,
                [_SENT, now.isoformat().encode(), b"%d" % delivery.pk, self.token_bytes],
            )
            self.pgconn.pipeline_sync()
            self.unread_syncs += 1
            if self.unread_syncs >= UNREAD_REPLIES_MAX:
                self.pipeline_error = self._read_replies() or self.pipeline_error
                if self.pipeline_error:
                    self.drain()  # leaves pipeline mode and raises it
        else:
            with db_connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {self.table} SET status = %s, sent_at = %s, lease_token = NULL, "  # noqa: S608 (table name from the model)
                    "leased_until = NULL, error = '' WHERE id = %s AND lease_token = %s",
                    [
                        Delivery.Status.SENT.value,
                        db_connection.ops.adapt_datetimefield_value(now),
                        delivery.pk,
                        self.token_db,
                    ],
                )
        self.sent_subscriber_ids.append(delivery.subscriber_id)
        self.counts["sent"] += 1

    def failed(self, delivery: Claimed, error: str) -> None:
        self.drain()
        Delivery.objects.filter(pk=delivery.pk, lease_token=self.token).update(
            status=Delivery.Status.FAILED, lease_token=None, leased_until=None, error=error[:300]
        )
        self.counts["failed"] += 1

    def retry_later(self, delivery: Claimed, error: str) -> bool:
        """Back to pending with exponential backoff; False once attempts are used up."""
        self.drain()
        if delivery.attempts >= settings.NEWSLETTER_MAX_ATTEMPTS:
            self.failed(delivery, f"gave up after {delivery.attempts} attempts: {error}")
            return False
        delay = settings.NEWSLETTER_RETRY_SECONDS * 2 ** max(0, delivery.attempts - 1)
        Delivery.objects.filter(pk=delivery.pk, lease_token=self.token).update(
            status=Delivery.Status.PENDING,
            lease_token=None,
            leased_until=None,
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            error=error[:300],
        )
        self.counts["retry"] += 1
        return True

    def skipped(self, deliveries: list[Claimed]) -> None:
        self.drain()
        if deliveries:
            Delivery.objects.filter(
                pk__in=[d.pk for d in deliveries], lease_token=self.token
            ).update(status=Delivery.Status.SKIPPED, lease_token=None, leased_until=None)
            self.counts["skipped"] += len(deliveries)

    def release(self, deliveries: Iterable[Claimed]) -> None:
        """Hand unsent rows back untouched (pause, cancel, server down): not an attempt."""
        self.drain()
        ids = [d.pk for d in deliveries]
        if ids:
            Delivery.objects.filter(pk__in=ids, lease_token=self.token).update(
                status=Delivery.Status.PENDING,
                lease_token=None,
                leased_until=None,
                attempts=F("attempts") - 1,
            )

    def renew_if_due(self, deliveries: Iterable[Claimed]) -> None:
        """Extend the lease of these rows, if still held, once a third of it has passed."""
        lease = settings.NEWSLETTER_LEASE_SECONDS
        if time.monotonic() - self.renewed_at < lease / 3:
            return
        self.drain()
        Delivery.objects.filter(
            pk__in=[d.pk for d in deliveries],
            lease_token=self.token,
            status=Delivery.Status.SENDING,
        ).update(leased_until=timezone.now() + timedelta(seconds=lease))
        self.renewed_at = time.monotonic()

    def finish(self) -> None:
        """A delivery ends a run of soft bounces (one query for the batch)."""
        self.drain()
        if self.sent_subscriber_ids:
            Subscriber.objects.filter(
                pk__in=self.sent_subscriber_ids, soft_bounce_count__gt=0
            ).update(soft_bounce_count=0)


# --- Rate limit ----------------------------------------------------------------------


class RateLimiter:
    """A fixed one-second window counted in the cache (global when the cache is Redis)."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second

    def acquire(self) -> None:
        if self.per_second <= 0:
            return
        while True:
            second = int(time.time())
            key = f"newsletters:rate:{second}"
            cache.add(key, 0, timeout=5)
            try:
                used = cache.incr(key)
            except ValueError:
                used = 1
            if used <= self.per_second:
                return
            time.sleep(max(0.0, second + 1 - time.time()) + 0.001)


# --- Sending a batch -----------------------------------------------------------------


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retry: int = 0
    skipped: int = 0
    stopped: str = ""

    def counts_take(self, counts: dict[str, int]) -> None:
        self.sent, self.failed = counts["sent"], counts["failed"]
        self.retry, self.skipped = counts["retry"], counts["skipped"]


def _still_sending(recorder: OutcomeRecorder, issue_id: int, remaining: list[Claimed]) -> bool:
    """Between messages or calls: is the issue still sending? Renews the lease if due."""
    recorder.drain()
    status = Issue.objects.filter(pk=issue_id).values_list("status", flat=True).first()
    if status != Issue.Status.SENDING:
        return False
    recorder.renew_if_due(remaining)
    return True


def _smtp_code(exc: Exception, address: str) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, _ = exc.recipients.get(address, (None, b""))
        return code
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code
    return None


_CONNECTION_ERRORS = (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError)


def _open(mail_connection, sender: str) -> SmtpPipe | None:
    """Connect; on Django's SMTP backend, a pipe if the server offers PIPELINING."""
    try:
        mail_connection.open()
        if isinstance(mail_connection, SmtpBackend):
            return SmtpPipe.on(mail_connection, sender)
    except _CONNECTION_ERRORS as exc:
        raise MailServerDown(f"Mail server unreachable: {exc}") from exc
    return None


def _reopen(mail_connection, sender: str) -> SmtpPipe | None:
    with contextlib.suppress(Exception):  # the old connection is gone either way
        mail_connection.close()
    mail_connection.connection = None
    return _open(mail_connection, sender)


_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


class SmtpPipe:
    """One SMTP connection driven with PIPELINING (RFC 2920): one round trip per message.

    Message k's content, its closing dot and the next recipient's MAIL, RCPT and
    DATA go out in one write; the server's verdict on message k and its answers
    to the next envelope come back together. The next message's content is
    written only after message k's verdict has been read (and recorded by the
    caller), so at most one message is ever in flight on the connection: the
    guarantee's one possible duplicate per connection that dies.
    """

    def __init__(self, smtp: smtplib.SMTP, sender: str) -> None:
        self.smtp = smtp
        self.sender = sender
        #: The recipient whose envelope is on the wire with its replies unread.
        self.announced: str | None = None

    @classmethod
    def on(cls, mail_connection: Any, sender: str) -> SmtpPipe | None:
        """A pipe on Django's open SMTP connection; None if the server cannot pipeline."""
        smtp = cast(smtplib.SMTP, mail_connection.connection)
        smtp.ehlo_or_helo_if_needed()
        return cls(smtp, sender) if smtp.has_extn("pipelining") else None

    def _envelope(self, recipient: str) -> bytes:
        return f"MAIL FROM:<{self.sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode("ascii")

    def begin(self, recipient: str) -> None:
        """Have the server waiting for `recipient`'s message, or raise its refusal."""
        if self.announced != recipient:
            self.smtp.send(self._envelope(recipient))
        self.announced = None
        smtp = self.smtp
        mail, rcpt, data = smtp.getreply(), smtp.getreply(), smtp.getreply()
        if mail[0] == 250 and rcpt[0] in (250, 251) and data[0] == 354:
            return
        if data[0] == 354:  # the server wants a message after all: end it empty
            smtp.send(b".\r\n")
            smtp.getreply()
        smtp.rset()
        if mail[0] != 250:
            raise smtplib.SMTPSenderRefused(mail[0], mail[1], self.sender)
        if rcpt[0] not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({recipient: rcpt})
        raise smtplib.SMTPDataError(*data)

    def send(self, data: bytes, *, then: str | None = None) -> None:
        """Write the message and, when given, the next recipient's envelope behind it."""
        body = _LEADING_DOT.sub(b"..", data) if data[:1] == b"." or b"\n." in data else data
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        self.smtp.send(body + b".\r\n" + (self._envelope(then) if then else b""))
        self.announced = then

    def verdict(self) -> None:
        """The server's answer to the message just sent: accepted, or SMTPDataError."""
        code, message = self.smtp.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, message)

    def abandon(self) -> None:
        """Drop the connection without QUIT if the server is waiting for a message's
        content (QUIT would be read as content; a message cut short is not delivered)."""
        if self.announced is not None:
            with contextlib.suppress(Exception):
                self.smtp.close()


def batch_send(*, issue_id: int, size: int | None = None) -> BatchResult:
    """Claim one batch of the issue's deliveries and send it over one connection.

    Raises MailServerDown (after handing the unsent rows back) when the mail
    server cannot be reached, so the caller can pause the issue.
    """
    result = BatchResult()
    issue = (
        Issue.objects.select_related("newsletter")
        .defer("rendered_html", "rendered_text")  # read once per process, by skeleton_for
        .filter(pk=issue_id)
        .first()
    )
    if issue is None or issue.status != Issue.Status.SENDING:
        result.stopped = "not sending"
        return result
    token, claimed = deliveries_claim(
        issue_id=issue_id, size=size or settings.NEWSLETTER_BATCH_SIZE, newsletter=issue.newsletter
    )
    result.claimed = len(claimed)
    if not claimed:
        return result
    Issue.objects.filter(pk=issue_id).update(heartbeat_at=timezone.now())
    skeleton = skeleton_for(issue)
    limiter = RateLimiter(settings.NEWSLETTER_RATE_LIMIT_PER_SECOND)
    esp_mode = esp_batch_mode()
    if esp_mode is not None:
        return _esp_batch_send(
            issue_id=issue_id,
            token=token,
            claimed=claimed,
            skeleton=skeleton,
            limiter=limiter,
            mode=esp_mode,
            result=result,
        )

    with OutcomeRecorder(token) as recorder:
        recorder.skipped([d for d in claimed if not d.mailable])
        queue = [d for d in claimed if d.mailable]
        mail_connection = mailers.default
        direct = isinstance(mail_connection, SmtpBackend)
        pipe: SmtpPipe | None = None
        upcoming: PersonalCopy | None = None  # the next message, built while the server works
        position = 0
        next_check = time.monotonic() + CHECK_SECONDS
        try:
            if queue:
                pipe = _open(mail_connection, skeleton.envelope_from)
            while position < len(queue):
                if (pipe is None or pipe.announced is None) and time.monotonic() >= next_check:
                    if not _still_sending(recorder, issue_id, queue[position:]):
                        result.stopped = "paused or cancelled"
                        break
                    next_check = time.monotonic() + CHECK_SECONDS
                delivery = queue[position]
                email = delivery.subscriber.email
                copy = upcoming or skeleton.personalise(
                    delivery_id=delivery.pk, subscriber=delivery.subscriber
                )
                upcoming = None
                limiter.acquire()
                try:
                    if pipe is not None and copy.data is not None:
                        pipe.begin(email)
                        following = queue[position + 1] if position + 1 < len(queue) else None
                        if (
                            following is None
                            or not following.subscriber.email.isascii()
                            or time.monotonic() >= next_check  # no envelope across a check
                        ):
                            following = None
                        pipe.send(copy.data, then=following.subscriber.email if following else None)
                        if following is not None:
                            upcoming = skeleton.personalise(
                                delivery_id=following.pk, subscriber=following.subscriber
                            )
                        pipe.verdict()
                    elif direct and copy.data is not None:
                        # A server without PIPELINING: the skeleton's bytes as they are,
                        # on the backend's open connection (no re-parse of addresses).
                        smtp = cast(smtplib.SMTP, cast(SmtpBackend, mail_connection).connection)
                        smtp.sendmail(skeleton.envelope_from, [email], copy.data)
                    else:
                        mail_connection.send_messages([copy.email_message()])
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException) as exc:
                    _record_refusal(recorder, delivery, exc)
                except _CONNECTION_ERRORS as exc:
                    # The message may or may not have been accepted before the drop;
                    # retrying risks one duplicate, skipping risks a loss: retry.
                    recorder.retry_later(delivery, f"connection lost: {exc}")
                    position += 1
                    pipe = _reopen(mail_connection, skeleton.envelope_from)
                    continue
                else:
                    recorder.sent(delivery)
                position += 1
        except MailServerDown:
            recorder.release(queue[position:])
            raise
        finally:
            if position < len(queue) and result.stopped:
                recorder.release(queue[position:])
            if pipe is not None:
                pipe.abandon()
            with contextlib.suppress(Exception):  # closing a dead connection
                mail_connection.close()
            recorder.finish()
    result.counts_take(recorder.counts)
    return result


def _record_refusal(recorder: OutcomeRecorder, delivery: Claimed, exc: Exception) -> None:
    from outlet.newsletters.models import Suppression
    from outlet.newsletters.services import email_suppress, subscriber_soft_bounce_record

    email = delivery.subscriber.email
    code = _smtp_code(exc, email) or 0
    error = f"{code} {exc}"
    if 400 <= code < 500:
        if not recorder.retry_later(delivery, error):
            subscriber_soft_bounce_record(email=email, detail=error[:300])
        return
    recorder.failed(delivery, error)
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and code >= 500:
        # The server refused the address itself: never mail it again.
        email_suppress(email=email, reason=Suppression.Reason.HARD_BOUNCE, detail=error[:300])


# --- ESP batch sending (anymail merge data) -----------------------------------------

#: anymail backends whose ESP sends a batch with on-the-fly (non-template) content and
#: per-recipient merge data, with the ESP's merge-field syntax (a `str.format` pattern
#: for a key). HTML gets pre-escaped values, so every syntax here substitutes verbatim.
#: Postmark (merge data only with stored templates), Amazon SES (likewise) and Resend
#: are not here: they keep the per-message path.
ESP_MERGE_FIELD_FORMATS: dict[str, str] = {
    "anymail.backends.mailgun.EmailBackend": "%recipient.{}%",
    "anymail.backends.sparkpost.EmailBackend": "{{{{{{{}}}}}}}",  # {{{key}}}: not escaped
    "anymail.backends.sendgrid.EmailBackend": "-{}-",  # legacy substitutions
}
#: Backends that need to be told the format (anymail builds their substitution keys).
_ESP_TELL_FORMAT = {"anymail.backends.sendgrid.EmailBackend"}

#: What each per-recipient marker becomes in the merge data (text key, HTML key).
_MERGE_KEYS = {
    UNSUBSCRIBE_MARK: ("unsubscribe_url", "unsubscribe_url_html"),
    PREFERENCES_MARK: ("preferences_url", "preferences_url_html"),
    GREETING_MARK: ("greeting", "greeting_html"),
}
#: anymail statuses that mean the ESP took the message for this recipient. "unknown"
#: is a call the ESP accepted without saying per recipient (SparkPost's mixed result):
#: sending again would duplicate the accepted ones, and bounces arrive by webhook.
_ESP_ACCEPTED = {"sent", "queued", "unknown"}
_ESP_REFUSED = {"rejected", "invalid"}


@dataclass(frozen=True)
class EspMode:
    merge_field_format: str
    esp_extra: dict[str, Any]


_esp_modes: dict[tuple[str, str], EspMode | None] = {}


def esp_batch_mode() -> EspMode | None:
    """How to batch through the configured anymail ESP, or None for the per-message path.

    NEWSLETTER_ESP_MERGE_FIELD_FORMAT: empty picks the format from EMAIL_BACKEND
    (`ESP_MERGE_FIELD_FORMATS`), "off" never batches, anything else is the format
    (for an ESP not in the table, or anymail's test backend). Only anymail backends
    batch; Django's SMTP, locmem and console backends always send per message.
    """
    backend = settings.EMAIL_BACKEND
    configured = settings.NEWSLETTER_ESP_MERGE_FIELD_FORMAT
    key = (backend, configured)
    if key not in _esp_modes:
        _esp_modes[key] = _esp_mode_resolve(backend, configured)
    return _esp_modes[key]


def _esp_mode_resolve(backend: str, configured: str) -> EspMode | None:
    from anymail.backends.base import AnymailBaseBackend
    from django.utils.module_loading import import_string

    if configured.lower() == "off" or not issubclass(import_string(backend), AnymailBaseBackend):
        return None
    merge_format = configured or ESP_MERGE_FIELD_FORMATS.get(backend)
    if not merge_format:
        return None
    extra = {"merge_field_format": merge_format} if backend in _ESP_TELL_FORMAT else {}
    return EspMode(merge_field_format=merge_format, esp_extra=extra)


@dataclass(frozen=True)
class EspTemplate:
    """The issue's bodies with the ESP's merge fields where the personal values go."""

    text: str
    html: str

    @classmethod
    def build(cls, skeleton: MessageSkeleton, merge_field_format: str) -> EspTemplate:
        text, html = skeleton.text, skeleton.html
        for mark, (text_key, html_key) in _MERGE_KEYS.items():
            text = text.replace(mark, merge_field_format.format(text_key))
            html = html.replace(mark, merge_field_format.format(html_key))
        return cls(text=text, html=html)


_esp_templates: dict[tuple[int, str], EspTemplate] = {}


def esp_template_for(skeleton: MessageSkeleton, merge_field_format: str) -> EspTemplate:
    key = (id(skeleton), merge_field_format)
    template = _esp_templates.get(key)
    if template is None:
        _esp_templates.clear()
        template = _esp_templates[key] = EspTemplate.build(skeleton, merge_field_format)
    return template


def esp_batch_message(
    *, skeleton: MessageSkeleton, mode: EspMode, deliveries: list[Claimed]
) -> Any:
    """One AnymailMessage for a chunk: anymail sends each `to` address its own copy,
    with its own merge data (links, greeting), headers and metadata (the delivery id)."""
    from anymail.message import AnymailMessage

    template = esp_template_for(skeleton, mode.merge_field_format)
    merge_data: dict[str, dict[str, str]] = {}
    merge_headers: dict[str, dict[str, str]] = {}
    merge_metadata: dict[str, dict[str, str]] = {}
    for delivery in deliveries:
        copy = skeleton.personalise(
            delivery_id=delivery.pk, subscriber=delivery.subscriber, build_data=False
        )
        address = delivery.subscriber.email
        data: dict[str, str] = {}
        for mark, (text_key, html_key) in _MERGE_KEYS.items():
            data[text_key] = copy.values[mark]
            data[html_key] = html_escape(copy.values[mark])
        merge_data[address] = data
        merge_headers[address] = {
            name: copy.headers[name]
            for name in ("Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post")
        }
        merge_metadata[address] = {"delivery_id": str(delivery.pk)}
    message = AnymailMessage(
        subject=skeleton.subject,
        body=template.text,
        from_email=skeleton.from_header,
        to=list(merge_data),
        reply_to=[skeleton.reply_to],
        headers={"List-Id": skeleton.list_id, "Precedence": "bulk"},
    )
    message.attach_alternative(template.html, "text/html")
    message.merge_data = merge_data
    message.merge_headers = merge_headers
    message.merge_metadata = merge_metadata
    message.metadata = {"issue_id": str(skeleton.issue_id)}
    if mode.esp_extra:
        message.esp_extra = dict(mode.esp_extra)
    return message


def _esp_batch_send(
    *,
    issue_id: int,
    token: uuid.UUID,
    claimed: list[Claimed],
    skeleton: MessageSkeleton,
    limiter: RateLimiter,
    mode: EspMode,
    result: BatchResult,
) -> BatchResult:
    """`batch_send` through an ESP's batch API: one call per NEWSLETTER_ESP_BATCH_SIZE
    recipients, each call's outcomes recorded as soon as it returns.

    Every recipient of a call is in flight until it returns, so a worker killed
    mid-call can duplicate at most that call's recipients. An error from the call
    itself (ESP down, refused request) sends the chunk back to retry with backoff,
    hands the rest back untouched and raises MailServerDown so the issue pauses.
    """
    from anymail.exceptions import AnymailError, AnymailRecipientsRefused

    from outlet.newsletters.services import email_suppress, subscriber_soft_bounce_record

    chunk_size = max(1, settings.NEWSLETTER_ESP_BATCH_SIZE)
    with OutcomeRecorder(token) as recorder:
        recorder.skipped([d for d in claimed if not d.mailable])
        queue = [d for d in claimed if d.mailable]
        mail_connection = mailers.default
        position = 0
        try:
            if queue:
                mail_connection.open()  # one HTTP session (kept alive) for the batch's calls
            while position < len(queue):
                # The claim has just checked the status.
                if position and not _still_sending(recorder, issue_id, queue[position:]):
                    result.stopped = "paused or cancelled"
                    break
                chunk = queue[position : position + chunk_size]
                message = esp_batch_message(skeleton=skeleton, mode=mode, deliveries=chunk)
                for _ in chunk:
                    limiter.acquire()
                try:
                    mail_connection.send_messages([message])
                except AnymailRecipientsRefused:
                    pass  # every address refused: the statuses below say so, per recipient
                except (AnymailError, OSError) as exc:
                    error = f"ESP call failed: {exc}"
                    for delivery in chunk:
                        recorder.retry_later(delivery, error)
                    position += len(chunk)
                    raise MailServerDown(f"The email service refused the batch: {exc}") from exc
                position += len(chunk)
                recipients = message.anymail_status.recipients
                for delivery in chunk:
                    email = delivery.subscriber.email
                    outcome = recipients.get(email)
                    status_name = outcome.status if outcome is not None else None
                    if status_name in _ESP_ACCEPTED:
                        recorder.sent(delivery)
                    elif status_name in _ESP_REFUSED:
                        detail = f"ESP {status_name} the address"
                        recorder.failed(delivery, detail)
                        email_suppress(
                            email=email, reason=Suppression.Reason.HARD_BOUNCE, detail=detail
                        )
                    else:  # "failed" (or no answer for this address): try again later
                        detail = f"ESP status {status_name or 'missing'}"
                        if not recorder.retry_later(delivery, detail):
                            subscriber_soft_bounce_record(email=email, detail=detail)
        finally:
            if position < len(queue):
                recorder.release(queue[position:])
            with contextlib.suppress(Exception):
                mail_connection.close()
            recorder.finish()
    result.counts_take(recorder.counts)
    return result


# --- Progress ------------------------------------------------------------------------


def delivery_counts(*, issue: Issue) -> dict[str, int]:
    from django.db.models import Count

    counts = {status.value: 0 for status in Delivery.Status}
    for row in Delivery.objects.filter(issue=issue).values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def next_wake_seconds(*, issue_id: int) -> float | None:
    """Seconds until some waiting row (leased elsewhere or backing off) becomes claimable."""
    now = timezone.now()
    earliest = Delivery.objects.filter(
        issue_id=issue_id, status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING]
    ).aggregate(lease=Min("leased_until"), retry=Min("next_attempt_at"))
    times = [t for t in (earliest["lease"], earliest["retry"]) if t is not None]
    if not times:
        remaining = Delivery.objects.filter(
            issue_id=issue_id, status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING]
        ).exists()
        return 0.0 if remaining else None
    return max(0.0, (min(times) - now).total_seconds())
