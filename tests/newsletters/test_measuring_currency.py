"""An issue's money figures speak the site's currency: yen are not shown as cents."""

from __future__ import annotations

import csv
import io

import pytest

from outlet.donations.models import Donation, Gift
from tests.factories import DonationFactory
from tests.newsletters.test_measuring_report import (  # noqa: F401 - fixtures
    _locmem_mail,
    editor_client,
    figure,
    measured,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def yen_site(settings, measured):  # noqa: F811
    """The measured issue's gifts were given in yen, the site's currency."""
    settings.DONATION_CURRENCY = "jpy"
    Donation.objects.update(currency="jpy")
    Gift.objects.update(currency="jpy")


def test_gifts_in_another_currency_are_not_added_as_the_sites(settings, editor_client, measured):  # noqa: F811
    """The site moved from dollars to yen: the issue's $10 and $5 gifts (1,500 cents) are
    not ¥1,500, and a ¥700 gift is all the yen it raised, as every other total counts."""
    settings.DONATION_CURRENCY = "jpy"
    DonationFactory(
        amount=700, currency="jpy", status=Donation.Status.PAID, source=f"issue-{measured.pk}"
    )

    page = editor_client.get(f"/admin/newsletters/issue/{measured.pk}/change/").content.decode()

    assert figure(page, "raised") == "¥700"


def test_the_issue_page_shows_yen_as_typed(yen_site, editor_client, measured):  # noqa: F811
    page = editor_client.get(f"/admin/newsletters/issue/{measured.pk}/change/").content.decode()

    assert figure(page, "raised") == "¥1,500"
    assert "¥1,000 one-time" in page and "¥500 recurring" in page


def test_the_report_csv_writes_yen_without_decimals(yen_site, editor_client, measured):  # noqa: F811
    response = editor_client.get(f"/admin/newsletters/issue/{measured.pk}/report.csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    figures = {row[0]: row[1] for row in rows if len(row) == 2}

    assert figures["Raised"] == "1500" and figures["Raised one-time"] == "1000"


def test_the_issue_list_shows_yen_raised(yen_site, editor_client, measured):  # noqa: F811
    page = editor_client.get("/admin/newsletters/issue/").content.decode()

    assert "2 / ¥1,500" in page
