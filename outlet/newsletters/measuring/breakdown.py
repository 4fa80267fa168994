"""An issue's clicks per link and opens and clicks per hour, counted with its figures.

Contract: `issue_breakdown(issue_id=...)` counts, through the (issue, link, delivery),
(issue, opened_at) and (issue, clicked_at) indexes, what the admin report shows beside
the figures; `issue_stats_refresh` stores it in `IssueStats.breakdown` (at most once
per NEWSLETTER_STATS_REFRESH_SECONDS), so the report page reads one row whatever the
number of subscribers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count
from django.db.models.functions import TruncHour

from outlet.newsletters.models import Click, Issue, Open

CHART_HOURS = 48


def _hourly(rows: Any, start: datetime) -> list[int]:
    series = [0] * CHART_HOURS
    origin = start.replace(minute=0, second=0, microsecond=0)
    for row in rows:
        index = int((row["hour"] - origin).total_seconds()) // 3600
        if 0 <= index < CHART_HOURS:
            series[index] += row["n"]
    return series


def issue_breakdown(*, issue_id: int, delivery_ids: list[int] | None = None) -> dict[str, Any]:
    """The issue's breakdown (of `delivery_ids` only, if given: what an erased reader
    counted for, kept in `IssueStats.erased`)."""
    clicks, opens = Click.objects.filter(issue_id=issue_id), Open.objects.filter(issue_id=issue_id)
    if delivery_ids is not None:
        clicks, opens = (
            clicks.filter(delivery_id__in=delivery_ids),
            opens.filter(delivery_id__in=delivery_ids),
        )
    links = {
        str(row["link_id"]): [row["clicks"], row["readers"]]
        for row in clicks.values("link_id").annotate(
            clicks=Count("id"), readers=Count("delivery_id", distinct=True)
        )
    }
    breakdown: dict[str, Any] = {"links": links, "opens_by_hour": [], "clicks_by_hour": []}
    start = Issue.objects.filter(pk=issue_id).values_list("started_at", flat=True).first()
    if start:
        end = start + timedelta(hours=CHART_HOURS)
        breakdown["opens_by_hour"] = _hourly(
            opens.filter(opened_at__gte=start, opened_at__lt=end)
            .annotate(hour=TruncHour("opened_at"))
            .values("hour")
            .annotate(n=Count("id")),
            start,
        )
        breakdown["clicks_by_hour"] = _hourly(
            clicks.filter(clicked_at__gte=start, clicked_at__lt=end)
            .annotate(hour=TruncHour("clicked_at"))
            .values("hour")
            .annotate(n=Count("id")),
            start,
        )
    return breakdown


def breakdown_add(total: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """Two breakdowns added up (the live rows' and what erased readers counted for)."""
    links = {k: list(v) for k, v in total.get("links", {}).items()}
    for key, (clicks, readers) in more.get("links", {}).items():
        mine = links.setdefault(key, [0, 0])
        mine[0], mine[1] = mine[0] + clicks, mine[1] + readers
    added: dict[str, Any] = {"links": links}
    for series in ("opens_by_hour", "clicks_by_hour"):
        a, b = total.get(series, []), more.get(series, [])
        added[series] = [x + y for x, y in zip(a or [0] * len(b), b or [0] * len(a), strict=True)]
    return added
