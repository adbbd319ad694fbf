"""Checkpoint directories: `config.json` + `model.safetensors` (inference weights), plus
`training_state.safetensors` + `training_state.json` for resuming.

Writes are atomic (a temporary sibling directory, fsync, then rename), so a killed process leaves
either the previous checkpoint or the new one, never half of one. Reads use safetensors and JSON
only: nothing in a checkpoint can execute code.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from audiodiff.errors import UserError

__all__ = [
    "INFO_KEYS",
    "CheckpointError",
    "check_top_level",
    "list_checkpoints",
    "load_state_dict",
    "newest_checkpoint",
    "read_json",
    "remove_checkpoint",
    "resolve_checkpoint",
    "write_atomic",
    "write_checkpoint",
    "write_model",
]

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
STATE = "training_state.safetensors"
STATE_META = "training_state.json"
MAX_JSON_BYTES = 16 * 1024 * 1024
_STEP_DIR = re.compile(r"^step_(\d+)$")
# Test hook: seconds to sleep after each checkpoint file is written, so tests can kill a process
# in the middle of a checkpoint write (tests/reliability). Unset in normal use.
SLOW_WRITE_ENV = "AUDIODIFF_TEST_SLOW_CHECKPOINT"
_PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # a pickle (protocol 2+) or a torch.save zip archive
# Top-level keys of a checkpoint's config.json besides its model's own: provenance written by the
# trainer and its tasks (training, dataset, recipe) and by scripts/bundle.py (source, metrics).
INFO_KEYS = ("dataset", "metrics", "recipe", "source", "training")


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be written or loaded; the message names the file and the fix."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _slow_write_for_tests() -> None:
    if os.environ.get(SLOW_WRITE_ENV):
        time.sleep(float(os.environ[SLOW_WRITE_ENV]))


def write_json(path: Path, data) -> None:
    with open(path, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=False, allow_nan=True)
        handle.flush()
        os.fsync(handle.fileno())
    _slow_write_for_tests()


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path))
    except SafetensorError as error:  # safetensors reports a full disk (ENOSPC, EFBIG) this way
        raise OSError(f"{path.name}: {error}") from None
    os.chmod(path, 0o644)  # safetensors creates 0600 files; checkpoints are shared and packaged
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
    _slow_write_for_tests()


def write_atomic(target: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Create file `target` by calling `write(temporary)` beside it and renaming, so readers and
    a crash never see half a file; a failed write removes the temporary file and raises."""
    target = Path(target)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        write(temporary)
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(OSError):  # cleaning up must not hide why the write failed
            temporary.unlink(missing_ok=True)
    return target


def write_checkpoint(target: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Atomically create directory `target` by calling `write(tmp_dir)` and renaming.

    An existing `target` is replaced only after the new one is complete. Failures (a full or
    read-only disk) raise a CheckpointError and leave the previous checkpoint untouched.
    """
    target = Path(target)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        write(tmp)
        _fsync_dir(tmp)
        if target.exists():
            os.rename(target, old)
        os.rename(tmp, target)
        _fsync_dir(target.parent)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not target.exists():
            os.rename(old, target)
        raise CheckpointError(
            f"could not write checkpoint {target}: {error.strerror or error}; "
            "check free space and write permission; the previous checkpoint is intact"
        ) from None
    shutil.rmtree(old, ignore_errors=True)
    return target


def check_top_level(data: dict, valid: Iterable[str], where: str | os.PathLike) -> None:
    """Refuse top-level keys of a config.json that no writer produces (a typo such as "samplng"
    would otherwise be ignored), naming them and the valid keys."""
    unknown = sorted(set(data) - set(valid), key=str)
    if unknown:
        raise CheckpointError(f"{where}: unknown top-level key(s) {unknown}; valid keys are {sorted(valid)}")


def write_model(
    target: str | os.PathLike, config: dict, state: dict[str, torch.Tensor], dtype: torch.dtype | None = None
) -> Path:
    """A model checkpoint folder, atomically: config.json and model.safetensors, the floating-point
    tensors stored as `dtype` when given (float16 halves the file; they load back as float32)."""
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}

    def write(folder: Path) -> None:
        write_json(folder / CONFIG, config)
        save_tensors(folder / WEIGHTS, state)

    return write_checkpoint(target, write)


def read_json(path: str | os.PathLike) -> dict:
    """A JSON object from a checkpoint, with a size limit and clear errors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; a checkpoint directory needs {CONFIG} and {WEIGHTS}")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise CheckpointError(f"{path}: {path.stat().st_size} bytes, too large for a config")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def load_state_dict(path: str | os.PathLike, module: torch.nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file; with `module`, check names and shapes and load them."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; a checkpoint directory needs {CONFIG} and {WEIGHTS}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        with open(path, "rb") as handle:
            head = handle.read(4)
        if head.startswith(_PICKLE_MAGIC):
            raise CheckpointError(
                f"{path}: a pickle or torch.save file, not safetensors; audiodiff never unpickles checkpoint files "
                "(unpickling can run code). Convert it where you trust it: safetensors.torch.save_file(state_dict, path)"
            ) from None
        raise CheckpointError(f"{path}: not a readable safetensors file ({error}); re-export the checkpoint") from None
    if module is not None:
        expected = module.state_dict()
        missing = sorted(set(expected) - set(tensors))
        unexpected = sorted(set(tensors) - set(expected))
        wrong = [
            f"{name} {list(tensors[name].shape)} (model has {list(expected[name].shape)})"
            for name in expected
            if name in tensors and tensors[name].shape != expected[name].shape
        ]
        if missing or unexpected or wrong:
            parts = []
            if missing:
                parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
            if unexpected:
                parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
            if wrong:
                parts.append(f"{len(wrong)} with the wrong shape (e.g. {wrong[:2]})")
            raise CheckpointError(f"{path}: weights do not match the model in config.json: " + "; ".join(parts))
        module.load_state_dict(tensors)
    return tensors


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Complete `step_N` checkpoints under `run_dir/checkpoints`, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and (child / CONFIG).is_file() and (child / WEIGHTS).is_file():
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def remove_checkpoint(path: str | os.PathLike) -> None:
    """Delete a checkpoint directory as one step: rename it to a hidden name, then remove it, so a
    kill during the removal leaves no half-deleted `step_N` that looks complete."""
    path = Path(path)
    hidden = path.parent / f".{path.name}.old-{os.getpid()}"
    try:
        os.rename(path, hidden)
    except OSError:
        return
    shutil.rmtree(hidden, ignore_errors=True)


def newest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint directory, or a run directory (its newest checkpoint)."""
    path = Path(path).expanduser()
    if (path / CONFIG).is_file():
        return path
    newest = newest_checkpoint(path)
    if newest is not None:
        return newest
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint or run directory")
    raise CheckpointError(f"{path}: no {CONFIG} here and no checkpoints/step_N inside; point at a checkpoint directory")
