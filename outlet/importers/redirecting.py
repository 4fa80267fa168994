"""Old addresses an import points here, written in batches through `redirects_set`."""

from __future__ import annotations

from outlet.redirects.services import redirects_set

from .report import ImportReport

REDIRECT_BATCH = 500
_REASONS = {
    "skipped": "the address already redirects elsewhere",
    "failed": "not an address a redirect can keep (too long, or not a path)",
}


class RedirectBatch:
    """Each old path once per run (the first item to claim it wins); `flush` at the end."""

    def __init__(self, *, source: str, report: ImportReport) -> None:
        self.source = source
        self.report = report
        self._claimed: set[str] = set()
        self._pending: dict[str, str] = {}

    def add(self, old_path: str, target: str) -> None:
        if not old_path or old_path in self._claimed:
            return
        self._claimed.add(old_path)
        self._pending[old_path] = target
        if len(self._pending) >= REDIRECT_BATCH:
            self.flush()

    def flush(self) -> None:
        outcomes = redirects_set(targets=self._pending, source=self.source)
        self._pending = {}
        for old_path, outcome in outcomes.items():
            if outcome != "same":
                label = old_path if len(old_path) < 120 else f"{old_path[:117]}…"
                self.report.record(
                    "redirects", outcome, label=label, reason=_REASONS.get(outcome, "")
                )
