"""Manifests: one row per audio file (JSONL or CSV) with `path`, and optionally `label`, `text`
(or `caption`), `split` and numeric fields such as `pitch`.

Relative paths are read against the manifest's folder and must stay inside it (a `../` row is
skipped); absolute paths are taken as written. `write_manifest` writes the rows that `audiodiff
data scan` produces: numbers flat beside the other fields, so the same file also reads as CSV.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

from audiodiff.checkpoint import write_atomic
from audiodiff.config import DataConfig
from audiodiff.data.items import AudioItem, ScanReport

__all__ = ["item_row", "items_from_manifest", "read_manifest_rows", "row_numbers", "write_jsonl", "write_manifest"]

# fields with a meaning of their own; every other numeric JSON field is a number condition
RESERVED = {"path", "label", "text", "caption", "split", "seconds", "sample_rate", "channels", "numbers"}
MALFORMED = "malformed manifest line"
NO_PATH = "manifest row without a path"


def read_manifest_rows(path: Path, report: ScanReport) -> list[tuple[str, dict]]:
    """`(where, row)` for each well-formed row; malformed lines are skipped and counted."""
    reader = _read_csv if path.suffix.lower() == ".csv" else _read_jsonl
    rows = []
    for where, row in reader(path, report):
        if not isinstance(row.get("path"), str) or not row["path"].strip() or "\0" in row["path"]:
            report.skip(NO_PATH, where)
            continue
        rows.append((where, row))
    return rows


def _read_jsonl(path: Path, report: ScanReport):
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{line_no}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                report.skip(MALFORMED, where)
                continue
            if not isinstance(row, dict):
                report.skip(MALFORMED, where)
                continue
            yield where, row


def _read_csv(path: Path, report: ScanReport):
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.DictReader(handle)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error:
                report.skip(MALFORMED, f"{path.name}:{reader.line_num}")
                continue
            where = f"{path.name}:{reader.line_num}"
            # DictReader files extra cells under None and fills missing cells with None
            if None in row or any(value is None for value in row.values()):
                report.skip(MALFORMED, where)
                continue
            yield where, row


def _escapes(name: str) -> bool:
    """True for a relative path that leaves its folder (`../x.wav`); checked on the text, not the disk."""
    return os.path.normpath(name).split(os.sep, 1)[0] == os.pardir


def _number(value) -> float:
    if isinstance(value, bool):
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def row_numbers(row: dict, number_fields: list[str]) -> dict[str, float]:
    """Every numeric field of a row, and `number_fields` parsed (NaN where absent or not a number)."""
    numbers = {
        key: float(value)
        for key, value in row.items()
        if key not in RESERVED
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    }
    numbers.update({name: _number(row.get(name)) for name in number_fields})
    return numbers


def items_from_manifest(path: Path, cfg: DataConfig, report: ScanReport) -> list[AudioItem]:
    """Items of the manifest file `path` (all splits; the caller filters)."""
    root = path.parent
    items = []
    for where, row in read_manifest_rows(path, report):
        name = row["path"].strip()
        absolute = os.path.isabs(name)
        file = Path(name) if absolute else root / name
        if not absolute and _escapes(name):
            report.skip("path outside the manifest's folder (use an absolute path)", f"{where} {name}")
            continue
        label = row.get("label")
        text = row.get("text") or row.get("caption")
        split = row.get("split")
        items.append(
            AudioItem(
                file,
                label=str(label) if label not in (None, "") else None,
                text=(str(text).strip() or None) if text else None,
                numbers=row_numbers(row, cfg.number_fields),
                split=str(split) if split not in (None, "") else None,
            )
        )
    return items


def item_row(item: AudioItem, relative_to: Path | None = None) -> dict:
    """The manifest row of a checked item; the path is relative to `relative_to` when inside it."""
    name = os.path.abspath(item.path)
    if relative_to is not None:
        relative = os.path.relpath(name, os.path.abspath(relative_to))
        name = Path(relative).as_posix() if not _escapes(relative) else name
    row: dict = {"path": name}
    if item.label is not None:
        row["label"] = item.label
    if item.text:
        row["text"] = item.text
    if item.split is not None:
        row["split"] = item.split
    for key, value in item.numbers.items():
        if key not in RESERVED:
            row[key] = value if math.isfinite(value) else None
    row.update(seconds=round(item.seconds, 4), sample_rate=item.sample_rate, channels=item.channels)
    return row


def write_manifest(items: list[AudioItem], out: str | os.PathLike) -> Path:
    """Write a JSONL manifest of `items`, paths relative to its folder where possible."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_jsonl(out, (item_row(item, out.parent) for item in items))


def write_jsonl(path: Path, rows: Iterable[dict]) -> Path:
    """Write `rows` as JSON lines, atomically (a crash leaves the old file or none, never half)."""

    def write(temporary: Path) -> None:
        with temporary.open("w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)

    return write_atomic(path, write)
