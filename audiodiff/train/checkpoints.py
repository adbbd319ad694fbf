"""A training run's checkpoints, `out_dir/checkpoints/step_N` (the directory format is
`audiodiff.checkpoint`'s): what one holds of the trainer, writing it on rank 0 while keeping the
newest `train.keep_last`, and loading it back so a resumed run reaches the weights that an
uninterrupted one would.

A checkpoint holds config.json (the task's config and the run's provenance, `training`),
model.safetensors (the EMA weights, for inference) and the training state:
training_state.safetensors (raw weights `module.<name>.*`, `ema.*`, optimizer slots
`optim.<name>.<index>.<slot>`, each rank's RNG `rng.generator.<rank>`, `rng.torch.<rank>`) and
training_state.json (optimizer param groups, step, data order, counters, the grad scaler).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn as nn

from audiodiff.checkpoint import (
    CONFIG,
    STATE,
    STATE_META,
    WEIGHTS,
    CheckpointError,
    list_checkpoints,
    load_state_dict,
    read_json,
    remove_checkpoint,
    save_tensors,
    write_checkpoint,
    write_json,
)
from audiodiff.config import TrainConfig
from audiodiff.train.batches import Batches, StreamBatches
from audiodiff.train.distributed import Distributed
from audiodiff.train.errors import TrainingError

__all__ = ["Checkpointed", "clean_partial", "resume_newest", "save_checkpoint"]


class Checkpointed(Protocol):
    """What a checkpoint saves of a trainer and restores on resume (`Trainer` is one)."""

    task: Any  # a TrainTask: modules, optimizers, ema_module, export_config (export_weights, write_extras)
    ema: Any  # an EMA (its averaged `.module`), or None
    cfg: TrainConfig
    dist: Distributed
    out_dir: Path
    batches: Batches | StreamBatches
    generator: torch.Generator
    scaler: torch.amp.GradScaler | None
    amp_dtype: torch.dtype | None
    step: int
    wall_seconds: float
    elapsed_seconds: float
    total_bad: int


def clean_partial(out_dir: Path) -> None:
    """Remove what killed writes left in `out_dir/checkpoints` (hidden `.tmp-` / `.old-` directories)."""
    folder = out_dir / "checkpoints"
    if folder.is_dir():
        for child in folder.iterdir():
            if child.name.startswith(".") and (".tmp-" in child.name or ".old-" in child.name):
                shutil.rmtree(child, ignore_errors=True)


def save_checkpoint(trainer: Checkpointed) -> Path:
    """Write `out_dir/checkpoints/step_N` atomically and drop all but the newest
    `train.keep_last`. Every rank calls it (it gathers their RNG states and weight digests);
    rank 0 writes. Refuses non-finite values and ranks whose weights differ."""
    target = trainer.out_dir / "checkpoints" / f"step_{trainer.step:08d}"
    digests = trainer.dist.all_gather_object(_digest(trainer.task.modules))
    generators = trainer.dist.all_gather_object(trainer.generator.get_state())
    torch_rng = trainer.dist.all_gather_object(torch.get_rng_state())
    if trainer.dist.is_main:
        tensors, meta = _training_tensors(trainer)
        inference = trainer.ema.module if trainer.ema is not None else trainer.task.ema_module
        export = getattr(trainer.task, "export_weights", lambda module: module.state_dict())
        weights = export(inference) if inference is not None else {}
        bad = [
            k
            for k, v in list(weights.items()) + list(tensors.items())
            if v.is_floating_point() and not torch.isfinite(v).all()
        ]
        if bad:
            raise TrainingError(
                f"refusing to save step {trainer.step}: non-finite values in {bad[:3]}; the last checkpoint is intact"
            )
        for rank, (gen, rng) in enumerate(zip(generators, torch_rng)):
            tensors[f"rng.generator.{rank}"] = gen
            tensors[f"rng.torch.{rank}"] = rng
        if len(set(digests)) > 1:
            raise TrainingError(
                f"ranks hold different weights at step {trainer.step} ({digests}); this is a bug, please report it"
            )
        meta.update(
            rank_digests=digests,
            step=trainer.step,
            data=trainer.batches.state(),
            world_size=trainer.dist.world_size,
            wall_seconds=trainer.wall_seconds,
            elapsed_seconds=trainer.elapsed_seconds,
            skipped_steps=trainer.total_bad,
            scaler=trainer.scaler.state_dict() if trainer.scaler else None,
        )
        config = trainer.task.export_config()
        config["training"] = {
            "step": trainer.step,
            "steps": trainer.cfg.steps,
            "wall_seconds": round(trainer.wall_seconds, 1),
            "device": str(trainer.dist.device),
            "world_size": trainer.dist.world_size,
            "precision": str(trainer.amp_dtype).replace("torch.", "") if trainer.amp_dtype else "fp32",
            "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d"),
        }

        def write(folder: Path) -> None:
            write_json(folder / CONFIG, config)
            save_tensors(folder / WEIGHTS, weights)
            save_tensors(folder / STATE, tensors)
            write_json(folder / STATE_META, meta)
            extras = getattr(trainer.task, "write_extras", None)
            if extras is not None:  # parts the checkpoint carries (a latent model's autoencoder)
                extras(folder)

        write_checkpoint(target, write)
        for old in list_checkpoints(trainer.out_dir)[: -trainer.cfg.keep_last]:
            remove_checkpoint(old)
    return target


def resume_newest(trainer: Checkpointed) -> Path | None:
    """Load the newest checkpoint's training state into `trainer`; None when there is none yet."""
    checkpoints = list_checkpoints(trainer.out_dir)
    if not checkpoints:
        return None
    path = checkpoints[-1]
    try:
        _load_state(trainer, path)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, RuntimeError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(
            f"{path}: the training state is damaged or was not written by audiodiff ({type(error).__name__}: {error}); "
            "remove this checkpoint directory to resume from the one before"
        ) from None
    return path


def _training_tensors(trainer: Checkpointed) -> tuple[dict[str, torch.Tensor], dict]:
    """Raw weights, EMA weights and optimizer slots as flat tensors; the optimizers' param groups."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict = {"optimizers": {}}
    for name, module in trainer.task.modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module.{name}.{key}"] = value
    if trainer.ema is not None:
        for key, value in trainer.ema.module.state_dict().items():
            tensors[f"ema.{key}"] = value
    for name, optimizer in trainer.task.optimizers.items():
        state = optimizer.state_dict()
        for index, slots in state["state"].items():
            for key, value in slots.items():
                tensors[f"optim.{name}.{index}.{key}"] = torch.as_tensor(value)
        meta["optimizers"][name] = state["param_groups"]
    return tensors, meta


def _load_state(trainer: Checkpointed, path: Path) -> None:
    """Put a checkpoint's training state back: weights, EMA, optimizers, counters, data order, RNG, scaler."""
    meta = read_json(path / STATE_META)
    tensors = load_state_dict(path / STATE)
    for name, module in trainer.task.modules.items():
        prefix = f"module.{name}."
        _load_prefixed(module, tensors, prefix, path)
    if trainer.ema is not None:
        _load_prefixed(trainer.ema.module, tensors, "ema.", path)
    for name, optimizer in trainer.task.optimizers.items():
        groups = meta["optimizers"][name]
        state: dict = {}
        prefix = f"optim.{name}."
        for key, value in tensors.items():
            if key.startswith(prefix):
                index, slot = key[len(prefix) :].split(".", 1)
                state.setdefault(int(index), {})[slot] = value.to(trainer.dist.device) if slot != "step" else value
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    trainer.step = int(meta["step"])
    trainer.wall_seconds = float(meta.get("wall_seconds", 0.0))
    trainer.elapsed_seconds = float(meta.get("elapsed_seconds", trainer.wall_seconds))
    trainer.total_bad = int(meta.get("skipped_steps", 0))
    trainer.batches.load_state(meta["data"])
    rank = trainer.dist.rank if meta.get("world_size") == trainer.dist.world_size else 0
    if f"rng.generator.{rank}" in tensors:
        trainer.generator.set_state(tensors[f"rng.generator.{rank}"])
        torch.set_rng_state(tensors[f"rng.torch.{rank}"])
    if trainer.scaler and meta.get("scaler"):
        trainer.scaler.load_state_dict(meta["scaler"])


def _digest(modules: dict[str, nn.Module]) -> str:
    """A hash of all trainable weights, to check that every rank holds the same model."""
    import hashlib

    digest = hashlib.sha1()
    for module in modules.values():
        for key, value in module.state_dict().items():
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _load_prefixed(module: nn.Module, tensors: dict, prefix: str, path: Path) -> None:
    state = {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}
    expected = module.state_dict()
    if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in expected):
        raise CheckpointError(f"{path}: training state does not match the model in the config; was the config changed?")
    module.load_state_dict(state)
