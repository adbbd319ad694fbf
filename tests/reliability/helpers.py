"""Shared by the reliability tests: tiny recipes, training processes to kill, checkpoint comparison.

Training runs in real processes so that SIGKILL is a real kill. `Launcher` forks each process
from a server that has already imported audiodiff (multiprocessing's forkserver), then runs the
same `audiodiff.cli.main(["train", ...])` that `python -m audiodiff train` runs; that saves about
8 s of imports per process on a busy 2-core machine. torchrun runs use the real command line.

Set AUDIODIFF_RELIABILITY_TRIALS to run more trials (a soak run) and AUDIODIFF_RELIABILITY_LOG to a
file to collect what each trial saw (the README's Reliability table is made from it).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

from audiodiff.checkpoint import CONFIG, STATE, STATE_META, WEIGHTS, list_checkpoints

ROOT = Path(__file__).resolve().parents[2]
TRIALS = int(os.environ.get("AUDIODIFF_RELIABILITY_TRIALS", "5"))
SEED = int(os.environ.get("AUDIODIFF_RELIABILITY_SEED", "20261125"))
CHECKPOINT_FILES = (CONFIG, WEIGHTS, STATE, STATE_META)


def record(test: str, **facts) -> None:
    """Append what a test saw to $AUDIODIFF_RELIABILITY_LOG (JSON lines), if set."""
    path = os.environ.get("AUDIODIFF_RELIABILITY_LOG")
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps({"test": test, **facts}, default=str) + "\n")


def recipe(path: Path, data: Path, out: Path, **train) -> Path:
    """A tiny mel model on `data`, one thread, a checkpoint every 2 steps."""
    config = {
        "kind": "diffusion",
        "data": {"path": str(data), "representation": "mel", "segment_seconds": 0.25, "split": None},
        "model": {
            "dims": 2,
            "channels": 16,
            "channel_mults": [1, 2],
            "num_res_blocks": 1,
            "attention_levels": [1],
            "head_channels": 16,
        },
        "conditioning": {"labels": "auto", "drop_prob": 0.2},
        "sampling": {"steps": 4, "griffin_lim_iters": 4},
        "train": {
            "out_dir": str(out),
            "steps": 8,
            "batch_size": 2,
            "lr": 1e-3,
            "warmup_steps": 2,
            "ckpt_every": 2,
            "keep_last": 2,
            "preview_every": 0,
            "log_every": 1,
            "precision": "fp32",
            "threads": 1,
            **train,
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


# --------------------------------------------------------------------------------------------
# Processes


def _run_cli(argv: list[str], env: dict[str, str], out: str) -> None:
    """The body of a launched process: `audiodiff ARGV` with stdout and stderr in `out`.{out,err}."""
    os.environ.update(env)
    for fd, suffix in ((1, "out"), (2, "err")):
        handle = os.open(f"{out}.{suffix}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(handle, fd)
        os.close(handle)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    from audiodiff.cli import main

    try:
        code = main(argv)
    except SystemExit as error:
        code = error.code if isinstance(error.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class Launcher:
    """Starts `audiodiff` processes forked from a pre-imported server."""

    _context = None

    def __init__(self):
        if Launcher._context is None:
            os.environ.setdefault("OMP_NUM_THREADS", "1")
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["tests.reliability._zygote"])
            Launcher._context = context

    def start(self, argv: list[str], out: Path, env: dict[str, str] | None = None):
        process = Launcher._context.Process(target=_run_cli, args=(list(map(str, argv)), env or {}, str(out)))
        process.start()
        return process


def output(out: Path) -> tuple[str, str]:
    return Path(f"{out}.out").read_text(), Path(f"{out}.err").read_text()


def logged_steps(run: Path) -> int:
    """The last step in run/log.jsonl (0 if none)."""
    path = run / "log.jsonl"
    if not path.is_file():
        return 0
    steps = [0]
    for line in path.read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return max(steps)


def partial_writes(run: Path) -> list[str]:
    """Hidden temporary checkpoint directories (a write in progress), with the files they hold."""
    folder = run / "checkpoints"
    if not folder.is_dir():
        return []
    found = []
    for child in sorted(folder.iterdir()):
        if child.name.startswith(".") and ".tmp-" in child.name:
            try:
                files = sorted(p.name for p in child.iterdir())
            except OSError:
                files = []
            found.append(f"{child.name.split('.tmp-')[0][1:]} {files}")
    return found


def wait_for(condition, timeout: float, interval: float = 0.005, process=None) -> bool:
    """Poll `condition()` until true (True) or timeout or `process` ended (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process is not None and not _alive(process):
            return bool(condition())
        time.sleep(interval)
    return False


def _alive(process) -> bool:
    if isinstance(process, subprocess.Popen):
        return process.poll() is None
    return process.is_alive()


def torchrun(argv: list[str], out: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`torchrun --standalone --nproc_per_node 2 -m audiodiff ARGV` in its own process group."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "audiodiff",
        *map(str, argv),
    ]
    return subprocess.Popen(
        command,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        stdout=open(f"{out}.out", "w"),
        stderr=open(f"{out}.err", "w"),
        start_new_session=True,
        cwd=ROOT,
    )


def descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        for child in children(queue.pop()):
            found.append(child)
            queue.append(child)
    return found


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a torchrun launch and its workers at once (a crashed machine). The workers may run
    in sessions of their own, so every descendant is killed too, not only the launch's group."""
    tree = descendants(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()
    assert wait_for(lambda: not any(pid_alive(pid) for pid in tree), 30), "workers outlived the kill"


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# --------------------------------------------------------------------------------------------
# Checkpoints


def assert_checkpoints_complete(run: Path) -> None:
    """Every visible step_N directory holds all four files and loads: none is half-written."""
    folder = run / "checkpoints"
    for child in sorted(folder.iterdir()) if folder.is_dir() else []:
        if child.name.startswith("."):
            continue
        files = sorted(p.name for p in child.iterdir())
        assert files == sorted(CHECKPOINT_FILES), f"{child}: {files}"
        for name in (WEIGHTS, STATE):
            load_file(child / name)
        json.loads((child / STATE_META).read_text())


def assert_same_checkpoint(a: Path, b: Path) -> None:
    """Bit-identical weights, EMA, optimizer and RNG state, and the same step and data position."""
    for name in (WEIGHTS, STATE):
        left, right = load_file(a / name), load_file(b / name)
        assert left.keys() == right.keys(), name
        for key in left:
            assert torch.equal(left[key], right[key]), f"{name}: {key} differs"
    meta_a, meta_b = (json.loads((p / STATE_META).read_text()) for p in (a, b))
    for key in ("step", "data", "optimizers", "skipped_steps", "rank_digests"):
        assert meta_a[key] == meta_b[key], key


def losses(run: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())]


def newest(run: Path) -> Path | None:
    found = list_checkpoints(run)
    return found[-1] if found else None
