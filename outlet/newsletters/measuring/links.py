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
from django.utils.encoding import iri_to_uri

from outlet.core.language import path_without_language
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


#: The only shapes a token may have: ASCII digits and base64url macs, nothing else
#: (str.isdigit accepts other scripts' digits; compare_digest refuses non-ASCII str).
_NUMBER, _MAC = r"(0|[1-9][0-9]{0,17})", rf"([A-Za-z0-9_-]{{{_MAC_LENGTH}}})"
_CLICK_TOKEN = re.compile(rf"{_NUMBER}\.{_NUMBER}\.{_MAC}\.{_NUMBER}\.{_MAC}", re.ASCII)
_OPEN_TOKEN = re.compile(rf"{_NUMBER}\.{_NUMBER}\.{_MAC}", re.ASCII)


def _mac_ok(given: str, message: str) -> bool:
    return hmac.compare_digest(given.encode("ascii"), _mac(message).encode("ascii"))


def click_target(token: str) -> ClickTarget | None:
    """What a click token names, or None if it is not one we signed."""
    match = _CLICK_TOKEN.fullmatch(token)
    if match is None:
        return None
    issue, position, link_mac, delivery, delivery_mac = match.groups()
    issue_id, position_n, delivery_id = int(issue), int(position), int(delivery)
    link_ok = _mac_ok(link_mac, f"l{issue_id}.{position_n}")
    delivery_ok = _mac_ok(delivery_mac, f"d{issue_id}.{delivery_id}")
    if not (link_ok and delivery_ok):
        return None
    return ClickTarget(issue_id, position_n, delivery_id)


def open_target(token: str) -> tuple[int, int] | None:
    """(issue id, delivery id) of a pixel token, or None if it is not one we signed."""
    match = _OPEN_TOKEN.fullmatch(token)
    if match is None:
        return None
    issue_id, delivery_id = int(match.group(1)), int(match.group(2))
    if not _mac_ok(match.group(3), f"d{issue_id}.{delivery_id}"):
        return None
    return issue_id, delivery_id


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: A URL as it stands in plain text: up to whitespace or a delimiter.
_TEXT_URL = re.compile(r"""https?://[^\s<>"']+""")
_TRAILING = ".,;:!?)]}'"


def link_key(url: str) -> str:
    """A link as registered: its ASCII URI form (what Django puts in Location)."""
    return iri_to_uri(url)


def is_trackable(url: str) -> bool:
    """A clean absolute http(s) link that is not personal (unsubscribe, preferences,
    account). A URL with control characters (an encoded CR/LF) is never tracked."""
    if "@@" in url:
        return False  # a per-recipient marker (unsubscribe, preferences)
    if _CONTROL.search(url) or len(url) > 2000:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    own = urlsplit(settings.SITE_URL).netloc
    if parts.netloc == own and path_without_language(parts.path).startswith(_UNTRACKED_PATHS):
        return "/archive/" in parts.path  # the public archive is an ordinary page
    return True


def issue_links_register(*, issue: Issue, html: str) -> list[IssueLink]:
    """Number the trackable links of the frozen HTML, in order of first appearance."""
    urls: list[str] = []
    for match in _HREF.finditer(html):
        url = unescape(match.group(1))
        if is_trackable(url):
            key = link_key(url)
            if key not in urls and len(key) <= 2000 and key.isascii():
                urls.append(key)
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
        key = _registered(unescape(match.group(1)), tracked)
        return f'href="{escape(tracked[key])}"' if key is not None else match.group(0)

    def text_url(match: re.Match) -> str:
        # A whole URL of the text, replaced only if it is exactly a registered link
        # (punctuation closing a sentence after it stays as it was).
        whole = match.group(0)
        url = whole.rstrip(_TRAILING)
        for candidate in (whole, url) if url != whole else (whole,):
            key = _registered(candidate, tracked)
            if key is not None:
                return tracked[key] + whole[len(candidate) :]
        return whole

    html = _HREF.sub(href, html)
    if links:
        text = _TEXT_URL.sub(text_url, text)
    if opens:
        pixel = (
            f'<img src="{open_url(issue_id, DELIVERY_MARK)}" width="1" height="1" alt="" '
            'style="display:block;border:0;width:1px;height:1px">'
        )
        html = html.replace("</body>", f"{pixel}</body>", 1) if "</body>" in html else html + pixel
    return html, text


def _registered(url: str, tracked: dict[str, str]) -> str | None:
    if url in tracked:
        return url
    if _CONTROL.search(url):
        return None
    key = link_key(url)
    return key if key in tracked else None


def issue_bodies_track(*, issue: Issue, html: str, text: str) -> tuple[str, str]:
    """`bodies_track` with the issue's registered links and its newsletter's open setting."""
    links = dict(IssueLink.objects.filter(issue=issue).values_list("url", "position"))
    opens = settings.NEWSLETTER_TRACK_OPENS and issue.newsletter.track_opens
    return bodies_track(issue_id=issue.pk, html=html, text=text, links=links, opens=opens)
