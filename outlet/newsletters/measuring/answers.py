"""The click redirect and the opens pixel: what to answer, and the line to record.

Contract: `click_answer(token)` gives the address to redirect to (the link's own
URL for a genuine token, the home page "/" for anything else) and queues one
click line; `open_answer(token, ...)` queues one open line for a genuine token.
Both are shared by the Django views (views.py) and the WSGI front (wsgi.py), which
answers these paths before Django builds a request. Neither touches the database
for a link it has seen: a link's URL never changes once its issue is sent, so each
process keeps what it looked up.
"""

from __future__ import annotations

import base64

from django.utils.encoding import iri_to_uri

from outlet.newsletters.measuring.links import click_target, open_target
from outlet.newsletters.measuring.recording import (
    click_line,
    is_machine_fetch,
    open_line,
    tracking_buffer_push,
)
from outlet.newsletters.models import IssueLink

HOME = "/"
#: A transparent 1x1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_LINKS_KEPT = 50_000
_links: dict[tuple[int, int], str | None] = {}


def _link_url(issue_id: int, position: int) -> str | None:
    key = (issue_id, position)
    try:
        return _links[key]
    except KeyError:
        pass
    url = (
        IssueLink.objects.filter(issue_id=issue_id, position=position)
        .values_list("url", flat=True)
        .first()
    )
    if len(_links) >= _LINKS_KEPT:
        _links.clear()
    if url is not None:
        _links[key] = url  # an unknown link may yet be registered: not remembered
    return url


def needs_database(token: str) -> bool:
    """Would answering this click read the database (its link is not remembered yet)?"""
    target = click_target(token) if token.count(".") == 4 else None
    return target is not None and (target.issue_id, target.position) not in _links


def location_header(url: str) -> str:
    """A Location value a WSGI server can send: the URL as an ASCII URI (as Django's
    redirect makes it), else home. Registered URLs are clean already; this is the
    last line of defence for rows written before they were."""
    location = iri_to_uri(url)
    if not location.isascii() or any(ord(c) < 0x21 or c == "\x7f" for c in location):
        return HOME
    return location


def click_answer(token: str, *, record: bool = True) -> str:
    """Where a click goes: its link's URL (recording the click unless `record` is
    False, as for HEAD), else the home page."""
    target = click_target(token)
    if target is None:
        return HOME
    url = _link_url(target.issue_id, target.position)
    if url is None:
        return HOME
    if record:
        tracking_buffer_push(
            click_line(
                issue_id=target.issue_id, position=target.position, delivery_id=target.delivery_id
            )
        )
    return url


def open_answer(token: str, *, user_agent: str, ip: str | None) -> None:
    """Record one fetch of the pixel (a genuine token only)."""
    target = open_target(token)
    if target is None:
        return
    issue_id, delivery_id = target
    machine = is_machine_fetch(user_agent=user_agent, ip=ip)
    tracking_buffer_push(open_line(issue_id=issue_id, delivery_id=delivery_id, machine=machine))


def forget_links() -> None:
    """Drop what this process remembers of links (tests reuse ids across databases)."""
    _links.clear()
