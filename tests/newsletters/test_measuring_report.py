"""The issue report in the admin: figures, links, chart, CSV, and the issue list."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.contrib.auth.models import User
from django.core import mail

from outlet.donations.models import Donation
from outlet.newsletters.measuring.links import click_target
from outlet.newsletters.models import IssueLink
from outlet.newsletters.tokens import unsubscribe_token
from tests.factories import (
    DonationFactory,
    DonorFactory,
    GiftFactory,
    IssueFactory,
    SubscriberFactory,
)
from tests.newsletters.test_measuring import TRACKED, flush, parts, path_of, send_everything

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def editor_client(client):
    user = User.objects.create_superuser("editor", "editor@outlet.test", "pw-for-tests-only")
    client.force_login(user)
    return client


def figure(page: str, name: str) -> str:
    return re.search(rf'data-figure="{name}">([^<]*)<', page).group(1)


@pytest.fixture
def measured(daily, client):
    """An issue to four readers: two click, two open, one unsubscribes, two gifts."""
    SubscriberFactory.create_batch(4, newsletters=[daily])
    issue = send_everything(
        IssueFactory(
            newsletter=daily,
            body='<p><a href="https://example.org/a">A</a> and <a href="https://example.org/b">B</a></p>',
        )
    )
    by_reader = {message.to[0]: parts(message) for message in mail.outbox}
    first, second, third, fourth = sorted(by_reader)

    def click(reader: str, target: str) -> None:
        """Follow the reader's tracked link whose destination is `target`."""
        for url in TRACKED.findall(by_reader[reader][0]):
            found = click_target(path_of(url).split("/")[3])
            if IssueLink.objects.get(issue=issue, position=found.position).url == target:
                assert client.get(path_of(url))["Location"] == target
                return
        raise AssertionError(target)

    click(first, "https://example.org/a")
    click(first, "https://example.org/a")
    click(second, "https://example.org/b")
    for reader in (first, third):
        pixel = re.search(r'src="(https?://[^"]+/n/o/[^"]+/)"', by_reader[reader][1]).group(1)
        client.get(path_of(pixel), HTTP_USER_AGENT="Mozilla/5.0")
    from outlet.newsletters.models import Subscriber

    leaving = Subscriber.objects.get(email=fourth)
    client.post(
        f"/newsletter/unsubscribe/{unsubscribe_token(leaving, daily)}/",
        {"List-Unsubscribe": "One-Click"},
    )
    donor = DonorFactory()
    DonationFactory(
        donor=donor, amount=1000, status=Donation.Status.PAID, source=f"issue-{issue.pk}"
    )
    gift = GiftFactory(donor=donor, amount=500, source=f"issue-{issue.pk}")
    DonationFactory(
        donor=donor, gift=gift, frequency=gift.interval, amount=500, status=Donation.Status.PAID,
        source=f"issue-{issue.pk}",
    )  # fmt: skip
    DonationFactory(
        donor=donor, amount=700, status=Donation.Status.PENDING, source=f"issue-{issue.pk}"
    )
    flush()
    return issue


def test_the_issue_page_shows_each_figure(editor_client, measured):
    from outlet.newsletters.models import Click

    clicks = Click.objects.filter(issue=measured).count()
    page = editor_client.get(f"/admin/newsletters/issue/{measured.pk}/change/").content.decode()

    assert figure(page, "sent") == "4"
    assert figure(page, "delivered") == "4"
    assert figure(page, "bounced") == "0"
    assert figure(page, "opened") == "2"
    assert figure(page, "clicked") == "2"
    assert figure(page, "clicks") == str(clicks) == "3"
    assert figure(page, "unsubscribed") == "1"
    assert figure(page, "complaints") == "0"
    assert figure(page, "gifts") == "2"
    assert figure(page, "raised") == "$15.00"
    assert "$10.00 one-time" in page and "$5.00 recurring" in page
    assert "https://example.org/a" in page and "<svg" in page and "<polyline" in page


def test_the_report_downloads_as_csv(editor_client, measured):
    response = editor_client.get(f"/admin/newsletters/issue/{measured.pk}/report.csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    figures = {row[0]: row[1] for row in rows if len(row) == 2}

    assert response["Content-Type"].startswith("text/csv")
    assert figures["Sent"] == "4" and figures["Unsubscribed"] == "1"
    assert figures["Raised one-time"] == "10.00" and figures["Recurring gifts"] == "1"
    assert ["https://example.org/a", "2", "1"] in rows


def test_the_issue_list_compares_issues_at_a_glance(
    editor_client, measured, daily, django_assert_max_num_queries
):
    IssueFactory.create_batch(5, newsletter=daily)
    with django_assert_max_num_queries(12):
        page = editor_client.get(
            f"/admin/newsletters/issue/?newsletter__id__exact={daily.pk}"
        ).content.decode()

    assert "2 (50.0%)" in page  # opened and clicked, of four delivered
    assert "2 / $15.00" in page


def test_the_newsletter_list_leads_to_its_issues_and_their_figures(editor_client, daily):
    page = editor_client.get("/admin/newsletters/newsletter/").content.decode()
    assert f"/admin/newsletters/issue/?newsletter__id__exact={daily.pk}" in page


def test_the_issue_page_builds_nothing_for_staff_who_may_not_see_issues(client, daily):
    from outlet.newsletters.models import Issue, IssueStats

    issue = IssueFactory(newsletter=daily)
    Issue.objects.filter(pk=issue.pk).update(status=Issue.Status.SENT)
    staff = User.objects.create_user("intern", "intern@outlet.test", "pw", is_staff=True)
    client.force_login(staff)

    response = client.get(f"/admin/newsletters/issue/{issue.pk}/change/")

    assert response.status_code == 403
    assert not IssueStats.objects.filter(issue=issue).exists()


def test_the_issue_page_reads_stored_figures_and_never_counts_clicks_or_opens(
    editor_client, measured
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from outlet.newsletters.models import Click, Open

    with CaptureQueriesContext(connection) as queries:
        page = editor_client.get(f"/admin/newsletters/issue/{measured.pk}/change/")
    assert page.status_code == 200
    tables = (Click._meta.db_table, Open._meta.db_table)
    assert not [q["sql"] for q in queries if any(f'"{t}"' in q["sql"] for t in tables)]
    assert "https://example.org/a" in page.content.decode()
