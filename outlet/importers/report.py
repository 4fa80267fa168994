"""One report per import: what came across, what was left behind and why.

Every object the import looks at lands in exactly one outcome per kind
(imported, updated, unchanged, skipped, failed), with a reason for the last two.
The report prints as lines for the editor, ending with the one summary line
scripts read (`last_line`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

OUTCOMES = ("imported", "updated", "unchanged", "skipped", "failed")
#: The kinds the summary line counts, in its order.
SUMMARY_KINDS = (
    "articles",
    "pages",
    "drafts",
    "authors",
    "sections",
    "tags",
    "images",
    "redirects",
)


@dataclass
class ImportReport:
    source: str
    dry_run: bool = False
    counts: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    #: "skipped post 12 (slug): why" / "failed …" lines, in file order.
    problems: list[str] = field(default_factory=list)
    #: Things kept but changed on the way (held as a draft, a block kept as HTML…).
    notes: list[str] = field(default_factory=list)
    #: Set when the whole file could not be read: nothing was written.
    fatal: str = ""

    def record(self, kind: str, outcome: str, *, label: str = "", reason: str = "") -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        self.counts[kind][outcome] += 1
        if outcome in ("skipped", "failed"):
            self.problems.append(f"{outcome} {label}: {reason}".strip())

    def note(self, label: str, message: str) -> None:
        self.notes.append(f"{label}: {message}")

    def total(self, kind: str) -> int:
        """What the import covers of a kind: imported, updated or unchanged (not skipped)."""
        counts = self.counts.get(kind, Counter())  # reading a kind must not add it to lines()
        return counts["imported"] + counts["updated"] + counts["unchanged"]

    def outcome_total(self, outcome: str) -> int:
        return sum(counts[outcome] for counts in self.counts.values())

    def last_line(self) -> str:
        failed = self.outcome_total("failed") + (1 if self.fatal else 0)
        totals = " ".join(f"{kind}={self.total(kind)}" for kind in SUMMARY_KINDS)
        return (
            f"archive_import: source={self.source} {totals} "
            f"skipped={self.outcome_total('skipped')} failed={failed}"
        )

    def lines(self) -> list[str]:
        lines = ["DRY RUN: nothing was written."] if self.dry_run else []
        if self.fatal:
            lines.append(f"failed: {self.fatal}")
        for kind in sorted(self.counts):
            counts = self.counts[kind]
            detail = ", ".join(f"{o} {counts[o]}" for o in OUTCOMES if counts[o])
            lines.append(f"{kind}: {detail}")
        lines += self.problems + self.notes
        lines.append(self.last_line())
        return lines
