"""What every data source produces: `AudioItem`s, a `ScanReport` of what was skipped, and the
`DatasetError` raised when nothing usable is left."""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path

from audiodiff.errors import UserError

__all__ = ["AudioItem", "DatasetError", "ScanReport"]

MAX_EXAMPLES = 3  # example paths kept per skip reason


class DatasetError(UserError, ValueError):
    """A dataset that cannot be trained on; the message says why and what to fix."""


@dataclasses.dataclass
class AudioItem:
    """One training file and its conditions. `member` names the file inside the tar shard
    `path` when the audio lives in a shard (see `audiodiff.data.shards`)."""

    path: Path
    label: str | None = None
    text: str | None = None
    numbers: dict[str, float] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    split: str | None = None
    sample_rate: int = 0  # of the file, before any resampling (0 = not read yet)
    channels: int = 0
    member: str | None = None

    @property
    def name(self) -> str:
        """How reports and errors name this item."""
        return f"{self.path}:{self.member}" if self.member else str(self.path)


@dataclasses.dataclass
class ScanReport:
    """What a scan kept and skipped, with reasons and examples."""

    source: str
    kept: int = 0
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    examples: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    layout: str = ""
    converted: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # kept, but changed on load

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        self._example(reason, where)

    def convert(self, what: str, where: str) -> None:
        """Count a usable file that loading will change (resampled, downmixed, ...)."""
        self.converted[what] += 1
        self._example(what, where)

    def _example(self, key: str, where: str) -> None:
        examples = self.examples.setdefault(key, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(where)

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    @classmethod
    def merged(cls, reports: list[ScanReport]) -> ScanReport:
        """One report for several sources (a data.path list)."""
        out = cls(" + ".join(r.source for r in reports), layout=" + ".join(dict.fromkeys(r.layout for r in reports)))
        for report in reports:
            out.kept += report.kept
            out.skipped.update(report.skipped)
            out.converted.update(report.converted)
            for key, examples in report.examples.items():
                for where in examples:
                    out._example(key, where)
        return out

    def __str__(self) -> str:
        layout = f" ({self.layout} layout)" if self.layout else ""
        lines = [f"{self.source}{layout}: {self.kept} usable, {self.num_skipped} skipped"]
        for reason, count in self.skipped.most_common():
            lines.append(f"  skipped {count} x {reason} (e.g. {', '.join(self.examples[reason])})")
        for what, count in self.converted.most_common():
            lines.append(f"  converted on load: {count} x {what} (e.g. {', '.join(self.examples[what])})")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "layout": self.layout,
            "kept": self.kept,
            "skipped": dict(self.skipped),
            "converted": dict(self.converted),
            "examples": self.examples,
        }
