"""The MIME skeleton: an issue serialised once per process, personalised per recipient.

Contract: `skeleton_for(issue)` returns the process's skeleton of a sending issue
(keyed by issue and start time; rebuilt when either changes); `personalise` gives
one recipient's copy as ready MIME bytes (SMTP) and as values and headers (ESP,
locmem, non-ASCII addresses), each copy built from that skeleton only, never from
another issue's. Anything derived from a skeleton (the ESP's merge template) is
cached on the skeleton itself, so it dies with it.
"""

from __future__ import annotations

import binascii
import email.policy
import re
import time
import uuid
from dataclasses import dataclass, field
from email.header import Header
from email.utils import formataddr, formatdate
from html import escape as html_escape
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils import translation

from outlet.core.dkim_config import dkim_signer
from outlet.core.language import recipient_language
from outlet.newsletters.measuring.links import DELIVERY_MARK, delivery_slot, issue_bodies_track
from outlet.newsletters.models import (
    Issue,
    Newsletter,
    Subscriber,
)
from outlet.newsletters.sending.claims import Recipient
from outlet.newsletters.sending.rendering import (
    GREETING_MARK,
    PREFERENCES_MARK,
    UNSUBSCRIBE_MARK,
    greeting_for,
)
from outlet.newsletters.tokens import (
    list_unsubscribe_headers,
    preferences_url,
    unsubscribe_token,
    unsubscribe_url,
)

if TYPE_CHECKING:
    from outlet.newsletters.sending.signing import SkeletonSigning

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


#: What each per-recipient marker becomes in the merge data (text key, HTML key).
MERGE_KEYS = {
    UNSUBSCRIBE_MARK: ("unsubscribe_url", "unsubscribe_url_html"),
    PREFERENCES_MARK: ("preferences_url", "preferences_url_html"),
    GREETING_MARK: ("greeting", "greeting_html"),
    DELIVERY_MARK: ("delivery", "delivery_html"),
}


@dataclass(frozen=True)
class EspTemplate:
    """The issue's bodies with the ESP's merge fields where the personal values go."""

    text: str
    html: str

    @classmethod
    def build(cls, skeleton: MessageSkeleton, merge_field_format: str) -> EspTemplate:
        text, html = skeleton.text, skeleton.html
        for mark, (text_key, html_key) in MERGE_KEYS.items():
            text = text.replace(mark, merge_field_format.format(text_key))
            html = html.replace(mark, merge_field_format.format(html_key))
        return cls(text=text, html=html)


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
    body: BodyTemplate
    #: The DKIM signing of this skeleton's copies (None: sent unsigned).
    signing: SkeletonSigning | None = None
    link_samples: tuple[str, str, dict[str, str], str, str] | None = None
    #: ESP merge templates by merge-field format: built from this skeleton only and
    #: freed with it (a cache keyed by id() outlived its skeleton and, once Python
    #: reused the id, sent one issue's body under another's subject).
    esp_templates: dict[str, EspTemplate] = field(default_factory=dict)

    @classmethod
    def build(cls, *, issue: Issue) -> MessageSkeleton:
        # The unsubscribe and preferences pages its links open are in its language too.
        with translation.override(recipient_language(obj=issue)):
            return cls._build(issue=issue)

    @classmethod
    def _build(cls, *, issue: Issue) -> MessageSkeleton:
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
        # Tracked links and the opens pixel, rewritten once per skeleton (measuring/links.py).
        html, text = issue_bodies_track(
            issue=issue, html=issue.rendered_html, text=issue.rendered_text
        )
        html, text = _crlf(html), _crlf(text)
        html_qp, text_qp = QpTemplate(html), QpTemplate(text)
        body = BodyTemplate(boundary=boundary, text=text_qp, html=html_qp)
        signer = dkim_signer()
        signing = None
        if signer is not None:
            from outlet.newsletters.sending.signing import SkeletonSigning

            signing = SkeletonSigning(signer, head=head, body=body)
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
            html_qp=html_qp,
            text_qp=text_qp,
            head=head,
            boundary=boundary,
            body=body,
            signing=signing,
        )
        stand_in = Subscriber(token=uuid.uuid4())
        unsubscribe_sample = unsubscribe_token(stand_in, newsletter)
        headers_sample = list_unsubscribe_headers(stand_in, newsletter)
        url_sample = unsubscribe_url(stand_in, newsletter)
        prefs_sample = preferences_url(stand_in)  # the reader account: one address for all
        if unsubscribe_sample in url_sample:
            skeleton.link_samples = (
                unsubscribe_sample,
                "",
                headers_sample,
                url_sample,
                prefs_sample,
            )
        return skeleton

    def esp_template(self, merge_field_format: str) -> EspTemplate:
        """The bodies with the ESP's merge fields in place of the personal values."""
        template = self.esp_templates.get(merge_field_format)
        if template is None:
            template = self.esp_templates[merge_field_format] = EspTemplate.build(
                self, merge_field_format
            )
        return template

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
        unsubscribe_sample, _, headers_sample, url_sample, prefs_sample = self.link_samples
        token = unsubscribe_token(subscriber, self.newsletter)
        headers = {
            name: value.replace(unsubscribe_sample, token) for name, value in headers_sample.items()
        }
        return headers, url_sample.replace(unsubscribe_sample, token), prefs_sample

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
            DELIVERY_MARK: delivery_slot(self.issue_id, delivery_id),
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
        personal = [
            (b"To", subscriber.email.encode("ascii")),
            (b"Date", _date_header().encode("ascii")),
            (b"Message-ID", headers["Message-ID"].encode("ascii")),
            (b"List-Unsubscribe", list_headers["List-Unsubscribe"].encode("ascii")),
            (b"List-Unsubscribe-Post", list_headers["List-Unsubscribe-Post"].encode("ascii")),
        ]
        encoded = self.body.encoded(values)
        pieces = self.body.pieces(encoded)
        signature = (
            self.signing.signature(personal=personal, encoded=encoded, pieces=pieces)
            if self.signing is not None
            else b""
        )
        copy.data = b"".join(
            [
                signature,
                self.head,
                *[name + b": " + value + b"\r\n" for name, value in personal],
                b"\r\n",
                *pieces,
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


_MARKS = re.compile(f"({UNSUBSCRIBE_MARK}|{PREFERENCES_MARK}|{GREETING_MARK}|{DELIVERY_MARK})")


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
        if last or encoded.endswith(b"\r\n"):
            return encoded
        # Close with a soft line break. b2a_qp's last line may already be 76 long, and
        # the "=" must fit too: break it once more, never inside an "=XX" escape.
        start = encoded.rfind(b"\r\n") + 2 if b"\r\n" in encoded else 0
        line = encoded[start:]
        if len(line) < 76:
            return encoded + b"=\r\n"
        cut = 73
        while b"=" in line[cut - 2 : cut]:
            cut -= 1
        return encoded[: start + cut] + b"=\r\n" + line[cut:] + b"=\r\n"

    def fill(self, values: dict[str, str]) -> bytes:
        # A value fills many slots (the delivery ends every tracked link): encode it once.
        encoded = {slot: self._piece(value, last=False) for slot, value in values.items()}
        out = [self.parts[0]]
        for slot, part in zip(self.slots, self.parts[1:], strict=True):
            out.append(encoded[slot])
            out.append(part)
        return b"".join(out)


class BodyTemplate:
    """The multipart body as fixed pieces around the recipient's values: fixed[0],
    slot 0, fixed[1], …, fixed[-1].

    Every slot starts a line and every piece but the last ends one (QpTemplate's soft
    line breaks), so the body splits at line ends only: what lets the DKIM signer
    (signing.py) canonicalise the fixed pieces once per skeleton.
    """

    def __init__(self, *, boundary: str, text: QpTemplate, html: QpTemplate) -> None:
        def part_head(subtype: str) -> str:
            return (
                f"--{boundary}\r\n"
                f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            )

        self.fixed: list[bytes] = [part_head("plain").encode("ascii") + text.parts[0]]
        #: (marker, in the HTML part) per slot, in order.
        self.slots: list[tuple[str, bool]] = []
        for slot, part in zip(text.slots, text.parts[1:], strict=True):
            self.slots.append((slot, False))
            self.fixed.append(part)
        self.fixed[-1] += f"\r\n{part_head('html')}".encode("ascii") + html.parts[0]
        for slot, part in zip(html.slots, html.parts[1:], strict=True):
            self.slots.append((slot, True))
            self.fixed.append(part)
        self.fixed[-1] += f"\r\n--{boundary}--\r\n".encode("ascii")

    def encoded(self, values: dict[str, str]) -> dict[tuple[str, bool], bytes]:
        """Each value quoted-printable, once per part it appears in (escaped for HTML)."""
        # A value fills many slots (the delivery ends every tracked link): encode it once.
        encoded: dict[tuple[str, bool], bytes] = {}
        for slot, html in self.slots:
            if (slot, html) not in encoded:
                value = html_escape(values[slot]) if html else values[slot]
                encoded[slot, html] = QpTemplate._piece(value, last=False)
        return encoded

    def pieces(self, encoded: dict[tuple[str, bool], bytes]) -> list[bytes]:
        out = [self.fixed[0]]
        for slot, part in zip(self.slots, self.fixed[1:], strict=True):
            out.append(encoded[slot])
            out.append(part)
        return out


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
    signer = dkim_signer()
    if skeleton is None or (skeleton.signing.signer if skeleton.signing else None) is not signer:
        _skeletons.clear()
        skeleton = _skeletons[key] = MessageSkeleton.build(issue=issue)
    return skeleton
