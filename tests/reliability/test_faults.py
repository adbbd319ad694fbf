"""Failed writes (a full or read-only disk, simulated at each kind of write) and numerical faults
(NaN/Inf injected into the loss, the gradients and the weights). Each stops with a message or
skips the step, per config; the previous checkpoint is always intact; no NaN is ever saved; a
run stopped by a fault resumes to the weights of a run that never saw it."""

from __future__ import annotations

import errno
import json
import random

import pytest
import torch
from safetensors.torch import load_file

import audiodiff.checkpoint as checkpoint_module
import audiodiff.train.checkpoints as checkpoints_module
from audiodiff.checkpoint import WEIGHTS, list_checkpoints, write_atomic
from audiodiff.cli import main
from audiodiff.train.diffusion import DiffusionTask
from audiodiff.train.errors import TrainingError
from audiodiff.train.trainer import Trainer
from tests.reliability.helpers import SEED, assert_checkpoints_complete, assert_same_checkpoint, losses, recipe, record
from tests.util import tiny_config

STEPS = 6  # checkpoints at 2, 4, 6; every fault strikes the write of step 4


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, synth_dir):
    root = tmp_path_factory.mktemp("faults-base")
    config = recipe(root / "base.yaml", synth_dir, root / "run", steps=STEPS)
    assert main(["train", "--config", str(config), "--no-progress"]) == 0
    return root / "run"


def failing_on_call(original, call: int, code: int):
    """`original`, except that its `call`-th call raises OSError(code) as the kernel would."""
    count = {"n": 0}

    def wrapper(*args, **kwargs):
        count["n"] += 1
        if count["n"] == call:
            raise OSError(code, f"{errno.errorcode[code]}: {__import__('os').strerror(code)}")
        return original(*args, **kwargs)

    return wrapper


FAULTS = {
    # (what fails, which call: each checkpoint writes 2 JSON files and 2 tensor files)
    "disk full while writing the weights": ("save_tensors", 3, errno.ENOSPC),
    "disk full while writing the training state": ("save_tensors", 4, errno.ENOSPC),
    "read-only disk while writing config.json": ("write_json", 3, errno.EROFS),
    "file too large while writing training_state.json": ("write_json", 4, errno.EFBIG),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_failed_checkpoint_write_stops_with_a_message_and_loses_nothing(
    tmp_path, synth_dir, uninterrupted, monkeypatch, capsys, fault
):
    name, call, code = FAULTS[fault]
    run = tmp_path / "run"
    config = recipe(tmp_path / "run.yaml", synth_dir, run, steps=STEPS)
    monkeypatch.setattr(checkpoints_module, name, failing_on_call(getattr(checkpoints_module, name), call, code))
    assert main(["train", "--config", str(config), "--no-progress"]) != 0
    error = capsys.readouterr().err
    assert "could not write checkpoint" in error and "step_00000004" in error
    assert __import__("os").strerror(code) in error and "previous checkpoint is intact" in error
    assert "Traceback" not in error
    assert [p.name for p in list_checkpoints(run)] == ["step_00000002"]
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")], (
        "a half-written checkpoint was left"
    )
    assert_checkpoints_complete(run)

    monkeypatch.undo()  # the disk has room again: resume and finish
    assert main(["train", "--config", str(config), "--no-progress", "--resume"]) == 0
    assert_same_checkpoint(list_checkpoints(run)[-1], list_checkpoints(uninterrupted)[-1])
    assert losses(run) == losses(uninterrupted)
    record("failed_write", fault=fault, stopped_with_message=True, previous_intact=True, resumed_to_same_weights=True)


def test_a_failed_rename_restores_the_checkpoint_it_was_replacing(tmp_path, synth_dir, monkeypatch):
    """Writing over an existing step_N (a re-run of the same step) moves the old one aside first;
    if the final rename fails, the old one comes back."""
    config = tiny_config(synth_dir, tmp_path / "run", train={"steps": 2, "ckpt_every": 2})
    trainer = Trainer(DiffusionTask(config, verbose=False), config.train, progress=False)
    path = trainer.fit()
    before = load_file(path / WEIGHTS)
    original = checkpoint_module.os.rename

    def rename(source, target):
        if ".tmp-" in str(source):
            raise OSError(errno.EIO, "Input/output error")
        return original(source, target)

    monkeypatch.setattr(checkpoint_module.os, "rename", rename)
    with pytest.raises(checkpoint_module.CheckpointError, match="Input/output error.*previous checkpoint is intact"):
        trainer.save()
    monkeypatch.undo()
    after = load_file(path / WEIGHTS)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    record(
        "failed_write",
        fault="rename of a finished checkpoint fails (I/O error)",
        stopped_with_message=True,
        previous_intact=True,
    )


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "manifest.jsonl"
    target.write_text("old\n")

    def write(temporary):
        temporary.write_text("half a fil")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, write)
    assert target.read_text() == "old\n" and list(tmp_path.iterdir()) == [target]


class FailingLog:
    """A log file whose disk fills after `good` records."""

    def __init__(self, handle, good: int):
        self.handle, self.good = handle, good

    def write(self, text: str) -> int:
        if self.good <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.good -= 1
        return self.handle.write(text)

    def flush(self):
        self.handle.flush()

    def close(self):
        self.handle.close()


def test_a_failed_log_write_stops_with_a_message_and_keeps_the_checkpoint(tmp_path, synth_dir, monkeypatch):
    config = tiny_config(synth_dir, tmp_path / "run", train={"steps": 6, "ckpt_every": 2})
    original = Trainer._open_log
    monkeypatch.setattr(Trainer, "_open_log", lambda self: FailingLog(original(self), good=3))
    trainer = Trainer(DiffusionTask(config, verbose=False), config.train, progress=False)
    with pytest.raises(TrainingError, match=r"log\.jsonl: No space left on device.*step_00000002\) is intact"):
        trainer.fit()
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step_00000002"]
    assert_checkpoints_complete(tmp_path / "run")
    record(
        "failed_write", fault="disk full while appending to log.jsonl", stopped_with_message=True, previous_intact=True
    )


# --------------------------------------------------------------------------------------------
# Numerical faults


def poisoned_task(config, rng: random.Random, steps: set[int], where: str) -> DiffusionTask:
    """A task whose loss (or one gradient) turns non-finite at `steps` (0-based)."""
    task = DiffusionTask(config, verbose=False)
    original = task.train_step
    state = {"poison": False, "hooked": False}

    def step(batch, ctx):
        if not state["hooked"]:  # the model exists once training starts
            parameter = next(p for p in task.model.parameters() if p.requires_grad)
            parameter.register_hook(
                lambda grad: grad * float("inf") if state["poison"] and where == "gradient" else grad
            )
            state["hooked"] = True
        state["poison"] = ctx.step in steps
        if state["poison"] and where == "loss":
            batch = dict(batch, x=batch["x"] * rng.choice([float("nan"), float("inf")]))
        return original(batch, ctx)

    task.train_step = step
    return task


@pytest.mark.parametrize("where", ["loss", "gradient"])
def test_injected_non_finite_steps_are_skipped_and_never_saved(tmp_path, synth_dir, where):
    rng = random.Random(SEED)
    poisoned = set(rng.sample(range(12), 4))
    config = tiny_config(
        synth_dir, tmp_path / "run", train={"steps": 12, "ckpt_every": 3, "log_every": 1, "keep_last": 10}
    )
    trainer = Trainer(poisoned_task(config, rng, poisoned, where), config.train, progress=False)
    trainer.fit()
    assert trainer.total_bad == len(poisoned)
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert logged[-1]["skipped_steps"] == len(poisoned) and all(
        map(lambda r: r["loss"] == r["loss"] or r["step"] - 1 in poisoned, logged)
    )
    for folder in list_checkpoints(tmp_path / "run"):
        for name in (WEIGHTS, "training_state.safetensors"):
            assert all(torch.isfinite(v).all() for v in load_file(folder / name).values() if v.is_floating_point()), (
                folder
            )
    record(
        "numerical_fault",
        injected=f"NaN/Inf {where}",
        steps=sorted(poisoned),
        skipped=trainer.total_bad,
        nan_saved=False,
    )


@pytest.mark.parametrize("where", ["loss", "gradient"])
def test_nan_policy_stop_stops_at_the_first_fault_with_the_checkpoint_intact(tmp_path, synth_dir, where):
    config = tiny_config(synth_dir, tmp_path / "run", train={"steps": 8, "ckpt_every": 2, "nan_policy": "stop"})
    trainer = Trainer(poisoned_task(config, random.Random(SEED), {4}, where), config.train, progress=False)
    with pytest.raises(
        TrainingError, match=r"non-finite loss or gradient at step 5.*nan_policy=stop.*last checkpoint is intact"
    ):
        trainer.fit()
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step_00000002", "step_00000004"]
    assert_checkpoints_complete(tmp_path / "run")
    record("numerical_fault", injected=f"NaN/Inf {where}, nan_policy=stop", stopped_with_message=True, nan_saved=False)


def test_too_many_bad_steps_in_a_row_stop_the_run(tmp_path, synth_dir):
    config = tiny_config(synth_dir, tmp_path / "run", train={"steps": 10, "ckpt_every": 2, "max_bad_steps": 3})
    trainer = Trainer(
        poisoned_task(config, random.Random(SEED), set(range(3, 10)), "loss"), config.train, progress=False
    )
    with pytest.raises(TrainingError, match="3 steps in a row skipped"):
        trainer.fit()
    assert list_checkpoints(tmp_path / "run")[-1].name == "step_00000004"  # skipped steps count as steps
    assert_checkpoints_complete(tmp_path / "run")
    record("numerical_fault", injected="NaN loss every step from step 4", stopped_with_message=True, nan_saved=False)


def test_weights_that_became_nan_are_never_saved(tmp_path, synth_dir):
    config = tiny_config(synth_dir, tmp_path / "run", train={"steps": 2, "ckpt_every": 2})
    trainer = Trainer(DiffusionTask(config, verbose=False), config.train, progress=False)
    path = trainer.fit()
    with torch.no_grad():
        next(trainer.task.model.parameters())[0].fill_(float("nan"))  # memory corruption, a bad kernel
        if trainer.ema is not None:
            next(trainer.ema.module.parameters())[0].fill_(float("nan"))
    trainer.step += 1
    with pytest.raises(TrainingError, match="refusing to save step 3: non-finite values"):
        trainer.save()
    assert list_checkpoints(tmp_path / "run") == [path]
    record("numerical_fault", injected="NaN written into the weights", stopped_with_message=True, nan_saved=False)
