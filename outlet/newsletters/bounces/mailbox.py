"""Polling the bounce mailbox: a Maildir path (BOUNCE_MAILDIR) or IMAP over TLS
(BOUNCE_IMAP_URL), each message handed to `intake.bounce_message_process`.

Contract: a message is marked done in the mailbox (seen, or deleted when BOUNCE_KEEP
is off) only after its row committed, so a worker killed in between finds it again and
intake recognises it; one not understood is moved to the "Unparsed" folder (kept
whatever BOUNCE_KEEP says) and stored, never dropped. A message the worker cannot take
in for now (the database down) is left where it is, for the next poll.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import os
import ssl
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from outlet.newsletters.bounces.intake import bounce_message_process
from outlet.newsletters.bounces.models import BounceMessage
from outlet.newsletters.bounces.reading import Outcome

logger = logging.getLogger(__name__)

#: The folder a message not understood is moved to (Maildir++ ".Unparsed", IMAP "Unparsed").
UNPARSED_FOLDER = "Unparsed"


def _seen(name: str) -> bool:
    """Maildir info ":2,<flags>": S is seen (done, kept)."""
    _, _, info = name.partition(":2,")
    return "S" in info


def maildir_poll(*, path: str | Path, keep: bool) -> Counter[str]:
    """Take in every message not yet done in the Maildir at `path`; outcomes counted."""
    root = Path(path)
    if not (root / "new").is_dir() or not (root / "cur").is_dir():
        raise ImproperlyConfigured(f"BOUNCE_MAILDIR {root} is not a Maildir (no new/ and cur/).")
    counts: Counter[str] = Counter()
    for folder in ("new", "cur"):
        for entry in sorted(os.scandir(root / folder), key=lambda e: e.name):
            if not entry.is_file() or entry.name.startswith(".") or _seen(entry.name):
                continue
            try:
                raw = Path(entry.path).read_bytes()
            except FileNotFoundError:  # another poller moved it
                continue
            processed = bounce_message_process(raw=raw, source=BounceMessage.Source.MAILDIR)
            counts[processed.outcome] += 1
            base = entry.name.partition(":2,")[0]
            if processed.outcome == Outcome.UNPARSED:
                aside = root / f".{UNPARSED_FOLDER}"
                for sub in ("cur", "new", "tmp"):
                    (aside / sub).mkdir(parents=True, exist_ok=True)
                os.replace(entry.path, aside / "cur" / f"{base}:2,")
            elif keep:
                os.replace(entry.path, root / "cur" / f"{base}:2,S")
            else:
                os.unlink(entry.path)
    return counts


def _imap_connect(url: str) -> tuple[imaplib.IMAP4, str]:
    """Log in to `imaps://user:password@host[:port]/MAILBOX` (TLS from the start) or
    `imap://...` (STARTTLS required); plain IMAP is refused, it would send the password
    in clear."""
    parts = urlsplit(url)
    context = ssl.create_default_context()
    if parts.scheme == "imaps":
        connection: imaplib.IMAP4 = imaplib.IMAP4_SSL(
            parts.hostname or "", parts.port or 993, ssl_context=context, timeout=30
        )
    elif parts.scheme == "imap":
        connection = imaplib.IMAP4(parts.hostname or "", parts.port or 143, timeout=30)
        connection.starttls(ssl_context=context)
    else:
        raise ImproperlyConfigured(
            "BOUNCE_IMAP_URL must start with imaps:// or imap:// (STARTTLS)."
        )
    connection.login(unquote(parts.username or ""), unquote(parts.password or ""))
    return connection, unquote(parts.path.lstrip("/")) or "INBOX"


def imap_poll(*, url: str, keep: bool) -> Counter[str]:
    """Take in every unseen message of the IMAP mailbox; outcomes counted."""
    connection, folder = _imap_connect(url)
    counts: Counter[str] = Counter()
    try:
        connection.select(folder)
        _, found = connection.uid("SEARCH", "UNSEEN")
        for uid in (found[0] or b"").decode("ascii").split():
            _, data = connection.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((item[1] for item in data if isinstance(item, tuple)), None)
            if raw is None:
                continue
            processed = bounce_message_process(raw=raw, source=BounceMessage.Source.IMAP)
            counts[processed.outcome] += 1
            if processed.outcome == Outcome.UNPARSED:
                connection.create(UNPARSED_FOLDER)  # an error if it exists: harmless
                status, _ = connection.uid("COPY", uid, UNPARSED_FOLDER)
                if status == "OK":
                    connection.uid("STORE", uid, "+FLAGS", "(\\Deleted \\Seen)")
            elif keep:
                connection.uid("STORE", uid, "+FLAGS", "(\\Seen)")
            else:
                connection.uid("STORE", uid, "+FLAGS", "(\\Deleted \\Seen)")
        connection.expunge()
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            connection.logout()
    return counts


def bounce_mailboxes_poll() -> Counter[str]:
    """Poll whichever bounce mailboxes are configured (the beat task's work)."""
    counts: Counter[str] = Counter()
    if settings.BOUNCE_MAILDIR:
        counts += maildir_poll(path=settings.BOUNCE_MAILDIR, keep=settings.BOUNCE_KEEP)
    if settings.BOUNCE_IMAP_URL:
        counts += imap_poll(url=settings.BOUNCE_IMAP_URL, keep=settings.BOUNCE_KEEP)
    if counts:
        logger.info("bounce mailbox polled: %s", dict(counts))
    return counts
