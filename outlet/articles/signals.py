"""What the articles app tells the rest of the site, without importing it.

`articles_taken_down`: public articles were deleted or made non-public (a takedown).
Sent inside the takedown's transaction, before a deletion, with `articles` (the
Article instances, still readable). Receivers act in the same transaction, so what
they change commits or rolls back with the takedown (newsletters pause an issue that
is still mailing one of them).
"""

from __future__ import annotations

from django.dispatch import Signal

articles_taken_down = Signal()
