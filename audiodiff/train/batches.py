"""The run's data order: an endless, resumable stream of batches, the same on resume as it
would have been, sharded across ranks."""

from __future__ import annotations

import math
import sys
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from audiodiff.train.distributed import Distributed


class Batches:
    """An endless, resumable stream of batches: epoch e uses a permutation seeded by (seed, e),
    sharded across ranks, and each item gets its own seed (for its random crop)."""

    def __init__(self, task: Any, batch_size: int, seed: int, dist: Distributed, num_workers: int):
        self.task, self.batch_size, self.seed, self.dist, self.num_workers = task, batch_size, seed, dist, num_workers
        self.epoch, self.position = 0, 0
        self._iterator = None

    def _epoch_batches(self) -> list[list[tuple[int, int]]]:
        count = len(self.task.dataset)
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        need = self.batch_size * self.dist.world_size
        order = torch.cat([torch.randperm(count, generator=generator) for _ in range(max(1, math.ceil(need / count)))])
        seeds = torch.randint(0, 2**31 - 1, (len(order),), generator=generator)
        mine = list(zip(order.tolist(), seeds.tolist()))[self.dist.rank :: self.dist.world_size]
        usable = len(mine) // self.batch_size * self.batch_size
        return [mine[i : i + self.batch_size] for i in range(0, usable, self.batch_size)]

    def _loader(self) -> DataLoader:
        """The rest of the current epoch, from `position` on."""
        return DataLoader(
            self.task.dataset,
            batch_sampler=self._epoch_batches()[self.position :],
            collate_fn=self.task.collate,
            num_workers=self.num_workers,
            # its own generator: creating a loader must not consume the global RNG
            generator=torch.Generator().manual_seed(self.seed + self.epoch),
        )

    def next(self) -> dict:
        while True:
            if self._iterator is None:
                self._iterator = iter(self._loader())
            try:
                batch = next(self._iterator)
            except StopIteration:
                self.epoch, self.position, self._iterator = self.epoch + 1, 0, None
                continue
            self.position += 1
            return batch

    def state(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state(self, state: dict) -> None:
        self.epoch, self.position, self._iterator = int(state["epoch"]), int(state["position"]), None

    def close(self) -> None:
        """Stop the DataLoader workers now (left to the garbage collector, each takes ~5 s to exit)."""
        self._iterator = None


class StreamBatches(Batches):
    """Batches from an iterable dataset that forms them itself (`audiodiff.data.dataset.ShardStream`):
    it is told the epoch and how many batches were used, and streams the rest. Its order depends
    on the number of streams (processes x workers); a resume with another count starts a new epoch."""

    def __init__(self, task: Any, batch_size: int, seed: int, dist: Distributed, num_workers: int):
        super().__init__(task, batch_size, seed, dist, num_workers)
        task.dataset.configure(batch_size, seed, dist.rank, dist.world_size, num_workers)

    def _loader(self) -> DataLoader:
        self.task.dataset.start(self.epoch, self.position)
        return DataLoader(
            self.task.dataset,
            batch_size=None,  # the dataset yields lists of rows, one per batch
            collate_fn=self.task.collate,
            num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(self.seed + self.epoch),
        )

    def state(self) -> dict:
        return {**super().state(), "streams": self.task.dataset.num_streams}

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        if state.get("streams") != self.task.dataset.num_streams:
            if self.dist.is_main:
                tqdm.write(
                    f"warning: the checkpoint streamed shards with {state.get('streams')} readers, this run with "
                    f"{self.task.dataset.num_streams} (processes x data.num_workers); starting the next epoch",
                    file=sys.stderr,
                )
            self.epoch, self.position = self.epoch + 1, 0
