"""The click redirect (/n/c/<token>/) and the opens pixel (/n/o/<token>/), for Django.

Production answers both in the WSGI front (outlet/wsgi.py) before Django; these
views give the same answers (answers.py) to the test client and `make run`.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.cache import never_cache

from outlet.core.ratelimits import client_ip
from outlet.newsletters.measuring.answers import PIXEL, click_answer, open_answer


@never_cache
def click_redirect(request: HttpRequest, token: str) -> HttpResponse:
    response = HttpResponseRedirect(click_answer(token.rstrip("/")))
    response["Referrer-Policy"] = "no-referrer"  # the token stays out of the next site's logs
    return response


@never_cache
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    open_answer(
        token.rstrip("/"), user_agent=request.headers.get("User-Agent", ""), ip=client_ip(request)
    )
    return HttpResponse(PIXEL, content_type="image/gif")
