"""Tracked links and the opens pixel: which links, their signed tokens, the rewrite.

Contract: `issue_links_register` (when sending starts, beside the frozen bodies)
numbers the issue's trackable links; `bodies_track` rewrites the frozen bodies,
once per skeleton, so each tracked link and the pixel end in DELIVERY_MARK, the
one per-recipient slot: personalising is one `delivery_slot` (one HMAC) and string
substitution, whatever the number of links.

A click token is `<issue>.<position>.<link mac>.<delivery>.<delivery mac>`: the
link mac covers (issue, position) and the delivery mac (issue, delivery), so an
altered token matches no link and redirects home. Someone holding a genuine token
can pair their delivery with another link of the same issue: that is a click on
that issue's own link, never a redirect to an address of their choosing.

Unsubscribe, preferences, account and other /newsletter/ links are never
rewritten (they carry personal tokens of their own and must work untracked).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from html import escape, unescape
from urllib.parse import urlsplit

from django.conf import settings

from outlet.newsletters.models import Issue, IssueLink

DELIVERY_MARK = "@@DELIVERY@@"
_SALT = b"outlet.newsletters.measuring"
_HREF = re.compile(r'href="([^"]*)"')
#: Our own paths that are personal or about the subscription: never tracked.
_UNTRACKED_PATHS = ("/newsletter/", "/account/")
_MAC_LENGTH = 16  # characters of base64: 96 bits


@dataclass(frozen=True)
class ClickTarget:
    issue_id: int
    position: int
    delivery_id: int


_signer: tuple[str, hmac.HMAC] | None = None


def _mac(message: str) -> str:
    global _signer
    if _signer is None or _signer[0] != settings.SECRET_KEY:
        key = hashlib.sha256(_SALT + settings.SECRET_KEY.encode()).digest()
        _signer = (settings.SECRET_KEY, hmac.new(key, digestmod=hashlib.sha256))
    h = _signer[1].copy()
    h.update(message.encode())
    return urlsafe_b64encode(h.digest()).decode()[:_MAC_LENGTH]


def delivery_slot(issue_id: int, delivery_id: int) -> str:
    """The per-recipient part of every tracked URL: the delivery and its mac."""
    return f"{delivery_id}.{_mac(f'd{issue_id}.{delivery_id}')}"


def link_prefix(issue_id: int, position: int) -> str:
    return f"{issue_id}.{position}.{_mac(f'l{issue_id}.{position}')}"


def click_url(issue_id: int, position: int, slot: str) -> str:
    return f"{settings.SITE_URL}/n/c/{link_prefix(issue_id, position)}.{slot}/"


def open_url(issue_id: int, slot: str) -> str:
    return f"{settings.SITE_URL}/n/o/{issue_id}.{slot}/"


def _digits(value: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise ValueError(value)
    return int(value)


def click_target(token: str) -> ClickTarget | None:
    """What a click token names, or None if it is not one we signed."""
    parts = token.split(".")
    if len(parts) != 5:
        return None
    try:
        issue_id, position, delivery_id = _digits(parts[0]), _digits(parts[1]), _digits(parts[3])
    except ValueError:
        return None
    link_ok = hmac.compare_digest(parts[2], _mac(f"l{issue_id}.{position}"))
    delivery_ok = hmac.compare_digest(parts[4], _mac(f"d{issue_id}.{delivery_id}"))
    if not (link_ok and delivery_ok):
        return None
    return ClickTarget(issue_id, position, delivery_id)


def open_target(token: str) -> tuple[int, int] | None:
    """(issue id, delivery id) of a pixel token, or None if it is not one we signed."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        issue_id, delivery_id = _digits(parts[0]), _digits(parts[1])
    except ValueError:
        return None
    if not hmac.compare_digest(parts[2], _mac(f"d{issue_id}.{delivery_id}")):
        return None
    return issue_id, delivery_id


def is_trackable(url: str) -> bool:
    """An http(s) link that is not personal (unsubscribe, preferences, account)."""
    if "@@" in url:
        return False  # a per-recipient marker (unsubscribe, preferences)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    own = urlsplit(settings.SITE_URL).netloc
    if parts.netloc == own and parts.path.startswith(_UNTRACKED_PATHS):
        return "/archive/" in parts.path  # the public archive is an ordinary page
    return True


def issue_links_register(*, issue: Issue, html: str) -> list[IssueLink]:
    """Number the trackable links of the frozen HTML, in order of first appearance."""
    urls: list[str] = []
    for match in _HREF.finditer(html):
        url = unescape(match.group(1))
        if is_trackable(url) and url not in urls and len(url) <= 2000:
            urls.append(url)
    IssueLink.objects.filter(issue=issue).delete()
    return IssueLink.objects.bulk_create(
        IssueLink(issue=issue, position=position, url=url) for position, url in enumerate(urls)
    )


def bodies_track(
    *, issue_id: int, html: str, text: str, links: dict[str, int], opens: bool
) -> tuple[str, str]:
    """The bodies with each registered link through the redirect, ending in DELIVERY_MARK,
    and (with `opens`) the pixel before </body>."""
    if not links and not opens:
        return html, text
    tracked = {url: click_url(issue_id, position, DELIVERY_MARK) for url, position in links.items()}

    def href(match: re.Match) -> str:
        url = unescape(match.group(1))
        return f'href="{escape(tracked[url])}"' if url in tracked else match.group(0)

    html = _HREF.sub(href, html)
    if links:
        # Longest first, so a URL that extends another is matched whole.
        pattern = re.compile(
            "|".join(re.escape(url) for url in sorted(tracked, key=len, reverse=True))
            + r"(?![\w/?#&=%~+-])"
        )
        text = pattern.sub(lambda m: tracked[m.group(0)], text)
    if opens:
        pixel = (
            f'<img src="{open_url(issue_id, DELIVERY_MARK)}" width="1" height="1" alt="" '
            'style="display:block;border:0;width:1px;height:1px">'
        )
        html = html.replace("</body>", f"{pixel}</body>", 1) if "</body>" in html else html + pixel
    return html, text


def issue_bodies_track(*, issue: Issue, html: str, text: str) -> tuple[str, str]:
    """`bodies_track` with the issue's registered links and its newsletter's open setting."""
    links = dict(IssueLink.objects.filter(issue=issue).values_list("url", "position"))
    opens = settings.NEWSLETTER_TRACK_OPENS and issue.newsletter.track_opens
    return bodies_track(issue_id=issue.pk, html=html, text=text, links=links, opens=opens)
