"""outlet's SMTP backend: Django's, with each message DKIM-signed when DKIM is configured.

outlet/settings/ puts it in place of Django's SMTP backend, so every message that leaves by
SMTP (receipts, sign-in links, confirmations, test sends, and newsletters to addresses
the skeleton cannot prebuild) is signed. Newsletter copies the skeleton prebuilds are
signed as they are built (newsletters/sending/signing.py), more cheaply, and go out on
this backend's connection without passing through `_send`.
"""

from __future__ import annotations

import email.policy
import smtplib
from typing import cast

from django.core.mail.backends.smtp import EmailBackend as DjangoSmtpBackend


class EmailBackend(DjangoSmtpBackend):
    def _send(self, email_message) -> bool:
        from outlet.core.dkim_config import dkim_signer

        if not email_message.recipients():
            return False
        from_email = self.prep_address(email_message.from_email)
        recipients = [self.prep_address(address) for address in email_message.recipients()]
        data = email_message.message(policy=email.policy.SMTP).as_bytes()
        if (signer := dkim_signer()) is not None and not data.startswith(b"DKIM-Signature:"):
            data = signer.sign(data)
        try:
            cast(smtplib.SMTP, self.connection).sendmail(from_email, recipients, data)
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True
