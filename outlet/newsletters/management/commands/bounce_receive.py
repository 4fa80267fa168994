"""Take in one returned message from standard input: what Postfix's pipe runs.

Postfix runs it through deploy/postfix/bounce-receive (which loads the site's
environment and turns any failure before this command runs, a settings error or a
missing env file, into 75 too; see the README).

Exit 0 once the message is taken in (or was before, or was set aside as not
understood); 75 (EX_TEMPFAIL) when it could not be stored or anything unexpected
failed, so Postfix keeps it and tries again: any other code makes Postfix bounce the
bounce, and the message is lost.
"""

from __future__ import annotations

import logging
import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from outlet.newsletters.bounces.intake import bounce_message_process
from outlet.newsletters.bounces.models import BounceMessage

logger = logging.getLogger(__name__)

EX_TEMPFAIL = 75
#: Bounces carry at most the returned message's headers or a part of it; Postfix's
#: own message_size_limit default is 10 MB.
MAX_BYTES = 20 * 1024 * 1024


class Command(BaseCommand):
    help = "Take in one bounce, complaint or auto-reply from standard input (Postfix pipe)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--recipient",
            default=None,
            help="The address the message was delivered to (Postfix: ${original_recipient}).",
        )

    def handle(self, *args, recipient: str | None = None, **options) -> None:
        raw = sys.stdin.buffer.read(MAX_BYTES + 1)
        if not raw.strip():
            raise CommandError("No message on standard input.")
        if len(raw) > MAX_BYTES:
            raise CommandError(f"The message is larger than {MAX_BYTES} bytes.")
        try:
            processed = bounce_message_process(
                raw=raw, source=BounceMessage.Source.PIPE, envelope_recipient=recipient
            )
        except DatabaseError as exc:
            self.stderr.write(f"bounce_receive: could not store the message, try later: {exc}")
            raise SystemExit(EX_TEMPFAIL) from exc
        except Exception as exc:  # noqa: BLE001  anything else: keep it queued, never bounce it
            # The exception's type only: its text may quote an address.
            logger.error("bounce_receive: unexpected %s, Postfix will retry", type(exc).__name__)
            self.stderr.write(
                f"bounce_receive: unexpected failure, try later: {type(exc).__name__}"
            )
            raise SystemExit(EX_TEMPFAIL) from exc
        state = "taken in" if processed.new else "already taken in"
        self.stdout.write(f"bounce: {processed.outcome} ({state})")
