"""Polling the bounce mailbox: a Maildir path (BOUNCE_MAILDIR) or IMAP over TLS
(BOUNCE_IMAP_URL), each message handed to `intake.bounce_message_process`.

Contract: a message is marked done in the mailbox (seen, or deleted when BOUNCE_KEEP
is off) only after its row committed, so a worker killed in between finds it again and
intake recognises it; one not understood is moved to the "Unparsed" folder (kept
whatever BOUNCE_KEEP says) and stored, never dropped. A message the worker cannot take
in for now (the database down) is put back, for the next poll. In a Maildir each message
is claimed first by an atomic rename into ".Claimed", so of two pollers only one takes
it; a claim whose poller died is taken over after BOUNCE_CLAIM_SECONDS.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import os
import ssl
import time
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
#: The IMAP keyword a message taken in (and kept) is flagged with.
DONE_KEYWORD = "$OutletTakenIn"
#: The Maildir++ folder a poller moves a message into while it takes it in.
CLAIM_FOLDER = ".Claimed"


def _seen(name: str) -> bool:
    """Maildir info ":2,<flags>": S is seen (done, kept)."""
    _, _, info = name.partition(":2,")
    return "S" in info


def _maildir_folder(path: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def _claims_release_stale(root: Path, claims: Path) -> None:
    """Put back in new/ what a poller claimed and never finished (it died): after
    BOUNCE_CLAIM_SECONDS, counted from the claim (a rename sets the file's ctime)."""
    now = time.time()
    for entry in os.scandir(claims):
        try:
            stale = now - entry.stat().st_ctime >= settings.BOUNCE_CLAIM_SECONDS
            if entry.is_file() and stale:
                os.rename(entry.path, root / "new" / entry.name)
        except FileNotFoundError:  # another poller took it back first
            continue


def maildir_poll(*, path: str | Path, keep: bool) -> Counter[str]:
    """Take in every message not yet done in the Maildir at `path`; outcomes counted.

    A message is claimed before it is read: renamed into the CLAIM_FOLDER, which only
    one of several pollers can do (rename is atomic; the others find it gone), so two
    workers polling at once never hand the same file in twice."""
    root = Path(path)
    if not (root / "new").is_dir() or not (root / "cur").is_dir():
        raise ImproperlyConfigured(f"BOUNCE_MAILDIR {root} is not a Maildir (no new/ and cur/).")
    claims = _maildir_folder(root / CLAIM_FOLDER) / "cur"
    _claims_release_stale(root, claims)
    counts: Counter[str] = Counter()
    for folder in ("new", "cur"):
        for entry in sorted(os.scandir(root / folder), key=lambda e: e.name):
            if not entry.is_file() or entry.name.startswith(".") or _seen(entry.name):
                continue
            base = entry.name.partition(":2,")[0]
            claimed = claims / base
            try:
                os.rename(entry.path, claimed)
            except FileNotFoundError:  # another poller claimed it
                continue
            try:
                raw = claimed.read_bytes()
            except FileNotFoundError:  # released meanwhile, and another poller took it
                continue
            try:
                processed = bounce_message_process(raw=raw, source=BounceMessage.Source.MAILDIR)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.rename(claimed, root / "new" / base)  # for the next poll
                raise
            counts[processed.outcome] += 1
            try:
                _maildir_done(root, claimed, base, outcome=processed.outcome, keep=keep)
            except FileNotFoundError:
                # Our claim was released (BOUNCE_CLAIM_SECONDS) and another poller
                # finished the message first: intake took it in once; nothing to move.
                continue
    return counts


def _maildir_done(root: Path, claimed: Path, base: str, *, outcome: str, keep: bool) -> None:
    if outcome == Outcome.UNPARSED:
        aside = _maildir_folder(root / f".{UNPARSED_FOLDER}")
        os.replace(claimed, aside / "cur" / f"{base}:2,")
    elif keep:
        os.replace(claimed, root / "cur" / f"{base}:2,S")
    else:
        os.unlink(claimed)


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


def _imap_done_keyword(connection: imaplib.IMAP4) -> str | None:
    """DONE_KEYWORD when the selected mailbox keeps keywords of our own (PERMANENTFLAGS
    holds \\*), else None (then \\Seen must say "taken in")."""
    _, data = connection.response("PERMANENTFLAGS")
    flags = b" ".join(item for item in data if isinstance(item, bytes))
    return DONE_KEYWORD if b"\\*" in flags else None


def imap_poll(*, url: str, keep: bool) -> Counter[str]:
    """Take in every message of the IMAP mailbox not taken in yet; outcomes counted.

    Taken in is marked with DONE_KEYWORD where the server keeps keywords (Dovecot, and
    most): \\Seen alone would also be set by anyone reading the mailbox in a mail client,
    and a bounce an editor opened would never act."""
    connection, folder = _imap_connect(url)
    counts: Counter[str] = Counter()
    try:
        status, _ = connection.select(folder)
        if status != "OK":
            raise ImproperlyConfigured(f"BOUNCE_IMAP_URL: the mailbox {folder!r} cannot be opened.")
        keyword = _imap_done_keyword(connection)
        done = f"\\Seen {keyword}" if keyword else "\\Seen"
        _, found = connection.uid("SEARCH", *(("UNKEYWORD", keyword) if keyword else ("UNSEEN",)))
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
                    connection.uid("STORE", uid, "+FLAGS", f"(\\Deleted {done})")
            elif keep:
                connection.uid("STORE", uid, "+FLAGS", f"({done})")
            else:
                connection.uid("STORE", uid, "+FLAGS", f"(\\Deleted {done})")
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
