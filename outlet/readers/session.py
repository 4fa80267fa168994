"""
A reader's session: a signed cookie, not Django's session.

The cookie's path is /account/, so reader pages never see it: they stay public and
cacheable (Varnish and the page cache treat `sessionid` as private; this cookie never
reaches them). It is HttpOnly, SameSite=Lax, Secure under https (SESSION_COOKIE_SECURE),
lives READER_SESSION_AGE seconds, and names the reader and the `session_epoch` it was
opened under: "sign out everywhere" bumps the epoch, which ends every session of that
reader on every device at once.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from .models import Reader

COOKIE_NAME = "outlet_reader"
COOKIE_PATH = "/account/"
_SALT = "outlet.readers.session"


def reader_session_start(response: HttpResponse, reader: Reader) -> None:
    response.set_signed_cookie(
        COOKIE_NAME,
        f"{reader.pk}:{reader.session_epoch}",
        salt=_SALT,
        max_age=settings.READER_SESSION_AGE,
        path=COOKIE_PATH,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def reader_session_reader(request: HttpRequest) -> Reader | None:
    """The signed-in reader, or None: no cookie, a forged or old one, or one opened
    before the reader signed out everywhere."""
    value = request.get_signed_cookie(
        COOKIE_NAME, default=None, salt=_SALT, max_age=settings.READER_SESSION_AGE
    )
    reader_id, _, epoch = (value or "").partition(":")
    if not (reader_id.isdigit() and epoch.isdigit()):
        return None
    return Reader.objects.filter(pk=int(reader_id), session_epoch=int(epoch)).first()


def reader_session_end(response: HttpResponse) -> None:
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, samesite="Lax")
