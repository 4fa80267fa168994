"""What a sent issue measures: tracked links, the redirect, the pixel, tampered tokens."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser

import pytest
from django.core import mail

from outlet.newsletters.issues import issue_plan, issue_send_now, issue_sending_check
from outlet.newsletters.measuring.links import click_target
from outlet.newsletters.models import Click, Delivery, Issue, IssueLink, IssueStats, Open
from outlet.newsletters.sending import batch_send
from tests.factories import ArticleFactory, IssueFactory, SubscriberFactory
from tests.newsletters.conftest import BUFFER_PREFIX

pytestmark = pytest.mark.django_db

TRACKED = re.compile(r"https?://[^\s\"<>]+/n/c/[^\s\"<>]+/")


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def send_everything(issue: Issue) -> Issue:
    issue_send_now(issue=issue)
    issue.refresh_from_db()
    issue_plan(issue=issue)
    while batch_send(issue_id=issue.pk, size=7).claimed:
        pass
    issue_sending_check(issue_id=issue.pk)
    issue.refresh_from_db()
    return issue


def parts(message) -> tuple[str, str]:
    parsed = BytesParser(policy=policy.default).parsebytes(message.message().as_bytes())
    text = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    return text, html


def flush() -> None:
    """What the web process and the flush task do within seconds (nothing without Redis)."""
    from outlet.newsletters.measuring.recording import tracking_flush, tracking_process_push

    tracking_process_push()
    tracking_flush()


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


@pytest.fixture
def sent(daily):
    readers = SubscriberFactory.create_batch(3, newsletters=[daily])
    article = ArticleFactory(headline="How the map was drawn")
    issue = IssueFactory(
        newsletter=daily,
        articles=[article],
        body='<p>Read <a href="https://example.org/report?a=1&amp;b=2">the report</a>.</p>',
    )
    return send_everything(issue), readers, article


def test_links_in_both_parts_go_through_the_redirect_but_personal_links_do_not(sent, client):
    issue, readers, article = sent
    text, html = parts(mail.outbox[0])

    assert TRACKED.findall(text) and TRACKED.findall(html)
    assert "https://example.org/report" not in text + html
    assert article.get_absolute_url() not in text.replace("/n/c/", "")
    assert "/newsletter/unsubscribe/" in text and "/newsletter/unsubscribe/" in html
    assert "/account/" in text and "/account/" in html  # where a reader's choices live
    targets = {client.get(path_of(url))["Location"] for url in TRACKED.findall(text + html)}
    assert not any("/account/" in url or "unsubscribe" in url for url in targets)
    assert "@@" not in text + html


def test_a_click_redirects_at_once_to_the_link_and_is_recorded_for_that_delivery(sent, client):
    issue, readers, article = sent
    text, html = parts(mail.outbox[0])
    delivery = Delivery.objects.get(issue=issue, subscriber__email=mail.outbox[0].to[0])
    report = next(url for url in TRACKED.findall(html) if click_target(path_of(url).split("/")[3]))
    response = client.get(path_of(report.replace("&amp;", "&")))
    targets = {client.get(path_of(url))["Location"] for url in TRACKED.findall(text)}
    flush()

    assert response.status_code == 302
    assert "https://example.org/report?a=1&b=2" in targets
    assert any(article.get_absolute_url() in target for target in targets)
    clicks = Click.objects.filter(issue=issue)
    assert clicks.count() == 1 + len(TRACKED.findall(text))
    assert set(clicks.values_list("delivery_id", flat=True)) == {delivery.pk}
    stats = IssueStats.objects.get(issue=issue)
    assert (stats.clicks, stats.clicked, stats.sent) == (clicks.count(), 1, 3)


def test_each_reader_has_their_own_token(sent):
    issue, readers, article = sent
    tokens = {
        click_target(path_of(TRACKED.findall(parts(message)[0])[0]).split("/")[3])
        for message in mail.outbox
    }
    assert len({target.delivery_id for target in tokens if target}) == 3


def _replace_part(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


def _altered(mac: str) -> str:
    return mac[:-1] + ("A" if mac[-1] != "A" else "B")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # the delivery's mac
        lambda t: ".".join([*t.split(".")[:3], str(int(t.split(".")[3]) + 1), t.split(".")[4]]),
        lambda t: ".".join([t.split(".")[0], "7", *t.split(".")[2:]]),  # another position
        lambda t: ".".join([str(int(t.split(".")[0]) + 1), *t.split(".")[1:]]),
        lambda t: "https:%2F%2Fevil.example",
        lambda t: t.split(".", 3)[3],
        lambda t: t + ".1",
        lambda t: "1.0." + "A" * 16 + ".1." + "A" * 16,
        lambda t: _replace_part(t, 2, _altered(t.split(".")[2])),  # the link's mac alone
        # another registered link, its delivery mac valid, the first link's mac kept:
        lambda t: _replace_part(t, 1, "1" if t.split(".")[1] == "0" else "0"),
    ],
)
def test_an_altered_token_redirects_home_and_records_nothing(sent, client, tamper):
    issue, readers, article = sent
    token = path_of(TRACKED.findall(parts(mail.outbox[0])[0])[0]).split("/")[3]

    assert IssueLink.objects.filter(issue=issue).count() >= 2  # another link to point at
    response = client.get(f"/n/c/{tamper(token)}/")
    flush()

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert not Click.objects.exists()


def test_the_pixel_answers_a_gif_and_counts_an_approximate_open(sent, client):
    issue, readers, article = sent
    html = parts(mail.outbox[0])[1]
    pixel = re.search(r'src="(https?://[^"]+/n/o/[^"]+/)"', html).group(1)

    response = client.get(path_of(pixel), HTTP_USER_AGENT="Mozilla/5.0 (Macintosh)")
    client.get(path_of(pixel), HTTP_USER_AGENT="Mozilla/5.0 GoogleImageProxy")
    client.get(path_of(pixel)[:-3] + "xx/")
    flush()

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    assert Open.objects.filter(issue=issue).count() == 2
    assert Open.objects.filter(issue=issue, machine=True).count() >= 1
    assert IssueStats.objects.get(issue=issue).opened == 1


def test_a_newsletter_without_opens_tracking_has_no_pixel(daily):
    daily.track_opens = False
    daily.save()
    SubscriberFactory(newsletters=[daily])
    send_everything(IssueFactory(newsletter=daily))
    assert "/n/o/" not in parts(mail.outbox[0])[1]


def test_opens_can_be_turned_off_everywhere(daily, settings):
    settings.NEWSLETTER_TRACK_OPENS = False
    SubscriberFactory(newsletters=[daily])
    send_everything(IssueFactory(newsletter=daily))
    assert "/n/o/" not in parts(mail.outbox[0])[1]


def test_erasing_a_subscriber_deletes_their_clicks_and_opens(sent, client):
    from outlet.newsletters.services import subscriber_erase

    issue, readers, article = sent
    text, html = parts(mail.outbox[0])
    client.get(path_of(TRACKED.findall(text)[0]))
    client.get(path_of(re.search(r'src="(https?://[^"]+/n/o/[^"]+/)"', html).group(1)))
    flush()
    reader = next(r for r in readers if r.email == mail.outbox[0].to[0])

    subscriber_erase(subscriber=reader)

    assert not Click.objects.exists() and not Open.objects.exists()


def test_buffered_clicks_are_written_by_the_flush_exactly_once(sent, client, redis_buffer):
    from outlet.newsletters.measuring.recording import (
        BUFFER_KEY,
        tracking_flush,
        tracking_process_push,
    )

    issue, readers, article = sent
    urls = [path_of(url) for message in mail.outbox for url in TRACKED.findall(parts(message)[0])]
    for url in urls:
        assert client.get(url).status_code == 302
    assert not Click.objects.exists()
    tracking_process_push()  # what this process's push thread does every 20 ms

    # A flush that died after writing, before it deleted what it took: the next one
    # takes the same lines again, and they are recorded once.
    redis_buffer.rename(f"{BUFFER_PREFIX}:{BUFFER_KEY}", f"{BUFFER_PREFIX}:{BUFFER_KEY}:flushing")
    kept = redis_buffer.lrange(f"{BUFFER_PREFIX}:{BUFFER_KEY}:flushing", 0, -1)
    assert tracking_flush() == len(urls)
    redis_buffer.rpush(f"{BUFFER_PREFIX}:{BUFFER_KEY}:flushing", *kept)
    assert tracking_flush() == len(urls)
    assert tracking_flush() == 0

    assert Click.objects.filter(issue=issue).count() == len(urls)
    stats = IssueStats.objects.get(issue=issue)
    assert (stats.clicks, stats.clicked) == (len(urls), 3)


def wsgi_get(path: str, **environ) -> tuple[str, dict[str, str], bytes]:
    """A request to the production WSGI application (outlet/wsgi.py)."""
    from django.core import signals
    from django.db import close_old_connections

    from outlet.wsgi import application

    answer: dict = {}

    def start_response(status, headers):
        answer["status"], answer["headers"] = status, dict(headers)

    # As Django's test client does: the test's database connection stays open.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        body = b"".join(
            application(
                {"REQUEST_METHOD": "GET", "PATH_INFO": path, "wsgi.url_scheme": "http", **environ},
                start_response,
            )
        )
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return answer["status"], answer["headers"], body


def test_the_wsgi_front_answers_clicks_and_pixels_like_the_views(sent):
    issue, readers, article = sent
    text, html = parts(mail.outbox[0])
    click = path_of(TRACKED.findall(text)[0])
    pixel = path_of(re.search(r'src="(https?://[^"]+/n/o/[^"]+/)"', html).group(1))

    status, headers, _ = wsgi_get(click)
    tampered_status, tampered, _ = wsgi_get(click[:-3] + "x/")
    off_site = wsgi_get("/n/c///evil.example/")[1]
    pixel_status, pixel_headers, gif = wsgi_get(pixel, HTTP_USER_AGENT="Mozilla/5.0")
    flush()

    assert status.startswith("302") and headers["Location"].startswith("http")
    assert "no-store" in headers["Cache-Control"]
    assert tampered_status.startswith("302") and tampered["Location"] == "/"
    assert off_site["Location"] == "/"
    assert pixel_status.startswith("200") and pixel_headers["Content-Type"] == "image/gif"
    assert gif.startswith(b"GIF")
    assert Click.objects.filter(issue=issue).count() == 1
    assert Open.objects.filter(issue=issue).count() == 1


def test_the_text_rewrite_tracks_only_whole_urls_that_are_registered(settings):
    from outlet.newsletters.measuring.links import bodies_track

    settings.SITE_URL = "https://outlet.example"
    html = '<a href="https://example.org/report">report</a>'
    text = (
        "Report: https://example.org/report.\n"
        "PDF: https://example.org/report.pdf\n"
        "More: https://example.org/report/more\n"
    )
    _, tracked = bodies_track(
        issue_id=1, html=html, text=text, links={"https://example.org/report": 0}, opens=False
    )
    assert "https://example.org/report.pdf" in tracked
    assert "https://example.org/report/more" in tracked
    assert re.search(r"Report: https://outlet\.example/n/c/\S+/\.\n", tracked)
