"""The export formats a list arrives in, each a pure parser from one CSV row to one
neutral `AudienceRecord`: no database and no files, so a fixture test calls them directly.

The format is recognised from the header row (`format_detect`):
- Mailchimp's audience export: "Email Address", "First Name", "Last Name", MEMBER_RATING,
  OPTIN_TIME, OPTIN_IP, CONFIRM_TIME, CONFIRM_IP, …, plus UNSUB_TIME… in the unsubscribed
  file and CLEAN_TIME… in the cleaned one (merge fields vary; extra columns are ignored);
- Substack's subscriber export: email, active_subscription, expiry, plan (free, paid,
  comp, founding, gift; "type" in some exports), email_disabled, created_at,
  stripe_customer_id;
- Ghost's members CSV: id, email, name, note, subscribed_to_emails, complimentary_plan,
  stripe_customer_id, created_at, deleted_at, labels, tiers (products before Ghost 5),
  newsletters (newer versions);
- the generic CSV: a column named "email", and optionally "name" and "status" (a status
  such as unsubscribed, bounced or complained makes a suppression).
Header names are compared normalised: lower case, spaces and hyphens as underscores.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from outlet.newsletters.audience.models import SubscriberImport

Format = SubscriberImport.Format
AUTO = "auto"


class ImportFileError(ValueError):
    """The file as a whole cannot be read: wrong encoding, no header, wrong columns."""


class Status(StrEnum):
    """What the source says of the address: only SUBSCRIBED rows become subscribers."""

    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    CLEANED = "cleaned"
    BOUNCED = "bounced"
    EMAIL_DISABLED = "email_disabled"
    COMPLAINED = "complained"
    #: A generic CSV's status cell in words the import does not know: the row is refused.
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class AudienceRecord:
    """One row of any export, in the terms of this site."""

    line: int
    email: str
    name: str = ""
    status: str = Status.SUBSCRIBED
    opted_in_at: datetime | None = None
    opted_in_ip: str = ""
    confirmed_at: datetime | None = None
    confirmed_ip: str = ""
    stripe_customer_id: str = ""
    plan: str = ""
    labels: tuple[str, ...] = ()
    newsletters: tuple[str, ...] = ()


def record_as_row(record: AudienceRecord) -> list:
    """The record as stored in an import's parts (JSON): line, email and name first, as
    rows stored before formats existed were, which `record_from_row` still reads; values
    left at their default are dropped from the end (a plain CSV's row stays three long)."""
    row = [
        record.line, record.email, record.name, record.status,
        _iso(record.opted_in_at), record.opted_in_ip,
        _iso(record.confirmed_at), record.confirmed_ip,
        record.stripe_customer_id, record.plan, list(record.labels), list(record.newsletters),
    ]  # fmt: skip
    if row[3] == Status.SUBSCRIBED:
        row[3] = ""
    while len(row) > 3 and row[-1] in ("", []):
        row.pop()
    return row


def record_from_row(row: Sequence) -> AudienceRecord:
    line, email, name, *rest = row
    rest = list(rest) + [""] * (9 - len(rest))
    status, opted_in_at, opted_in_ip, confirmed_at, confirmed_ip, stripe, plan = rest[:7]
    return AudienceRecord(
        line=line,
        email=email,
        name=name,
        status=status or Status.SUBSCRIBED,
        opted_in_at=_when(opted_in_at or ""),
        opted_in_ip=opted_in_ip or "",
        confirmed_at=_when(confirmed_at or ""),
        confirmed_ip=confirmed_ip or "",
        stripe_customer_id=stripe or "",
        plan=plan or "",
        labels=tuple(rest[7] or ()),
        newsletters=tuple(rest[8] or ()),
    )


# --- Header --------------------------------------------------------------------------


def column_key(name: str) -> str:
    """A header cell as compared: "Email Address" → "email_address", OPTIN_TIME →
    "optin_time"."""
    return "_".join(name.strip().lstrip("\ufeff").lower().replace("-", " ").split())


_MAILCHIMP_MARKS = {"member_rating", "optin_time", "confirm_time", "last_changed", "leid", "euid"}
_GHOST_MARKS = {"subscribed_to_emails", "complimentary_plan"}
_SUBSTACK_MARKS = {"active_subscription", "email_disabled", "expiry", "subscription_created_at"}

_EXPECTED = {
    Format.MAILCHIMP: "“Email Address” with Mailchimp's columns (OPTIN_TIME, MEMBER_RATING…)",
    Format.SUBSTACK: "“email” with Substack's columns (active_subscription, email_disabled…)",
    Format.GHOST: "“email” with Ghost's columns (subscribed_to_emails, complimentary_plan…)",
    Format.CSV: "“email” (and optionally “name”)",
}


def format_detect(header: Sequence[str]) -> str | None:
    """The format a header row belongs to, or None when it names no email column."""
    keys = {column_key(name) for name in header}
    if "email_address" in keys and keys & _MAILCHIMP_MARKS:
        return Format.MAILCHIMP
    if "email" in keys and keys & _GHOST_MARKS:
        return Format.GHOST
    if "email" in keys and keys & _SUBSTACK_MARKS:
        return Format.SUBSTACK
    if "email" in keys:
        return Format.CSV
    return None


def format_check(header: Sequence[str], requested: str) -> str:
    """The format to read a header with: detected (`requested` "auto") or as asked, when
    the header is that format's; otherwise ImportFileError saying what was expected."""
    detected = format_detect(header)
    found = ", ".join(name.strip() for name in header) or "nothing"
    if requested == AUTO:
        if detected is None:
            raise ImportFileError(
                "The first row must name the columns and include “email” (and optionally "
                f"“name”), or be a Mailchimp, Substack or Ghost export; found: {found}."
            )
        return detected
    if detected == requested:
        return requested
    if requested == Format.CSV and detected is not None:
        # Read as a plain CSV, a platform's export would lose what it says of each address
        # (unsubscribed, email disabled, deleted): every row would become a subscriber.
        raise ImportFileError(
            f"This is a {Format(detected).label}, not a {Format.CSV.label}: read as one, the "
            "addresses it marks as unsubscribed would be subscribed. Choose its format, or "
            "let the format be recognised from the file."
        )
    label = Format(requested).label
    raise ImportFileError(
        f"This is not a {label}: its first row should name {_EXPECTED[Format(requested)]}; "
        f"found: {found}."
    )


# --- Parsers: one per format, each (columns by key, line, file name) → record --------

Parser = Callable[[dict[str, str], int, str], AudienceRecord]


#: A generic CSV's "status" cell (as column_key reads it) that keeps a row off the list:
#: other tools' exports say so of their unsubscribed, bounced and complaining readers.
_STATUS_WORDS = {
    "unsubscribed": Status.UNSUBSCRIBED, "unsubscribe": Status.UNSUBSCRIBED,
    "opted_out": Status.UNSUBSCRIBED, "inactive": Status.UNSUBSCRIBED,
    "cleaned": Status.CLEANED,
    "bounced": Status.BOUNCED, "bounce": Status.BOUNCED, "hard_bounce": Status.BOUNCED,
    "undeliverable": Status.BOUNCED,
    "complained": Status.COMPLAINED, "complaint": Status.COMPLAINED, "spam": Status.COMPLAINED,
    "email_disabled": Status.EMAIL_DISABLED, "disabled": Status.EMAIL_DISABLED,
}  # fmt: skip
#: Status cells that mean the reader is on the list (empty: no status column, or no word).
_SUBSCRIBED_WORDS = {
    "", "subscribed", "subscribe", "active", "confirmed", "opted_in", "optin", "member",
    "yes", "true", "1", "free", "paid", "comp", "comped", "complimentary", "gift",
}  # fmt: skip


def parse_csv(values: dict[str, str], line: int, member: str = "") -> AudienceRecord:
    """The generic CSV: an address and a name, as typed; a "status" column saying the
    reader unsubscribed, bounced or complained makes a suppression, not a subscriber, and
    one in words it does not know ("pending", "review") is refused rather than guessed."""
    word = column_key(values.get("status", ""))
    status = _STATUS_WORDS.get(word) or (
        Status.SUBSCRIBED if word in _SUBSCRIBED_WORDS else Status.UNKNOWN
    )
    return AudienceRecord(
        line=line, email=values.get("email", ""), name=values.get("name", ""), status=status
    )


def parse_mailchimp(values: dict[str, str], line: int, member: str = "") -> AudienceRecord:
    """A row of a Mailchimp audience export. Which file it came from decides its status:
    the unsubscribed file has UNSUB_TIME, the cleaned one CLEAN_TIME (and the zip names
    them unsubscribed_… and cleaned_…). Mailchimp writes times in UTC without a zone."""
    member = member.rsplit("/", 1)[-1].lower()
    if "clean_time" in values or member.startswith("cleaned"):
        status = Status.CLEANED
    elif "unsub_time" in values or member.startswith("unsubscribed"):
        status = Status.UNSUBSCRIBED
    else:
        status = Status.SUBSCRIBED
    first = values.get("first_name") or values.get("fname", "")
    last = values.get("last_name") or values.get("lname", "")
    name = " ".join(part.strip() for part in (first, last) if part.strip())
    return AudienceRecord(
        line=line,
        email=values.get("email_address", ""),
        name=name or values.get("name", ""),
        status=status,
        opted_in_at=_when(values.get("optin_time", "")),
        opted_in_ip=_ip(values.get("optin_ip", "")),
        confirmed_at=_when(values.get("confirm_time", "")),
        confirmed_ip=_ip(values.get("confirm_ip", "")),
        labels=_list(values.get("tags", "")),
    )


def parse_substack(values: dict[str, str], line: int, member: str = "") -> AudienceRecord:
    """A row of Substack's subscriber export. `email_disabled` true (the reader turned
    email off, or Substack stopped after bounces) makes a suppression; a paid plan keeps
    its Stripe customer id (no donation is made of it)."""
    disabled = _true(values.get("email_disabled", ""))
    plan = values.get("plan") or values.get("type") or values.get("subscription_type", "")
    if values.get("active_subscription", "") and not _true(values["active_subscription"]):
        plan = f"{plan} (inactive)".strip()
    return AudienceRecord(
        line=line,
        email=values.get("email", ""),
        name=values.get("name", ""),
        status=Status.EMAIL_DISABLED if disabled else Status.SUBSCRIBED,
        opted_in_at=_when(values.get("subscription_created_at") or values.get("created_at", "")),
        stripe_customer_id=_stripe_id(
            values.get("stripe_customer_id") or values.get("stripe_connected_customer_id", "")
        ),
        plan=plan.strip().lower(),
    )


def parse_ghost(values: dict[str, str], line: int, member: str = "") -> AudienceRecord:
    """A row of Ghost's members CSV. `subscribed_to_emails` false (or a `deleted_at`)
    makes a suppression; labels, tiers and newsletters are kept as the record's labels."""
    subscribed = values.get("subscribed_to_emails", values.get("subscribed", "true"))
    deleted = values.get("deleted_at", "").strip() not in ("", "null")
    stripe = _stripe_id(values.get("stripe_customer_id", ""))
    if _true(values.get("complimentary_plan", "")):
        plan = "comp"
    elif stripe:
        plan = "paid"
    else:
        plan = "free"
    tiers = _list(values.get("tiers") or values.get("products", ""))
    if deleted or not _true(subscribed):
        status = Status.UNSUBSCRIBED
    elif _true(values.get("email_disabled", "")):  # Ghost stops after bounces, complaints
        status = Status.EMAIL_DISABLED
    else:
        status = Status.SUBSCRIBED
    return AudienceRecord(
        line=line,
        email=values.get("email", ""),
        name=values.get("name", ""),
        status=status,
        opted_in_at=_when(values.get("created_at", "")),
        stripe_customer_id=stripe,
        plan=", ".join((plan, *tiers)),
        labels=_list(values.get("labels", "")),
        newsletters=_list(values.get("newsletters", "")),
    )


PARSERS: dict[str, Parser] = {
    Format.MAILCHIMP: parse_mailchimp,
    Format.SUBSTACK: parse_substack,
    Format.GHOST: parse_ghost,
    Format.CSV: parse_csv,
}


def record_parse(
    format: str, header: Sequence[str], values: Sequence[str], line: int, member: str = ""
) -> AudienceRecord:
    """One data row of a file whose header is `header`, read as `format`."""
    keys = [column_key(name) for name in header]
    # The first of two columns with one name wins, as the generic CSV always did.
    row: dict[str, str] = {}
    for key, value in zip(keys, values, strict=False):
        row.setdefault(key, value)
    return PARSERS[format](row, line, member)


# --- Values ----------------------------------------------------------------------------

_TRUE = {"true", "t", "yes", "y", "1"}


def _true(text: str) -> bool:
    return text.strip().lower() in _TRUE


def _list(text: str) -> tuple[str, ...]:
    """A cell listing names ("VIP, Early"; Mailchimp quotes each tag: "\"VIP\",\"Early\"")."""
    names = (part.strip().strip('"').strip() for part in text.split(","))
    return tuple(name for name in names if name)


def _ip(text: str) -> str:
    """An IP address as the file gives it, or "" when it is none (Mailchimp leaves the
    column empty for addresses added by hand)."""
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        ip = ipaddress.IPv6Address(int(ip))  # a zone ("%eth0"): PostgreSQL's inet refuses it
    return str(ip)


def _stripe_id(text: str) -> str:
    text = text.strip()
    return text if text.startswith("cus_") and len(text) <= 255 else ""


def _when(text: str) -> datetime | None:
    """A time as the exports write them ("2021-03-04 05:06:07", "2021-03-04T05:06:07.000Z"),
    in UTC when the file names no zone; None when empty or unreadable."""
    text = text.strip()
    if not text or text.lower() == "null":
        return None
    try:
        when = datetime.fromisoformat(text.replace(" UTC", "").replace("Z", "+00:00"))
    except ValueError:
        return None
    if not when.tzinfo:
        return when.replace(tzinfo=UTC)
    try:
        return when.astimezone(UTC)  # as stored; a time past the calendar's edge is none
    except OverflowError:
        return None


def _iso(when: datetime | None) -> str:
    return when.isoformat() if when else ""
