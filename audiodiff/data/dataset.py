"""Training datasets: a folder, a manifest, a known layout or tar shards, checked once up front.

Every file is checked when the dataset is built (`scan_items`): missing, unreadable, empty,
corrupt, non-finite, silent and too-short files are skipped and counted in a `ScanReport` (how
many, why, the first few paths), so a bad file never stops a run in hour three; a dataset with
nothing usable is an error before training starts. What the checks found is cached by path,
size and mtime (`audiodiff.data.checks`), so a restart does not decode every file again.

Items are crops (or zero-padded) of a fixed segment, as waveform `[channels, samples]`,
normalised log-mel `[channels, n_mels, frames]` or its autoencoder latent, plus their conditions; see
`audiodiff.data.features` for resampling, normalisation and the on-disk feature cache.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from audiodiff.audio import AudioError, MelSpec
from audiodiff.config import DataConfig
from audiodiff.data.checks import SILENCE_PEAK, check_items
from audiodiff.data.features import ItemLoader
from audiodiff.data.items import AudioItem, DatasetError, ScanReport
from audiodiff.data.layouts import resolve_layout
from audiodiff.data.shards import read_members
from audiodiff.models.conditioning import LabelCondition, NumberCondition, TextCondition

__all__ = [
    "AudioDataset",
    "AudioItem",
    "DatasetError",
    "SILENCE_PEAK",
    "ScanReport",
    "ShardStream",
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
        raise DatasetError(
            "data.path is empty; set it to a folder of audio files, a manifest (.jsonl/.csv) or a shard folder"
        )
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

    def __init__(
        self,
        items: list[AudioItem],
        cfg: DataConfig,
        mel_spec: MelSpec | None,
        labels: list[str] = (),
        autoencoder=None,
        curve_hop: int | None = None,
    ):
        self.items = items
        self.cfg = cfg
        try:
            self.loader = ItemLoader(cfg, mel_spec, autoencoder, curve_hop)
        except ValueError as error:  # the space's parts do not fit the data settings
            raise DatasetError(str(error)) from None
        self.mel_spec = self.loader.mel_spec
        self.label_index = {label: i for i, label in enumerate(labels)}

    def __len__(self) -> int:
        return len(self.items)

    def example(self, item: AudioItem, seed: int | None, data: bytes | None = None) -> dict:
        """`{"x", "label", "text", <numbers>, <curves>}` for one item (its audio as `data` bytes if given)."""
        try:
            features = self.loader.example(item, seed, data)
        except AudioError as error:  # the file changed after the scan
            raise DatasetError(f"{item.name}: {error}; it passed the scan, so it changed since") from None
        out = {
            **features,
            "label": self.label_index.get(item.label, LabelCondition.null_value),
            "text": item.text or TextCondition.null_value,
        }
        for name in self.cfg.number_fields:
            out[name] = float(item.numbers.get(name, NumberCondition.null_value))
        return out

    def __getitem__(self, key) -> dict:
        index, seed = key if isinstance(key, tuple) else (key, None)
        return self.example(self.items[index], seed)


class ShardStream(IterableDataset):
    """Streams items from tar shards (`audiodiff.data.shards`) as whole batches. Each epoch puts
    the shards in an order seeded by (seed, epoch), deals them to the ranks and DataLoader workers,
    reads each shard once from front to back (items shuffled within it) and yields whole batches.
    Every stream yields the same number of batches, so the DataLoader's round-robin over workers is
    a fixed order, and a resumed run skips exactly the batches it had (decoding none of them).

    The trainer calls `configure` once and `start(epoch, position)` before each pass; `position`
    counts this rank's batches already used in the epoch."""

    def __init__(
        self,
        items: list[AudioItem],
        cfg: DataConfig,
        mel_spec: MelSpec | None,
        labels: list[str] = (),
        autoencoder=None,
        curve_hop: int | None = None,
    ):
        self.items = items
        self.examples = AudioDataset(items, cfg, mel_spec, labels, autoencoder, curve_hop)
        shards: dict[Path, list[int]] = {}
        for index, item in enumerate(items):
            shards.setdefault(item.path, []).append(index)
        self.shards = list(shards.items())  # [(shard path, item indices)]
        self.batch_size, self.seed, self.rank, self.world_size, self.num_workers = 1, 0, 0, 1, 0
        self.epoch, self.position = 0, 0

    def configure(self, batch_size: int, seed: int, rank: int = 0, world_size: int = 1, num_workers: int = 0) -> None:
        self.batch_size, self.seed, self.rank, self.world_size, self.num_workers = (
            batch_size,
            seed,
            rank,
            world_size,
            num_workers,
        )

    def start(self, epoch: int, position: int = 0) -> None:
        self.epoch, self.position = epoch, position

    @property
    def num_streams(self) -> int:
        """Readers over all ranks: one per DataLoader worker (or one per rank without workers)."""
        return self.world_size * max(1, self.num_workers)

    def epoch_plan(self, epoch: int) -> list[list[tuple[int, int]]]:
        """Per stream, `(item, crop seed)` in reading order; every stream a whole number of batches, all the same."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        streams, size = self.num_streams, self.batch_size

        def one_pass() -> list[list[int]]:  # shards in a seeded order, items shuffled within each
            runs = []
            for shard in torch.randperm(len(self.shards), generator=generator).tolist():
                members = self.shards[shard][1]
                runs.append([members[i] for i in torch.randperm(len(members), generator=generator).tolist()])
            return runs

        runs = one_pass()
        per_stream: list[list[int]] = [[] for _ in range(streams)]
        for run in sorted(runs, key=len, reverse=True) if len(runs) >= streams else []:
            min(per_stream, key=len).extend(run)  # whole shards, to the stream with the fewest items
        if min(len(stream) for stream in per_stream) < size:
            # fewer (or smaller) shards than streams: deal items, each stream reading every shard
            flat = [index for run in runs for index in run]
            while len(flat) < size * streams:
                flat += [index for run in one_pass() for index in run]
            per_stream = [flat[i::streams] for i in range(streams)]
        batches = min(len(stream) for stream in per_stream) // size
        seeds = torch.randint(0, 2**31 - 1, (streams, batches * size), generator=generator).tolist()
        return [list(zip(stream[: batches * size], stream_seeds)) for stream, stream_seeds in zip(per_stream, seeds)]

    def __iter__(self):
        worker = get_worker_info()
        worker_id, workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        # the DataLoader takes batches from workers 0, 1, ... in turn: after `position` batches the
        # next one is stream slot position % workers, so worker w serves slot (position + w) % workers
        slot = (self.position + worker_id) % workers
        done = max(0, (self.position - slot + workers - 1) // workers)  # batches of this slot already used
        plan = self.epoch_plan(self.epoch)[self.rank * workers + slot][done * self.batch_size :]
        batch = []
        start = 0
        while start < len(plan):
            shard = self.items[plan[start][0]].path
            end = start
            while end < len(plan) and self.items[plan[end][0]].path == shard:
                end += 1
            data = read_members(shard, {self.items[index].member for index, _ in plan[start:end]})
            for index, seed in plan[start:end]:
                item = self.items[index]
                batch.append(self.examples.example(item, seed, data[item.member]))
                if len(batch) == self.batch_size:
                    yield batch
                    batch = []
            start = end


def make_dataset(
    items: list[AudioItem],
    cfg: DataConfig,
    mel_spec: MelSpec | None,
    labels: list[str] = (),
    autoencoder=None,
    curve_hop: int | None = None,
) -> Dataset:
    """An `AudioDataset`, or a `ShardStream` (an iterable dataset) for items that live in shards.
    `autoencoder` (an `audiodiff.latent.Autoencoder`) encodes the mels of a latent dataset;
    `curve_hop` sets the samples per curve frame of a waveform dataset (a vocoder's mel hop)."""
    if items and items[0].member is not None:
        return ShardStream(items, cfg, mel_spec, labels, autoencoder, curve_hop)
    return AudioDataset(items, cfg, mel_spec, labels, autoencoder, curve_hop)


def collate(rows: list[dict]) -> dict:
    """Stack items field by field: tensors stacked, strings listed, integers as a LongTensor
    (label indices) and other numbers as a FloatTensor."""
    out = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        elif isinstance(values[0], str):
            out[key] = values
        else:
            out[key] = torch.tensor(values, dtype=torch.long if isinstance(values[0], int) else torch.float32)
    return out
