"""A reader behind a real Varnish (deploy/varnish/outlet.vcl): the article page comes
from the shared cache, the same for everyone, and its forms still work and stay
CSRF-safe: a newsletter sign-up and a donation started from the cached page."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from outlet.donations.models import Donation
from outlet.newsletters.models import Subscriber
from tests.conftest import free_port, wait_for_port
from tests.factories import AppealFactory, ArticleFactory, NewsletterFactory

pytestmark = pytest.mark.django_db(transaction=True)

VCL = Path(django_settings.BASE_DIR) / "deploy" / "varnish" / "outlet.vcl"
VARNISHD = shutil.which("varnishd", path=f"{os.environ.get('PATH', '')}:/usr/sbin")


class VarnishAddress(str):
    """The readers' address of a test Varnish; `purge_url` is its separate purge listener."""

    purge_url: str


@pytest.fixture
def varnish(live_server, tmp_path) -> VarnishAddress:
    """varnishd with the project's VCL in front of the live server; its address."""
    if VARNISHD is None:
        pytest.skip("varnishd is missing: `make test` installs varnish and varnish-modules")
    origin_port = live_server.url.rsplit(":", 1)[1]
    vcl = tmp_path / "outlet.vcl"
    vcl.write_text(VCL.read_text().replace('.port = "8000";', f'.port = "{origin_port}";'))
    port, purge_port = free_port(), free_port()
    args = [VARNISHD, "-F", "-n", str(tmp_path / "varnish"), "-f", str(vcl),
            "-a", f"127.0.0.1:{port}", "-a", f"purge=127.0.0.1:{purge_port}",
            "-T", f"127.0.0.1:{free_port()}", "-s", "malloc,64m"]  # fmt: skip
    if os.geteuid() == 0:
        args[1:1] = ["-j", "none"]
    log = open(tmp_path / "varnishd.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port)
        address = VarnishAddress(f"http://127.0.0.1:{port}")
        address.purge_url = f"http://127.0.0.1:{purge_port}/"
        yield address
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        log.close()


def test_reader_signs_up_and_starts_a_donation_from_a_page_varnish_holds(
    varnish, localstripe, settings, page, screenshot
):
    settings.SITE_URL = varnish
    settings.EDGE_CACHE_SECONDS = 300
    settings.SECURE_CSP = {
        directive: [*sources, localstripe]
        if directive in ("script-src", "connect-src", "frame-src")
        else sources
        for directive, sources in settings.SECURE_CSP.items()
    }
    newsletter = NewsletterFactory(name="The Daily Briefing")
    AppealFactory(is_default=True, button_label="Support our journalism")
    article = ArticleFactory(headline="How the district map was drawn")
    url = varnish + article.get_absolute_url()
    for _ in range(2):  # the first reader fills the shared cache
        with urllib.request.urlopen(url) as response:
            first_bytes = response.read()
    assert response.headers["X-Cache"] == "hit"
    assert response.headers["Set-Cookie"] is None

    # The page the browser gets is the cached one, byte for byte: no token, no nonce.
    answer = page.goto(url)
    assert answer.headers["x-cache"] == "hit" and answer.body() == first_bytes
    box = page.get_by_role("complementary", name="Get our analysis by email")
    box.get_by_label("Email address").fill("edge.reader@example.com")
    box.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/newsletter/thanks/")
    subscriber = Subscriber.objects.get(email="edge.reader@example.com")
    assert subscriber.subscriptions.filter(newsletter=newsletter).exists()
    screenshot("edge-signup-thanks")

    # Back on the cached article, the appeal starts a donation.
    answer = page.goto(url)
    assert answer.headers["x-cache"] == "hit"
    page.get_by_role("link", name="Support our journalism").first.click()
    page.wait_for_selector("#donate-submit:not([disabled])")
    page.get_by_label("Full name").fill("Edge Reader")
    page.get_by_label("Email").fill("edge.donor@example.test")
    page.locator(".amounts__option").filter(has_text=re.compile(r"^\$25$")).click()
    card = page.locator("#payment-element")
    card.get_by_label("Card number").fill("4242424242424242")
    card.get_by_label("Expiry month").fill("12")
    card.get_by_label("Expiry year").fill("34")
    card.get_by_label("Security code").fill("123")
    card.get_by_label("Postcode").fill("10001")
    page.get_by_role("button", name=re.compile(r"Give \$25\.00")).click()
    page.wait_for_url("**/donate/thanks/**", timeout=20_000)
    donation = Donation.objects.get(donor__email="edge.donor@example.test")
    assert donation.amount == 2500 and donation.source == article.slug


def test_a_forged_sign_up_through_varnish_is_refused(varnish):
    """With a valid token and cookie (as another site could make a browser send), only the
    Origin check stands between the post and a sign-up: the same post from our own
    origin signs up, proving the token was good."""
    import http.cookiejar
    import json

    newsletter = NewsletterFactory()
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(varnish + "/csrf/") as response:
        token = json.load(response)["token"]

    def sign_up(email: str, origin: str) -> int:
        body = f"email={email}&newsletters={newsletter.pk}&csrfmiddlewaretoken={token}"
        request = urllib.request.Request(
            varnish + "/newsletter/",
            data=body.encode(),
            headers={"Origin": origin, "Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        try:
            with opener.open(request) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert sign_up("victim%40example.com", "https://evil.example") == 403
    assert sign_up("reader%40example.com", varnish) == 200  # followed to the thanks page
    time.sleep(0.1)
    assert not Subscriber.objects.filter(email="victim@example.com").exists()
    assert Subscriber.objects.filter(email="reader@example.com").exists()


def test_sign_up_sent_before_the_token_arrived_waits_for_it(varnish, settings, page):
    settings.SITE_URL = varnish
    settings.EDGE_CACHE_SECONDS = 300
    NewsletterFactory()
    article = ArticleFactory()
    page.goto(varnish + article.get_absolute_url())

    # Submitted by script, without the focus that would have fetched the token early.
    page.evaluate(
        """() => {
          const form = document.querySelector("form[data-csrf]");
          form.querySelector("input[type=email]").value = "quick.reader@example.com";
          form.requestSubmit();
        }"""
    )

    page.wait_for_url("**/newsletter/thanks/")
    assert Subscriber.objects.filter(email="quick.reader@example.com").exists()


def _through(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url) as response:
            return response.status, response.headers.get("X-Cache", ""), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("X-Cache", ""), exc.read().decode()


def test_unpublished_article_leaves_varnish_within_a_second(varnish, settings):
    """The takedown path end to end: commit, purge task, xkey purge in a real Varnish."""
    from outlet.articles.services import article_unpublish
    from outlet.celery import app

    settings.EDGE_PURGER, settings.EDGE_PURGE_URLS = "varnish", [varnish.purge_url]
    settings.EDGE_CACHE_SECONDS = 300
    article = ArticleFactory(headline="A story to take down", slug="take-down")
    ArticleFactory(headline="A story that stays", section=article.section)
    pages = [article.get_absolute_url(), "/", article.section.get_absolute_url(), "/feed/"]
    for path in pages:
        _through(varnish + path)
        status, cache_state, text = _through(varnish + path)
        assert (status, cache_state) == (200, "hit") and "take-down" in text, path

    app.conf.task_always_eager = True  # the purge task runs at the commit, in this process
    try:
        article_unpublish(article=article)
        taken_down = time.monotonic()
    finally:
        app.conf.task_always_eager = False

    assert _through(varnish + article.get_absolute_url())[0] == 404
    for path in pages[1:]:
        status, _, text = _through(varnish + path)
        assert status == 200 and "take-down" not in text, path
    assert time.monotonic() - taken_down < 1.0
    assert "A story that stays" in _through(varnish + pages[2])[2]


@pytest.mark.parametrize("poison", ["Host", "X-Forwarded-Host"])
def test_a_poisoned_host_leaves_no_foreign_link_in_what_varnish_holds(varnish, settings, poison):
    """The first request of a page names another port of our host (a Host header
    ALLOWED_HOSTS lets through, or X-Forwarded-Host); what Varnish then serves every
    reader links only to SITE_URL."""
    settings.SITE_URL = varnish
    settings.EDGE_CACHE_SECONDS = 300
    article = ArticleFactory(headline="Poisoned links")
    evil = "127.0.0.1:6666"
    for path in ("/feed/", "/feed/atom/", article.get_absolute_url(), "/sitemap.xml"):
        poisoned = urllib.request.Request(varnish + path, headers={poison: evil})
        with urllib.request.urlopen(poisoned) as response:
            assert evil.encode() not in response.read(), path
        with urllib.request.urlopen(varnish + path) as response:
            body = response.read()
        if poison == "X-Forwarded-Host":
            assert response.headers["X-Cache"] == "hit", path  # the copy the first one left
        assert evil.encode() not in body, path
        assert varnish.encode() in body, path
