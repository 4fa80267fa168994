"""The click redirect and the pixel, in front of Django and through it: whatever a
token or a link holds, a click answers a 302 with a valid Location and the pixel a
GIF, never a 500; both fronts judge a reader the same way."""

from __future__ import annotations

import pytest

from outlet.newsletters.measuring import answers
from outlet.newsletters.measuring.links import delivery_slot, issue_links_register, link_prefix
from outlet.newsletters.measuring.wsgi import TrackingWSGI
from outlet.newsletters.models import IssueLink
from tests.factories import IssueFactory

pytestmark = pytest.mark.django_db


def _django_app(environ, start_response):  # what lies behind the front in these tests
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"django"]


def _call(path: str, method: str = "GET", **extra) -> tuple[str, dict[str, str]]:
    """Call the production WSGI front as gunicorn would (PATH_INFO is latin-1 text)."""
    got: dict = {}

    def start_response(status, headers, exc_info=None):
        got["status"], got["headers"] = status, dict(headers)

    environ = {"PATH_INFO": path, "REQUEST_METHOD": method, "REMOTE_ADDR": "192.0.2.1", **extra}
    b"".join(TrackingWSGI(_django_app)(environ, start_response))
    return got["status"], got["headers"]


def _genuine_click(issue_id: int, position: int = 0, delivery_id: int = 4242) -> str:
    return f"{link_prefix(issue_id, position)}.{delivery_slot(issue_id, delivery_id)}"


@pytest.fixture
def pushed(monkeypatch):
    lines: list[str] = []
    monkeypatch.setattr(answers, "tracking_buffer_push", lines.append)
    return lines


def test_a_token_with_non_ascii_characters_redirects_home_through_django(client):
    response = client.get("/n/c/1.0.%C3%A9%C3%A9%C3%A9.4.x/")
    assert response.status_code == 302 and response["Location"] == "/"


def test_tokens_with_non_ascii_characters_are_answered_by_the_wsgi_front():
    # gunicorn hands PATH_INFO as the percent-decoded bytes read as latin-1.
    status, headers = _call("/n/c/1.0.\xc3\xa9\xc3\xa9.4.x/")
    assert status.startswith("302") and headers["Location"] == "/"
    status, headers = _call("/n/o/1.4.\xc3\xa9/")
    assert status.startswith("200")


def test_digits_of_other_scripts_are_not_a_token(client, pushed):
    status, headers = _call("/n/c/\u0661.0.x.4.x/")
    assert status.startswith("302") and headers["Location"] == "/"
    assert pushed == []


def test_the_wsgi_front_answers_home_when_an_answer_fails(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("database away")

    monkeypatch.setattr(answers, "click_answer", broken)
    monkeypatch.setattr(answers, "open_answer", broken)
    status, headers = _call("/n/c/1.0.x.4.x/")
    assert status.startswith("302") and headers["Location"] == "/"
    assert _call("/n/o/1.4.x/")[0].startswith("200")
    assert "newsletter tracking: answering" in caplog.text


def test_the_wsgi_front_sends_a_non_ascii_link_percent_encoded_like_django(daily, client, pushed):
    issue = IssueFactory(newsletter=daily)
    IssueLink.objects.create(issue=issue, position=0, url="https://example.org/новости—2024")
    token = _genuine_click(issue.pk)

    django_location = client.get(f"/n/c/{token}/")["Location"]
    status, headers = _call(f"/n/c/{token}/")

    assert headers["Location"] == django_location
    headers["Location"].encode("ascii")


def test_a_link_hiding_an_encoded_crlf_is_never_tracked_nor_a_location(daily, pushed):
    issue = IssueFactory(newsletter=daily)
    issue_links_register(
        issue=issue,
        html='<a href="https://example.org/a&#13;&#10;Set-Cookie: pwn=1">x</a>'
        '<a href="https://example.org/ünï">y</a>',
    )
    registered = list(IssueLink.objects.filter(issue=issue).values_list("url", flat=True))
    assert registered == ["https://example.org/%C3%BCn%C3%AF"]
    IssueLink.objects.create(issue=issue, position=1, url="https://example.org/a\r\nSet-Cookie: x")
    status, headers = _call(f"/n/c/{_genuine_click(issue.pk, position=1)}/")
    assert status.startswith("302") and headers["Location"] == "/"


def test_the_wsgi_pixel_judges_the_forwarded_address_like_the_django_view(
    daily, settings, client, pushed
):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    apple = {"HTTP_X_FORWARDED_FOR": "17.58.63.1", "HTTP_USER_AGENT": "Mozilla/5.0"}
    token = f"1.{delivery_slot(1, 4242)}"

    client.get(f"/n/o/{token}/", REMOTE_ADDR="10.0.0.2", **apple)
    _call(f"/n/o/{token}/", REMOTE_ADDR="10.0.0.2", **apple)

    django_line, wsgi_line = pushed
    assert django_line.startswith("m ")  # Apple's network: a machine prefetch
    assert wsgi_line.split(" ")[0] == django_line.split(" ")[0]


def test_head_requests_are_answered_but_not_counted(daily, client, pushed):
    issue = IssueFactory(newsletter=daily)
    IssueLink.objects.create(issue=issue, position=0, url="https://example.org/story")
    token = _genuine_click(issue.pk)
    pixel = f"{issue.pk}.{delivery_slot(issue.pk, 4242)}"

    assert client.head(f"/n/c/{token}/")["Location"] == "https://example.org/story"
    assert client.head(f"/n/o/{pixel}/").status_code == 200
    assert _call(f"/n/c/{token}/", "HEAD")[1]["Location"] == "https://example.org/story"
    assert _call(f"/n/o/{pixel}/", "HEAD")[0].startswith("200")
    assert pushed == []
