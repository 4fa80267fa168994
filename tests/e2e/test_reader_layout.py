"""Every reader page template at phone and tablet widths: nothing may stick out sideways.

A page that scrolls sideways on a phone cuts the first letters off every line, so each
template (feeds excluded: no layout) is loaded at 320, 390 and 768 px in Chromium and
fails on a document wider than the screen or on any element whose box leaves it. The
article is the hardest one the body editor can produce: a pull quote, a figure, a word
longer than a phone is wide, a long address, and pasted table and code text.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from outlet.donations.tokens import checkout_token_make
from outlet.newsletters.models import Issue, Subscriber
from outlet.newsletters.tokens import confirm_token, preferences_token, unsubscribe_token
from outlet.readers.models import Reader
from outlet.readers.tokens import reader_token_make
from tests.factories import (
    ArticleFactory,
    AuthorFactory,
    DonationFactory,
    GiftFactory,
    IssueFactory,
    NewsletterFactory,
    SectionFactory,
    SubscriberFactory,
    TagFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

WIDTHS = (320, 390, 768)
LONG_WORD = "Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft"
LONG_ADDRESS = (
    "https://records.example.org/council/2026/minutes/district-boundaries-final-version.pdf"
)
RICH_BODY = f"""
<p>The council met on Tuesday. {LONG_WORD} was the only word on the agenda.</p>
<blockquote class="pull-quote"><p>“We were told the district lines were final, and then they moved
them again overnight.”</p></blockquote>
<figure class="figure"><img src="/static/img/demo-map.svg" alt="The council chamber"
width="1600" height="900"><figcaption>The council chamber on Tuesday night.</figcaption></figure>
<p>The full record is at {LONG_ADDRESS} for anyone to read.</p>
<table><tr><td>District 1</td><td>41,203</td></tr>
<tr><td>District 2</td><td>39,877</td></tr></table>
<pre><code>SELECT district, count(*) FROM voters GROUP BY district ORDER BY district;</code></pre>
<blockquote><p>An ordinary quotation, indented.</p></blockquote>
<h2>What happens next: {LONG_WORD}</h2>
<ul><li>The map goes to the state board.</li><li>Residents can comment until March.</li></ul>
"""  # noqa: S608 (an article body, not SQL)

# Off-screen on purpose: hidden from sight but kept for screen readers and bots.
DELIBERATELY_OFF_SCREEN = ".visually-hidden, .skip-link, .newsletter-hp"

OVERFLOW_SCRIPT = """(skip) => {
  const width = document.documentElement.clientWidth;
  const found = [];
  if (document.documentElement.scrollWidth > width) {
    found.push(`document is ${document.documentElement.scrollWidth}px wide`);
  }
  const clippedByAncestor = (element) => {
    for (let node = element.parentElement; node !== document.body; node = node.parentElement) {
      if (getComputedStyle(node).overflowX !== "visible") return true;
    }
    return false;
  };
  for (const element of document.body.querySelectorAll("*")) {
    if (element.closest(skip)) continue;
    const box = element.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    if (box.left >= -0.5 && box.right <= width + 0.5) continue;
    if (clippedByAncestor(element)) continue;
    const classes = String(element.className || "").trim().split(/\\s+/).filter(Boolean);
    const name = [element.tagName.toLowerCase(), ...classes].join(".");
    found.push(`${name} spans ${Math.round(box.left)} to ${Math.round(box.right)}`);
    if (found.length > 8) break;
  }
  return found;
}"""


def overflow_on(page) -> list[str]:
    page.wait_for_load_state("load")
    return page.evaluate(OVERFLOW_SCRIPT, DELIBERATELY_OFF_SCREEN)


@pytest.fixture
def reader_site(live_server, localstripe, settings, tmp_path):
    """One of each reader page, with long content where content can be long."""
    settings.SITE_URL = live_server.url
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DEBUG = False  # readers get the real 404 page
    settings.SECURE_CSP = {
        directive: [*sources, localstripe]
        if directive in ("script-src", "connect-src", "frame-src")
        else sources
        for directive, sources in settings.SECURE_CSP.items()
    }
    section = SectionFactory(name="Politics and Government", slug="politics")
    author = AuthorFactory(name="Maria Konstantinopoulou-Vandenberghe", slug="maria")
    tag = TagFactory(name="Redistricting", slug="redistricting")
    article = ArticleFactory(
        headline=f"The district lines moved overnight: {LONG_WORD}",
        dek="What the new map means for the districts of the county.",
        body=RICH_BODY,
        section=section,
        authors=[author, AuthorFactory(name="Sam Lee")],
    )
    article.tags.add(tag)
    for number in range(3):
        ArticleFactory(headline=f"Another district story {number}", section=section)

    newsletter = NewsletterFactory(name="The Daily Briefing", slug="daily")
    issue = IssueFactory(newsletter=newsletter, articles=[article])
    Issue.objects.filter(pk=issue.pk).update(
        status=Issue.Status.SENT, sent_at=timezone.now() - timedelta(days=1)
    )
    pending = SubscriberFactory(
        email="pending@example.test", status=Subscriber.Status.PENDING, confirmed_at=None
    )
    subscriber = SubscriberFactory(email="kj@example.test", newsletters=[newsletter])

    gift = GiftFactory(donor__email="kj@example.test", donor__name="Katherine Johnson")
    donation = DonationFactory(
        donor=gift.donor, gift=gift, frequency="month", amount=1000, status="paid",
        paid_at=timezone.now(),
    )  # fmt: skip
    reader = Reader.objects.create(email="kj@example.test")
    publish = article.publish_at
    anonymous = {
        "home": "/",
        "article": article.get_absolute_url(),
        "section": section.get_absolute_url(),
        "tag": tag.get_absolute_url(),
        "author": author.get_absolute_url(),
        "archive": "/archive/",
        "archive month": f"/archive/{publish.year}/{publish.month}/",
        "search": "/search/?q=district",
        "search, nothing found": f"/search/?q={LONG_WORD}",
        "donate": "/donate/",
        "donate thanks": f"/donate/thanks/{checkout_token_make(donation_id=donation.pk)}/",
        "supporters": "/donate/supporters/",
        "newsletters": "/newsletter/",
        "newsletter thanks": "/newsletter/thanks/",
        "newsletter confirm": f"/newsletter/confirm/{confirm_token(pending)}/",
        "newsletter preferences": f"/newsletter/preferences/{preferences_token(subscriber)}/",
        "newsletter unsubscribe": f"/newsletter/unsubscribe/{unsubscribe_token(subscriber)}/",
        "newsletter link request": "/newsletter/link/",
        "newsletter link invalid": "/newsletter/confirm/not-a-token/",
        "newsletter archive": f"/newsletter/{newsletter.slug}/archive/",
        "newsletter issue": f"/newsletter/{newsletter.slug}/archive/{issue.pk}/",
        "account sign-in": "/account/",
        "account sign-in link": f"/account/sign-in/"
        f"{reader_token_make(purpose='sign-in', reader=reader)}/",
        "not found": "/no-such-page/",
    }
    signed_in = {
        "account": "/account/?done=signed-in",
        "receipt": f"/account/receipts/{donation.pk}/",
        "delete data": "/account/data/delete/",
    }
    return live_server.url, anonymous, signed_in, reader


def test_no_reader_page_scrolls_sideways_on_phones_or_tablets(reader_site, browser):
    url, anonymous, signed_in, reader = reader_site
    failures = []
    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 800})
        page = context.new_page()
        for name, path in anonymous.items():
            page.goto(url + path)
            failures += [f"{width}px {name}: {problem}" for problem in overflow_on(page)]
        page.goto(url + f"/account/sign-in/{reader_token_make(purpose='sign-in', reader=reader)}/")
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url("**/account/?done=signed-in")
        for name, path in signed_in.items():
            page.goto(url + path)
            failures += [f"{width}px {name}: {problem}" for problem in overflow_on(page)]
        context.close()

    assert not failures, "\n".join(failures)
