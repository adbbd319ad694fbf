"""The training loop shared by diffusion models and vocoders.

A *task* owns the models, optimizers, data and the loss of one step; the `Trainer` owns
everything around it: devices and torchrun, mixed precision, the LR schedule, EMA, a resumable
data order, non-finite loss handling, logging (tqdm, JSONL, a loss-curve PNG), previews and
atomic checkpoints (`audiodiff.train.checkpoints`) that resume to the same weights an uninterrupted run would reach.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Protocol

import torch
import torch.nn as nn
from torch.utils.data import IterableDataset
from tqdm.auto import tqdm

from audiodiff.checkpoint import list_checkpoints, write_atomic
from audiodiff.config import TrainConfig
from audiodiff.precision import autocast_dtype
from audiodiff.train.batches import Batches, StreamBatches
from audiodiff.train.checkpoints import clean_partial, resume_newest, save_checkpoint
from audiodiff.train.distributed import Distributed
from audiodiff.train.errors import TrainingError
from audiodiff.train.threads import choose_threads

__all__ = ["Trainer", "TrainTask", "StepContext", "adamw", "choose_threads"]

# Test hooks (tests/reliability): rank AUDIODIFF_TEST_DIE_RANK (default 0) kills itself with SIGKILL
# when it is about to run step AUDIODIFF_TEST_DIE_AT_STEP (1-based), as a crashed process would.
DIE_AT_STEP_ENV, DIE_RANK_ENV = "AUDIODIFF_TEST_DIE_AT_STEP", "AUDIODIFF_TEST_DIE_RANK"
LOSS_PLOT_SECONDS = 30.0  # loss.png is redrawn at most this often, and always at a run's last checkpoint


class TrainTask(Protocol):
    """What a trainable thing provides; see `audiodiff.train.diffusion.DiffusionTask`."""

    dataset: torch.utils.data.Dataset
    modules: dict[str, nn.Module]  # trainable modules, saved raw for resuming
    optimizers: dict[str, torch.optim.Optimizer]
    ema_module: nn.Module | None  # averaged and exported for inference (None: export raw)

    def collate(self, rows: list) -> dict: ...
    def build(self, device: torch.device, cfg: TrainConfig) -> None: ...
    def wrap(self, wrap_fn) -> None: ...
    def train_step(self, batch: dict, ctx: StepContext) -> dict[str, float]: ...
    def export_config(self) -> dict: ...
    def preview(self, module: nn.Module, out_dir: Path, step: int) -> None: ...


FUSED_DEVICES = ("cpu", "cuda")  # where torch has a fused AdamW kernel


def adamw(params, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with the run's learning rate, betas and weight decay (`params`: tensors, or param
    groups whose own weight decay wins). Fused where torch has the kernel: one pass over all
    parameters instead of a loop of small ops per tensor, about 3x faster on CPU (22 against
    64 ms a step for 12M parameters)."""
    params = list(params)
    tensors = [p for group in params for p in (group["params"] if isinstance(group, dict) else [group])]
    fused = bool(tensors) and all(p.device.type in FUSED_DEVICES and p.is_floating_point() for p in tensors)
    return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, fused=fused or None)


# --------------------------------------------------------------------------------------------


class EMA:
    """Exponential moving average of a module's parameters (fp32), with a warm-up."""

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.module = _clone(module)

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for ema, param in zip(self.module.parameters(), module.parameters()):
            ema.lerp_(param.detach().float(), 1 - decay)
        for ema, buffer in zip(self.module.buffers(), module.buffers()):
            ema.copy_(buffer)


def _clone(module: nn.Module) -> nn.Module:
    import copy

    clone = copy.deepcopy(module).float().eval()
    for param in clone.parameters():
        param.requires_grad_(False)
    return clone


class RunClock:
    """Wall-clock time in the loop (continuing a resumed run's total), time since the last
    checkpoint, and the budget shown in the progress bar."""

    def __init__(self, elapsed: float, step: int):
        self.start, self.before, self.first_step = time.perf_counter(), elapsed, step
        self.last_save = self.start

    def elapsed(self) -> float:
        return self.before + time.perf_counter() - self.start

    def since_save(self) -> float:
        return time.perf_counter() - self.last_save

    def saved(self) -> None:
        self.last_save = time.perf_counter()

    def budget_postfix(self, step: int, max_minutes: float, steps: int) -> dict:
        """{"budget": "12.5 min left, ~step 340"} while train.max_minutes applies."""
        if max_minutes <= 0:
            return {}
        left = max(0.0, max_minutes * 60 - self.elapsed())
        rate = (step - self.first_step) / max(time.perf_counter() - self.start, 1e-9)
        reach = min(steps, step + int(rate * left))
        return {"budget": f"{left / 60:.1f} min left, ~step {reach}"}


class StepContext:
    """What a task's `train_step` uses from the trainer: device, precision, RNG, backward."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.device = trainer.dist.device
        self.generator = trainer.generator
        self.step = 0

    def autocast(self):
        dtype = self.trainer.amp_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def backward(self, loss: torch.Tensor, module: nn.Module, optimizer: torch.optim.Optimizer) -> bool:
        """Backward, clip, step. Returns False (and skips the update) on a non-finite loss or
        gradient; every rank reaches the same decision because gradients are all-reduced."""
        trainer = self.trainer
        optimizer.zero_grad(set_to_none=True)
        scaler = trainer.scaler
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.unscale_(optimizer)
        params = [p for p in module.parameters() if p.grad is not None]
        clip = trainer.cfg.grad_clip if trainer.cfg.grad_clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(params, clip) if params else torch.tensor(0.0)
        finite = bool(torch.isfinite(norm)) and bool(torch.isfinite(loss.detach()))
        finite = not trainer.dist.broadcast_flag(not finite)
        if not finite:
            optimizer.zero_grad(set_to_none=True)
            if scaler:
                scaler.update()
            trainer.bad_step = True
            return False
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        return True


# --------------------------------------------------------------------------------------------


class Trainer:
    def __init__(self, task: TrainTask, cfg: TrainConfig, resume: bool = False, progress: bool = True):
        self.task, self.cfg, self.resume, self.progress = task, cfg, resume, progress
        self.out_dir = Path(cfg.out_dir)
        self.dist = Distributed.from_env(cfg.device)
        self._plotted_at = time.monotonic()  # the first drawing: 30 s in, or at the last checkpoint
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.dist.rank)
        self.step = 0
        self.bad_step = False
        self.consecutive_bad = 0
        self.total_bad = 0
        self.wall_seconds = 0.0  # step compute, summed over resumes (the model card's training time)
        self.elapsed_seconds = 0.0  # wall clock inside the loop, summed over resumes (train.max_minutes)
        self.stop_signal: str | None = None  # set by SIGINT/SIGTERM: stop after this step, checkpointed
        self.stopped_by: str | None = None  # why fit() returned before train.steps: "budget", "SIGINT", ...
        self.history: list[dict] = []
        self.log_file = None  # log.jsonl, open while fit() runs (main rank)
        self.wrapped = False  # the task's modules are in DistributedDataParallel (fit(), under torchrun)

    def _amp_dtype(self):
        try:
            return autocast_dtype(self.cfg.precision, self.dist.device)
        except ValueError as error:
            raise TrainingError(f"train.precision={self.cfg.precision}: {error}") from None

    # -- the loop

    def fit(self, stop_at: int | None = None) -> Path:
        """Train to `train.steps` (or stop early at step `stop_at`, checkpointed, as if killed
        there); returns the last checkpoint written."""
        cfg, dist, task = self.cfg, self.dist, self.task
        end = min(cfg.steps, stop_at) if stop_at is not None else cfg.steps
        threads = choose_threads(cfg.threads, dist.world_size if dist.device.type == "cpu" else 1)
        torch.set_num_threads(threads.count)
        if dist.is_main:
            tqdm.write(f"threads: {threads}", file=sys.stderr)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        task.build(dist.device, cfg)
        self.ema = EMA(task.ema_module, cfg.ema_decay) if task.ema_module is not None and cfg.ema_decay > 0 else None
        if dist.enabled:
            device_ids = [dist.device.index] if dist.device.type == "cuda" else None
            task.wrap(lambda module: nn.parallel.DistributedDataParallel(module, device_ids=device_ids))
            self.wrapped = True
        torch.manual_seed(cfg.seed * 7919 + dist.rank)  # dropout differs per rank
        source = StreamBatches if isinstance(task.dataset, IterableDataset) else Batches
        self.batches = source(task, cfg.batch_size, cfg.seed, dist, getattr(task, "num_workers", 0))
        if dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            clean_partial(self.out_dir)
        if self.resume:
            self._resume()
        elif dist.is_main and list_checkpoints(self.out_dir):
            raise TrainingError(
                f"{self.out_dir} already holds checkpoints; pass --resume to continue, or choose another train.out_dir"
            )
        ctx = StepContext(self)
        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            disable=not (self.progress and dist.is_main),
            dynamic_ncols=True,
            unit="step",
        )
        self.log_file = self._open_log() if dist.is_main else None
        last_path = None
        preview_every = self.preview_interval()
        window_start, window_steps = time.perf_counter(), 0
        clock = RunClock(self.elapsed_seconds, self.step)
        die_at = int(os.environ.get(DIE_AT_STEP_ENV, 0)) if int(os.environ.get(DIE_RANK_ENV, 0)) == dist.rank else 0
        previous_handlers = self._catch_stop_signals()
        try:
            while self.step < end:
                if self.step + 1 == die_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                batch = self.batches.next()
                self._set_lr()
                ctx.step = self.step
                self.bad_step = False
                started = time.perf_counter()
                losses = task.train_step(batch, ctx)
                self.wall_seconds += time.perf_counter() - started
                self._count_bad()
                if not self.bad_step and self.ema is not None:
                    self.ema.update(task.ema_module, self.step)
                self.step += 1
                window_steps += 1
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    now = time.perf_counter()
                    record = {
                        "step": self.step,
                        **{k: round(v, 6) for k, v in losses.items()},
                        "lr": self.lr(self.step - 1),
                        "steps_per_sec": round(window_steps / max(now - window_start, 1e-9), 3),
                        "skipped_steps": self.total_bad,
                    }
                    window_start, window_steps = now, 0
                    self.history.append(record)
                    postfix = {k: f"{v:.4f}" for k, v in losses.items()} | {"it/s": record["steps_per_sec"]}
                    bar.set_postfix(postfix | clock.budget_postfix(self.step, cfg.max_minutes, cfg.steps))
                    self._write_log(record)
                self._report_events()
                if preview_every and self.step % preview_every == 0 and self.step < cfg.steps:
                    self._preview()
                self.elapsed_seconds = clock.elapsed()
                out_of_time = cfg.max_minutes > 0 and dist.broadcast_flag(self.elapsed_seconds > cfg.max_minutes * 60)
                signalled = dist.broadcast_flag(self.stop_signal is not None)
                due = cfg.ckpt_minutes > 0 and dist.broadcast_flag(clock.since_save() > cfg.ckpt_minutes * 60)
                if self.step % cfg.ckpt_every == 0 or self.step == end or out_of_time or signalled or due:
                    last_path = self.save(last=self.step == end or out_of_time or signalled)
                    clock.saved()
                if out_of_time or signalled:
                    self.stopped_by = (self.stop_signal or "SIGINT") if signalled else "budget"
                    if dist.is_main:
                        why = (
                            f"{self.stopped_by} received"
                            if signalled
                            else f"train.max_minutes={cfg.max_minutes:g} reached"
                        )
                        tqdm.write(
                            f"stopping at step {self.step} of {cfg.steps}: {why}; checkpoint {last_path.name} written",
                            file=sys.stderr,
                        )
                    break
            if preview_every and (self.step == cfg.steps or self.stopped_by == "budget"):
                self._preview()
        finally:
            self._restore_signals(previous_handlers)
            bar.close()
            self.batches.close()
            if self.log_file is not None:
                with contextlib.suppress(OSError):
                    self.log_file.close()
                self.log_file = None
        dist.barrier()
        return last_path or self.out_dir / "checkpoints" / f"step_{self.step:08d}"

    def close(self) -> None:
        """Leave the process group while the interpreter is whole. The DDP wrappers hold it (and
        with it gloo's worker threads) and sit in reference cycles, so without this they are freed
        whenever the cyclic collector runs, at worst during interpreter shutdown, where a rank can
        abort (SIGABRT, "terminate called without an active exception") after a finished run."""
        if self.wrapped:
            self.task.wrap(lambda module: module)
            self.wrapped = False
            gc.collect()
        self.dist.close()

    def preview_interval(self) -> int:
        """train.preview_every, shortened so a short run still previews about four times."""
        every = self.cfg.preview_every
        return min(every, max(1, math.ceil(self.cfg.steps / 4))) if every > 0 else 0

    def _catch_stop_signals(self) -> dict:
        """SIGINT/SIGTERM ask the loop to stop after the current step with a checkpoint; a second
        one stops at once (KeyboardInterrupt), keeping the last checkpoint."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            return {}

        def handle(number, frame):
            if self.stop_signal is not None:
                raise KeyboardInterrupt
            self.stop_signal = signal.Signals(number).name
            if self.dist.is_main:
                tqdm.write(
                    f"{self.stop_signal}: stopping after this step with a checkpoint (again to stop at once)",
                    file=sys.stderr,
                )

        previous = {}
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, handle)
        return previous

    @staticmethod
    def _restore_signals(previous: dict) -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    # -- the log

    @property
    def log_path(self) -> Path:
        return self.out_dir / "log.jsonl"

    def _log_error(self, error: OSError) -> TrainingError:
        newest = list_checkpoints(self.out_dir)
        kept = f"the last checkpoint ({newest[-1].name}) is intact" if newest else "no checkpoint was written yet"
        return TrainingError(
            f"could not write {self.log_path}: {error.strerror or error}; check free space and write permission, "
            f"then --resume ({kept})"
        )

    def _open_log(self):
        try:
            return self.log_path.open("a")
        except OSError as error:
            raise self._log_error(error) from None

    def _write_log(self, record: dict) -> None:
        """One record to log.jsonl (nothing where no log is open: ranks other than the main one)."""
        if self.log_file is None:
            return
        try:
            self.log_file.write(json.dumps(record) + "\n")
            self.log_file.flush()
        except OSError as error:
            raise self._log_error(error) from None

    def _trim_log(self, step: int) -> None:
        """Keep the log records up to `step`: a resumed run logs the later steps again (a killed
        run may also have left half a line)."""
        path = self.log_path
        if not path.is_file():
            return
        kept = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
                kept.append(line + "\n")
        try:
            write_atomic(path, lambda temporary: temporary.write_text("".join(kept), encoding="utf-8"))
        except OSError as error:
            raise self._log_error(error) from None

    def lr(self, step: int) -> float:
        cfg = self.cfg
        warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0
        if cfg.lr_schedule == "constant":
            return cfg.lr * warm
        if cfg.lr_schedule == "exponential":
            return cfg.lr * warm * cfg.lr_gamma ** (step / 100)
        progress = min(1.0, max(0.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)))
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return cfg.lr * warm * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)

    def _set_lr(self) -> None:
        lr = self.lr(self.step)
        for optimizer in self.task.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)

    def _count_bad(self) -> None:
        if not self.bad_step:
            self.consecutive_bad = 0
            return
        self.total_bad += 1
        self.consecutive_bad += 1
        message = f"non-finite loss or gradient at step {self.step + 1}"
        if self.cfg.nan_policy == "stop":
            raise TrainingError(
                f"{message}; stopped (train.nan_policy=stop). The last checkpoint is intact: lower train.lr, "
                "use train.precision=fp32, or check the data, then --resume"
            )
        if self.consecutive_bad >= self.cfg.max_bad_steps:
            raise TrainingError(
                f"{message}: {self.consecutive_bad} steps in a row skipped; stopping. The last checkpoint is intact: "
                "lower train.lr or use train.precision=fp32, then --resume"
            )
        if self.dist.is_main:
            tqdm.write(f"warning: {message}; update skipped ({self.total_bad} so far)", file=sys.stderr)

    # -- previews and pictures

    def _preview(self) -> None:
        if not self.dist.is_main:
            return
        module = (
            self.ema.module if self.ema is not None else self.task.ema_module or next(iter(self.task.modules.values()))
        )
        folder = self.out_dir / "previews" / f"step_{self.step:08d}"
        try:
            self.task.preview(module, folder, self.step)
        except Exception as error:  # a preview must never end a run
            tqdm.write(f"warning: preview at step {self.step} failed: {error}", file=sys.stderr)
        self._report_events()
        self._plot_losses()

    def _report_events(self) -> None:
        """A task's `events` (records such as warnings or a preview's figures) go to the log at
        this step; warnings are printed too."""
        events = getattr(self.task, "events", None)
        if not events:
            return
        for event in events:
            record = {"step": self.step, **event}
            if "warning" in event and self.dist.is_main:
                tqdm.write(f"warning at step {self.step}: {event['warning']}", file=sys.stderr)
            self._write_log(record)
        events.clear()

    def _plot_losses(self, force: bool = False) -> None:
        """Redraw loss.png from log.jsonl, at most every LOSS_PLOT_SECONDS unless `force`
        (drawing takes about a second: more than a small model's step)."""
        from audiodiff.plots import plot_loss_curve

        if not force and time.monotonic() - self._plotted_at < LOSS_PLOT_SECONDS:
            return
        self._plotted_at = time.monotonic()

        records = []
        path = self.out_dir / "log.jsonl"
        if path.is_file():
            for line in path.read_text().splitlines():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        try:
            plot_loss_curve(records, self.out_dir / "loss.png")
        except Exception as error:
            tqdm.write(f"warning: could not draw the loss curve: {error}", file=sys.stderr)

    # -- checkpoints (audiodiff.train.checkpoints)

    def save(self, last: bool = True) -> Path:
        """Write `out_dir/checkpoints/step_N` atomically (rank 0) and drop old ones; redraw
        loss.png when it is the run's `last` or the drawing is LOSS_PLOT_SECONDS old."""
        target = save_checkpoint(self)
        if self.dist.is_main:
            self._plot_losses(force=last)
        self.dist.barrier()
        return target

    def _resume(self) -> None:
        """Continue from the newest checkpoint (from step 0 when there is none yet); the log
        keeps the records up to its step."""
        path = resume_newest(self)
        if not self.dist.is_main:
            return
        self._trim_log(self.step)
        if path is None:
            tqdm.write(
                f"--resume: no checkpoint in {self.out_dir}/checkpoints yet; starting from step 0", file=sys.stderr
            )
        else:
            tqdm.write(f"resumed from {path} (step {self.step})", file=sys.stderr)
