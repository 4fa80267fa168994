"""The issue report: its figures, its links, its first 48 hours, and the CSV of it.

Contract: `issue_report(issue=...)` reads the stored counters and breakdown
(`IssueStats`: clicks per link, opens and clicks per hour) and the issue's gifts
(through the donations selector, by the issue's `source`); `issues_gift_totals` gives a
page of issues their gifts in one query. Nothing here scans all deliveries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.conf import settings

from outlet.donations.currencies import amount_csv, amount_format
from outlet.donations.selectors import SourceTotals, totals_by_source
from outlet.newsletters.measuring.breakdown import CHART_HOURS
from outlet.newsletters.measuring.models import IssueLink, IssueStats
from outlet.newsletters.measuring.recording import issue_stats_refresh
from outlet.newsletters.models import Issue
from outlet.newsletters.sending.rendering import issue_source

CHART_WIDTH, CHART_HEIGHT = 480, 120


@dataclass(frozen=True)
class LinkFigures:
    url: str
    clicks: int
    readers: int


@dataclass(frozen=True)
class IssueReport:
    issue: Issue
    stats: IssueStats
    gifts: SourceTotals
    links: list[LinkFigures] = field(default_factory=list)
    opens_by_hour: list[int] = field(default_factory=list)
    clicks_by_hour: list[int] = field(default_factory=list)

    def share(self, count: int) -> float:
        delivered = self.stats.delivered
        return round(100 * count / delivered, 1) if delivered else 0.0

    @property
    def opened_share(self) -> float:
        return self.share(self.stats.opened)

    @property
    def clicked_share(self) -> float:
        return self.share(self.stats.clicked)

    @property
    def raised(self) -> str:
        return _money_shown(self.gifts.amount)

    @property
    def raised_one_time(self) -> str:
        return _money_shown(self.gifts.one_time_amount)

    @property
    def raised_recurring(self) -> str:
        return _money_shown(self.gifts.recurring_amount)

    def figures(self) -> list[tuple[str, object]]:
        """The report's lines, as the admin and the CSV show them (site's currency)."""
        s, g = self.stats, self.gifts
        return [
            ("Sent", s.sent),
            ("Delivered", s.delivered),
            ("Bounced", s.bounced),
            ("Opened (approximate)", s.opened),
            ("Opened, share of delivered (%)", self.opened_share),
            ("Of the opens, machine prefetch only", s.opened_machine),
            ("Clicked (unique)", s.clicked),
            ("Clicked, share of delivered (%)", self.clicked_share),
            ("Clicks (total)", s.clicks),
            ("Unsubscribed", s.unsubscribed),
            ("Complaints", s.complaints),
            ("Gifts", g.count),
            ("Raised", _money(g.amount)),
            ("One-time gifts", g.one_time_count),
            ("Raised one-time", _money(g.one_time_amount)),
            ("Recurring gifts", g.recurring_count),
            ("Raised recurring", _money(g.recurring_amount)),
        ]

    def chart(self) -> dict[str, object]:
        """Polyline points of opens and clicks per hour, for the admin's inline SVG."""
        peak = max([1, *self.opens_by_hour, *self.clicks_by_hour])
        step = CHART_WIDTH / (CHART_HOURS - 1)

        def points(series: list[int]) -> str:
            return " ".join(
                f"{hour * step:.1f},{CHART_HEIGHT - CHART_HEIGHT * count / peak:.1f}"
                for hour, count in enumerate(series)
            )

        return {
            "width": CHART_WIDTH,
            "height": CHART_HEIGHT,
            "peak": peak,
            "opens": points(self.opens_by_hour),
            "clicks": points(self.clicks_by_hour),
        }


def _money(minor: int) -> str:
    """For the CSV: major units in the site's currency (yen have no decimals)."""
    return amount_csv(amount=minor, currency=settings.DONATION_CURRENCY)


def _money_shown(minor: int) -> str:
    return amount_format(amount=minor, currency=settings.DONATION_CURRENCY)


def issue_report(*, issue: Issue) -> IssueReport:
    """The report from the stored counters and breakdown (one row, whatever the size
    of the issue), refreshed first only if the issue was never counted."""
    stats = IssueStats.objects.filter(issue=issue).first()
    if stats is None or not stats.breakdown:
        stats = issue_stats_refresh(issue_id=issue.pk)
    gifts = totals_by_source(sources=[issue_source(issue)]).get(issue_source(issue), SourceTotals())
    per_link: dict[str, list[int]] = stats.breakdown.get("links", {})
    links = [
        LinkFigures(
            url=link.url,
            clicks=per_link.get(str(link.pk), [0, 0])[0],
            readers=per_link.get(str(link.pk), [0, 0])[1],
        )
        for link in IssueLink.objects.filter(issue=issue).order_by("position")
    ]
    links.sort(key=lambda link: -link.clicks)
    return IssueReport(
        issue=issue,
        stats=stats,
        gifts=gifts,
        links=links,
        opens_by_hour=list(stats.breakdown.get("opens_by_hour", [])),
        clicks_by_hour=list(stats.breakdown.get("clicks_by_hour", [])),
    )


def issue_report_rows(report: IssueReport) -> Iterator[list[object]]:
    """The report as CSV rows: the figures, then the links with their clicks."""
    yield ["Issue", str(report.issue)]
    yield ["Sent at", report.issue.sent_at.isoformat() if report.issue.sent_at else ""]
    for name, value in report.figures():
        yield [name, value]
    yield []
    yield ["Link", "Clicks", "Readers who clicked"]
    for link in report.links:
        yield [link.url, link.clicks, link.readers]


def issues_gift_totals(issues: Iterable[Issue]) -> dict[int, SourceTotals]:
    """Gifts of a page of issues, in one query."""
    by_source = {issue_source(issue): issue.pk for issue in issues}
    totals = totals_by_source(sources=list(by_source))
    return {by_source[source]: figures for source, figures in totals.items()}
