"""
A donor's short session after a sign-in link: which donor this browser acts for, until
when. Kept in Django's session (the key cycled at sign-in), so no token sits in page
addresses, browser history or Referer headers. Reusable by a later reader account.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.http import HttpRequest

from .models import Donor

SESSION_KEY = "donations.donor"


def donor_session_start(request: HttpRequest, donor: Donor) -> None:
    """Sign this browser in as `donor`. The session cookie lives only as long as the donor
    session (not Django's two weeks): any session cookie makes reader pages private and
    uncached for that browser, so it must not outlive its use. A staff login sharing the
    session keeps its own lifetime."""
    request.session.cycle_key()
    if not request.user.is_authenticated:
        request.session.set_expiry(settings.DONATION_MANAGE_SESSION_AGE)
    request.session[SESSION_KEY] = {
        "donor": donor.pk,
        "until": int(time.time()) + settings.DONATION_MANAGE_SESSION_AGE,
    }


def donor_session_donor(request: HttpRequest) -> Donor | None:
    """The signed-in donor, or None when nobody is, or the session has run out."""
    data = request.session.get(SESSION_KEY)
    if not isinstance(data, dict) or int(data.get("until") or 0) < time.time():
        return None
    donor_id = data.get("donor")
    return Donor.objects.filter(pk=donor_id).first() if isinstance(donor_id, int) else None


def donor_session_end(request: HttpRequest) -> None:
    request.session.pop(SESSION_KEY, None)
