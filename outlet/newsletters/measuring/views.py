"""The click redirect (/n/c/<token>/) and the opens pixel (/n/o/<token>/), for Django.

Production answers both in the WSGI front (outlet/wsgi.py) before Django; these
views give the same answers (answers.py) to the test client and `make run`,
including a HEAD being answered but not counted.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.cache import never_cache

from outlet.core.ratelimits import client_ip
from outlet.newsletters.measuring.answers import (
    PIXEL,
    click_answer,
    location_header,
    open_answer,
)


@never_cache
def click_redirect(request: HttpRequest, token: str) -> HttpResponse:
    location = click_answer(token.rstrip("/"), record=request.method == "GET")
    response = HttpResponseRedirect(location_header(location))
    response["Referrer-Policy"] = "no-referrer"  # the token stays out of the next site's logs
    return response


@never_cache
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "GET":
        open_answer(
            token.rstrip("/"),
            user_agent=request.headers.get("User-Agent", ""),
            ip=client_ip(request),
        )
    return HttpResponse(PIXEL, content_type="image/gif")
