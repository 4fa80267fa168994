"""An editor reads what a sent issue did: figures, chart and links in the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from playwright.sync_api import expect

from outlet.donations.models import Donation
from tests.factories import DonationFactory, IssueFactory, NewsletterFactory, SubscriberFactory
from tests.newsletters.test_measuring import TRACKED, flush, parts, path_of, send_everything

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_the_issue_report_reads_at_a_glance(live_server, page, screenshot, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    daily = NewsletterFactory(name="The Daily Briefing")
    SubscriberFactory.create_batch(6, newsletters=[daily])
    issue = send_everything(
        IssueFactory(
            newsletter=daily,
            body='<p>Read <a href="https://example.org/data">the data</a>.</p>',
        )
    )
    reader = Client()
    for message in mail.outbox[:4]:
        for url in TRACKED.findall(parts(message)[0])[:2]:
            reader.get(path_of(url))
    flush()
    DonationFactory(amount=2500, status=Donation.Status.PAID, source=f"issue-{issue.pk}")
    User.objects.create_superuser("editor", "editor@outlet.test", "pw-editor-2026")

    page.goto(live_server.url + "/admin/login/")
    page.fill("#id_username", "editor")
    page.fill("#id_password", "pw-editor-2026")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/newsletters/issue/{issue.pk}/change/")

    report = page.locator(".issue-report")
    expect(report.locator('[data-figure="sent"]')).to_have_text("6")
    expect(report.locator('[data-figure="clicked"]')).to_have_text("4")
    expect(report.locator('[data-figure="raised"]')).to_have_text("$25.00")
    expect(report.locator("svg")).to_be_visible()
    expect(report.locator("svg polyline")).to_have_count(2)
    screenshot("issue-report")

    page.goto(f"{live_server.url}/admin/newsletters/issue/?newsletter__id__exact={daily.pk}")
    expect(page.locator("#result_list")).to_contain_text("1 / $25.00")
    screenshot("issue-list-figures")
