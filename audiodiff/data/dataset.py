"""Training datasets: a folder, a manifest, a known layout or tar shards, checked once up front.

Every file is checked when the dataset is built (`scan_items`): missing, unreadable, empty,
corrupt, non-finite, silent and too-short files are skipped and counted in a `ScanReport` (how
many, why, the first few paths), so a bad file never stops a run in hour three; a dataset with
nothing usable is an error before training starts. What the checks found is cached by path,
size and mtime (`audiodiff.data.checks`), so a restart does not decode every file again.

Items are crops (or zero-padded) of a fixed segment, as waveform `[channels, samples]` or
normalised log-mel `[channels, n_mels, frames]`, plus their conditions; see
`audiodiff.data.features` for resampling, normalisation and the on-disk feature cache.
"""

from __future__ import annotations

import dataclasses

import math
from pathlib import Path

import torch
from torch.utils.data import Dataset

from audiodiff.audio import AudioError, MelSpec
from audiodiff.config import DataConfig
from audiodiff.data.checks import SILENCE_PEAK, check_items
from audiodiff.data.features import ItemLoader
from audiodiff.data.items import AudioItem, DatasetError, ScanReport
from audiodiff.data.layouts import resolve_layout

__all__ = [
    "AudioDataset",
    "AudioItem",
    "DatasetError",
    "SILENCE_PEAK",
    "ScanReport",
    "collate",
    "make_dataset",
    "scan_items",
]


def scan_items(cfg: DataConfig, progress: bool | None = None) -> tuple[list[AudioItem], ScanReport]:
    """The usable items at `cfg.path` (of `cfg.split`, `cfg.labels_subset`), and what was skipped.

    `progress`: show a progress bar while checking files (None: only on a terminal)."""
    if isinstance(cfg.path, (list, tuple)):
        if not cfg.path:
            raise DatasetError("data.path is an empty list; name at least one folder or manifest")
        scans = [scan_items(dataclasses.replace(cfg, path=one), progress) for one in cfg.path]
        return [item for items, _ in scans for item in items], ScanReport.merged([report for _, report in scans])
    if not cfg.path:
        raise DatasetError("data.path is empty; set it to a folder of audio files, a manifest (.jsonl/.csv) or a shard folder")
    path = Path(cfg.path).expanduser()
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder; fix data.path")
    layout = resolve_layout(cfg.layout, path)
    report = ScanReport(str(path), layout=layout.name)
    items = layout.read(path, cfg, report)
    if cfg.split is not None:
        items = [item for item in items if item.split in (None, cfg.split)]
    if cfg.labels_subset is not None:
        wanted = set(cfg.labels_subset)
        items = [item for item in items if item.label in wanted]
    if cfg.max_items is not None:
        items = items[: cfg.max_items]
    root = path if path.is_dir() else path.parent
    usable = items if layout.checked else check_items(items, cfg, root, report, progress)
    report.kept = len(usable)
    if not usable:
        chosen = f" of split {cfg.split!r}" if cfg.split is not None else ""
        subset = f" with labels in {cfg.labels_subset}" if cfg.labels_subset is not None else ""
        raise DatasetError(
            f"no usable audio{chosen}{subset} in {path}:\n{report}\n"
            "fix or replace the files, check data.split / data.labels_subset / data.layout, or point data.path elsewhere"
        )
    return usable, report


class AudioDataset(Dataset):
    """Items are indexed by `(index, seed)`: the seed fixes the random crop, so a resumed run
    sees exactly the data an uninterrupted run would."""

    def __init__(self, items: list[AudioItem], cfg: DataConfig, mel_spec: MelSpec | None, labels: list[str] = ()):
        if cfg.representation == "mel" and mel_spec is None:
            raise DatasetError("a mel dataset needs a MelSpec")
        if cfg.representation == "mel" and mel_spec.sample_rate != cfg.sample_rate:
            raise DatasetError(
                f"data.sample_rate={cfg.sample_rate} differs from mel.sample_rate={mel_spec.sample_rate}; make them equal"
            )
        self.items = items
        self.cfg = cfg
        self.loader = ItemLoader(cfg, mel_spec)
        self.mel_spec = self.loader.mel_spec
        self.label_index = {label: i for i, label in enumerate(labels)}

    def __len__(self) -> int:
        return len(self.items)

    def example(self, item: AudioItem, seed: int | None, data: bytes | None = None) -> dict:
        """`{"x", "label", "text", <numbers>}` for one item (its audio as `data` bytes if given)."""
        try:
            x = self.loader.segment(item, seed, data)
        except AudioError as error:  # the file changed after the scan
            raise DatasetError(f"{item.name}: {error}; it passed the scan, so it changed since") from None
        out = {"x": x, "label": self.label_index.get(item.label, -1), "text": item.text or ""}
        for name in self.cfg.number_fields:
            out[name] = item.numbers.get(name, math.nan)
        return out

    def __getitem__(self, key) -> dict:
        index, seed = key if isinstance(key, tuple) else (key, None)
        return self.example(self.items[index], seed)


def make_dataset(items: list[AudioItem], cfg: DataConfig, mel_spec: MelSpec | None, labels: list[str] = ()) -> Dataset:
    """An `AudioDataset`, or a `ShardStream` (an iterable dataset) for items that live in shards."""
    if items and items[0].member is not None:
        from audiodiff.data.shards import ShardStream

        return ShardStream(items, cfg, mel_spec, labels)
    return AudioDataset(items, cfg, mel_spec, labels)


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
