"""Training datasets: a folder of audio files or a manifest, checked once up front.

Every file is opened when the dataset is built: unreadable, empty, non-finite, silent and
too-short files are skipped and counted in a `ScanReport` (how many, why, the first few paths),
so a bad file never stops a run in hour three; a dataset with nothing usable is an error before
training starts. Items are random crops (or zero-padded) of a fixed segment, as waveform
`[channels, samples]` or normalised log-mel `[channels, n_mels, frames]`, plus their conditions.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import soundfile
import torch
from torch.utils.data import Dataset

from audiodiff.config import DataConfig
from audiodiff.audio import (
    AUDIO_EXTENSIONS,
    AudioError,
    MelSpec,
    crop_or_pad,
    load_audio,
    normalize_loudness,
    normalize_peak,
)

__all__ = ["AudioDataset", "AudioItem", "DatasetError", "ScanReport", "collate", "scan_items"]

SILENCE_PEAK = 1e-4  # a file whose peak is below this is treated as silent


class DatasetError(ValueError):
    """A dataset that cannot be trained on; the message says why and what to fix."""


@dataclasses.dataclass
class AudioItem:
    path: Path
    label: str | None = None
    text: str | None = None
    numbers: dict[str, float] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0


@dataclasses.dataclass
class ScanReport:
    """What a scan kept and skipped, with reasons and examples."""

    source: str
    kept: int = 0
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    examples: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, [])
        if len(self.examples[reason]) < 3:
            self.examples[reason].append(where)

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def __str__(self) -> str:
        lines = [f"{self.source}: {self.kept} usable, {self.num_skipped} skipped"]
        for reason, count in self.skipped.most_common():
            lines.append(f"  {count} x {reason} (e.g. {', '.join(self.examples[reason])})")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"source": self.source, "kept": self.kept, "skipped": dict(self.skipped), "examples": self.examples}


# --------------------------------------------------------------------------------------------
# Finding items


def _read_manifest_rows(path: Path, report: ScanReport) -> list[dict]:
    rows = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            for line_no, row in enumerate(csv.DictReader(handle), start=2):
                if not row.get("path"):
                    report.skip("manifest row without a path", f"{path.name}:{line_no}")
                    continue
                rows.append(row)
        return rows
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                report.skip("malformed manifest line", f"{path.name}:{line_no}")
                continue
            if not isinstance(row, dict) or not isinstance(row.get("path"), str):
                report.skip("manifest row without a path", f"{path.name}:{line_no}")
                continue
            rows.append(row)
    return rows


def _inside(root: Path, candidate: Path) -> bool:
    try:
        candidate.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _number(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def _items_from_manifest(path: Path, cfg: DataConfig, report: ScanReport) -> list[AudioItem]:
    root = path.parent
    items = []
    for row in _read_manifest_rows(path, report):
        if cfg.split is not None and "split" in row and row["split"] != cfg.split:
            continue
        file = (root / row["path"]) if not os.path.isabs(row["path"]) else Path(row["path"])
        if not _inside(root, file):
            report.skip("path outside the dataset folder", row["path"])
            continue
        label = row.get("label")
        text = row.get("text") or row.get("caption")
        numbers = {name: _number(row.get(name)) for name in cfg.number_fields}
        items.append(AudioItem(file, str(label) if label not in (None, "") else None, text or None, numbers))
    return items


def _items_from_folder(path: Path, cfg: DataConfig) -> list[AudioItem]:
    items = []
    for file in sorted(path.rglob("*")):
        if file.suffix.lower() not in AUDIO_EXTENSIONS or not file.is_file():
            continue
        label = file.parent.name if cfg.label_from_folder and file.parent != path else None
        caption = file.with_suffix(".txt")
        text = caption.read_text(encoding="utf-8", errors="replace").strip() if caption.is_file() else None
        items.append(AudioItem(file, label, text or None))
    return items


def scan_items(cfg: DataConfig) -> tuple[list[AudioItem], ScanReport]:
    """Find the items that `cfg.path` names and check every file; see the module docstring."""
    if not cfg.path:
        raise DatasetError("data.path is empty; set it to a folder of audio files or a manifest (.jsonl/.csv)")
    path = Path(cfg.path).expanduser()
    report = ScanReport(str(path))
    if path.is_dir():
        manifest = next((path / name for name in ("manifest.jsonl", "manifest.csv") if (path / name).is_file()), None)
        items = _items_from_manifest(manifest, cfg, report) if manifest else _items_from_folder(path, cfg)
    elif path.is_file() and path.suffix.lower() in (".jsonl", ".csv"):
        items = _items_from_manifest(path, cfg, report)
    else:
        raise DatasetError(f"{path}: not a folder or a .jsonl/.csv manifest")
    if cfg.max_items is not None:
        items = items[: cfg.max_items]

    usable = []
    for item in items:
        reason = _check_file(item, cfg)
        if reason:
            report.skip(reason, str(item.path))
        else:
            usable.append(item)
    report.kept = len(usable)
    if not usable:
        raise DatasetError(f"no usable audio in {path}:\n{report}\nfix or replace the files, or point data.path elsewhere")
    return usable, report


def _check_file(item: AudioItem, cfg: DataConfig) -> str | None:
    """None if the file is usable, else the reason to skip it. Fills item.seconds."""
    if not item.path.is_file():
        return "missing file"
    try:
        info = soundfile.info(str(item.path))
    except Exception:
        return "unreadable or not audio"
    if info.frames <= 0 or info.samplerate <= 0:
        return "empty (0 samples)"
    if info.samplerate > 768_000:
        return "absurd sample rate"
    seconds = info.frames / info.samplerate
    if seconds > cfg.max_file_seconds:
        return f"longer than data.max_file_seconds={cfg.max_file_seconds:g}"
    if seconds < cfg.min_seconds:
        return f"shorter than data.min_seconds={cfg.min_seconds:g}"
    try:
        data, _ = soundfile.read(str(item.path), dtype="float32", always_2d=True)
    except Exception:
        return "unreadable or not audio"
    if data.size == 0:
        return "empty (0 samples)"
    if not np.isfinite(data).all():
        return "NaN or Inf samples"
    if np.abs(data).max() < SILENCE_PEAK:
        return "silent"
    item.seconds = seconds
    return None


# --------------------------------------------------------------------------------------------
# The dataset


class AudioDataset(Dataset):
    """Items are indexed by `(index, seed)`: the seed fixes the random crop, so a resumed run
    sees exactly the data an uninterrupted run would."""

    def __init__(self, items: list[AudioItem], cfg: DataConfig, mel_spec: MelSpec | None, labels: list[str] = ()):
        self.items = items
        self.cfg = cfg
        self.mel_spec = mel_spec if cfg.representation == "mel" else None
        if cfg.representation == "mel" and mel_spec is None:
            raise DatasetError("a mel dataset needs a MelSpec")
        if self.mel_spec is not None and self.mel_spec.sample_rate != cfg.sample_rate:
            raise DatasetError(
                f"data.sample_rate={cfg.sample_rate} differs from mel.sample_rate={self.mel_spec.sample_rate}; make them equal"
            )
        self.label_index = {label: i for i, label in enumerate(labels)}

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int, seed: int | None = None) -> torch.Tensor:
        """The item's audio segment `[channels, samples]`."""
        item = self.items[index]
        audio, _ = load_audio(item.path, self.cfg.sample_rate, self.cfg.channels)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        audio = crop_or_pad(audio, self.cfg.segment_samples, generator, random=self.cfg.random_crop)
        if self.cfg.normalize == "peak":
            audio = normalize_peak(audio)
        elif self.cfg.normalize == "loudness":
            audio = normalize_loudness(audio)
        return audio

    def __getitem__(self, key) -> dict:
        index, seed = key if isinstance(key, tuple) else (key, None)
        item = self.items[index]
        try:
            audio = self.load(index, seed)
        except AudioError as error:  # the file changed after the scan
            raise DatasetError(f"{item.path}: {error}; it passed the scan, so it changed on disk") from None
        x = self.mel_spec(audio) if self.mel_spec is not None else audio
        out = {"x": x, "label": self.label_index.get(item.label, -1), "text": item.text or ""}
        for name in self.cfg.number_fields:
            out[name] = item.numbers.get(name, math.nan)
        return out


def collate(rows: list[dict]) -> dict:
    """Stack items into `{"x": [batch, ...], "label": LongTensor, "text": list, numbers: FloatTensor}`."""
    out = {"x": torch.stack([row["x"] for row in rows])}
    for key in rows[0]:
        if key == "x":
            continue
        values = [row[key] for row in rows]
        if key == "label":
            out[key] = torch.tensor(values, dtype=torch.long)
        elif key == "text":
            out[key] = values
        else:
            out[key] = torch.tensor(values, dtype=torch.float32)
    return out
