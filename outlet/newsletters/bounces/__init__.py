"""Bounces that come back: mail sent through our own relay returns its bounces and
complaints to a signed per-delivery address, and they act like an ESP's webhook.

- addresses.py: the return path (VERP) `bounces+<token>@BOUNCE_DOMAIN` and its token;
- reading.py: what a returned message says (DSN, ARF, auto-reply, flufl.bounce), pure;
- intake.py: one message taken in once, its token checked, then acted on through the
  ESP webhooks' path (tracking.bounce_apply);
- mailbox.py: the Maildir and IMAP pollers (the beat task); `manage.py bounce_receive`
  reads one message from a Postfix pipe;
- models.py: `BounceMessage`, one row per message taken in.
"""
