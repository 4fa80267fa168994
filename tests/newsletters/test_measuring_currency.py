"""An issue's money figures speak the site's currency: yen are not shown as cents."""

from __future__ import annotations

import csv
import io

import pytest

from tests.newsletters.test_measuring_report import (  # noqa: F401 - fixtures
    _locmem_mail,
    editor_client,
    figure,
    measured,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def yen_site(settings):
    settings.DONATION_CURRENCY = "jpy"


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
