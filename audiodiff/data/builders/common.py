"""What the dataset builders share: the report, tool checks, hash splits, silence trimming,
fixed-length windows, a parallel map with a progress bar, and the manifest/info writers.

Audio here is a float32 numpy array `[samples]` (mono) unless a docstring says otherwise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torchaudio
from tqdm.auto import tqdm

from audiodiff.data.manifest import write_jsonl
from audiodiff.errors import UserError

__all__ = [
    "BuildError",
    "BuildReport",
    "MissingToolError",
    "SPLIT_FRACTIONS",
    "fit_to_length",
    "hash_split",
    "parallel_map",
    "prepare_out_dir",
    "require_tool",
    "resample_mono",
    "speech_bounds",
    "stable_fraction",
    "tool_version",
    "write_outputs",
]

SPLIT_FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}
MAX_EXAMPLES = 3  # examples kept per skip reason

Item = TypeVar("Item")
Result = TypeVar("Result")


class BuildError(UserError, RuntimeError):
    """A dataset build that cannot start or finish; the message says what to change."""


class MissingToolError(BuildError):
    """An external program or data file the builder needs is not installed."""


# --------------------------------------------------------------------------------------------
# Report


@dataclasses.dataclass
class BuildReport:
    """What a build wrote and what it skipped, with why."""

    builder: str
    out_dir: Path
    manifest: Path
    total: int = 0
    per_split: dict[str, int] = dataclasses.field(default_factory=dict)
    per_label: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped_examples: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    notes: dict[str, int] = dataclasses.field(default_factory=dict)  # e.g. clips cropped
    seconds_taken: float = 0.0

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def items_per_second(self) -> float:
        return (self.total + self.num_skipped) / max(self.seconds_taken, 1e-9)

    def skip(self, reason: str, example: str) -> None:
        """Count one skipped item under `reason`, keeping the first few as examples."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        examples = self.skipped_examples.setdefault(reason, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(example)

    def count(self, rows: list[dict]) -> None:
        """Fill the totals from the manifest rows."""
        self.total = len(rows)
        self.per_split = dict(sorted(Counter(row["split"] for row in rows).items()))
        self.per_label = dict(sorted(Counter(row["label"] for row in rows).items()))

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["out_dir"], data["manifest"] = str(self.out_dir), str(self.manifest)
        data["items_per_second"] = round(self.items_per_second, 2)
        return data

    def __str__(self) -> str:
        splits = ", ".join(f"{name} {count}" for name, count in self.per_split.items()) or "none"
        labels = ", ".join(f"{name} {count}" for name, count in self.per_label.items()) or "none"
        lines = [
            f"{self.builder}: {self.total} clips in {self.seconds_taken:.1f} s "
            f"({self.items_per_second:.1f}/s) -> {self.manifest}",
            f"  splits: {splits}",
            f"  labels: {labels}",
        ]
        for name, count in self.notes.items():
            lines.append(f"  {name}: {count}")
        if self.skipped:
            lines.append(f"  skipped {self.num_skipped}:")
            for reason, count in self.skipped.items():
                examples = "; ".join(self.skipped_examples.get(reason, []))
                lines.append(f"    {count} x {reason} (e.g. {examples})")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Tools


def require_tool(name: str, package: str) -> str:
    """Absolute path of program `name`, or a MissingToolError naming the package to install."""
    found = shutil.which(name)
    if found is None:
        raise MissingToolError(
            f"`{name}` was not found on PATH; install it with `apt-get install {package}` "
            f"(Debian/Ubuntu) or put the program on PATH"
        )
    return found


def run_tool(program: str, *args: str) -> str:
    """`program args` -> its stdout, or a BuildError with the start of its stderr."""
    done = subprocess.run([program, *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise BuildError(f"`{program} {' '.join(args)}` failed: {done.stderr.strip()[:300]}")
    return done.stdout


def tool_version(program: str, flag: str = "--version") -> str:
    """First line of `program --version`, for provenance in info.json."""
    try:
        done = subprocess.run([program, flag], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        return f"unknown ({error})"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


# --------------------------------------------------------------------------------------------
# Splits


def stable_fraction(key: str, seed: int) -> float:
    """A number in [0, 1) from sha256 of "seed:key": the same on every machine and run."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def hash_split(key: str, seed: int, fractions: dict[str, float] = SPLIT_FRACTIONS) -> str:
    """Split name for `key`, from `stable_fraction(key, seed)`: stable whatever else is built."""
    position = stable_fraction(key, seed)
    edge = 0.0
    for name, fraction in fractions.items():
        edge += fraction
        if position < edge:
            return name
    return name


# --------------------------------------------------------------------------------------------
# Audio


def speech_bounds(
    audio: np.ndarray, sample_rate: int, threshold_db: float = -40.0, frame_seconds: float = 0.01
) -> tuple[int, int] | None:
    """(start, end) samples of the part louder than `threshold_db` below the loudest 10 ms
    frame, with one frame of margin; None when the clip is digital silence."""
    frame = max(1, int(round(frame_seconds * sample_rate)))
    if audio.size == 0 or float(np.abs(audio).max()) < 1e-4:
        return None
    num_frames = -(-audio.size // frame)
    padded = np.zeros(num_frames * frame, dtype=np.float32)
    padded[: audio.size] = audio
    energy = np.sqrt(np.mean(padded.reshape(num_frames, frame) ** 2, axis=1))
    loud = np.flatnonzero(energy >= energy.max() * 10 ** (threshold_db / 20))
    start = max(0, (int(loud[0]) - 1) * frame)
    end = min(audio.size, (int(loud[-1]) + 2) * frame)
    return start, end


def fit_to_length(audio: np.ndarray, length: int, fade: int = 0, center: bool = True) -> np.ndarray:
    """Place `audio` in a window of exactly `length` samples: zero-pad (centred or at the
    end), or keep the first `length` samples with a `fade`-sample fade-out against a click."""
    if audio.size >= length:
        out = np.array(audio[:length], dtype=np.float32)
        if fade and audio.size > length:
            out[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        return out
    out = np.zeros(length, dtype=np.float32)
    offset = (length - audio.size) // 2 if center else 0
    out[offset : offset + audio.size] = audio
    return out


@functools.lru_cache(maxsize=8)
def _resampler(orig_rate: int, new_rate: int) -> torchaudio.transforms.Resample:
    # The kernel is built once per rate pair; calling the module is read-only, so threads share it.
    return torchaudio.transforms.Resample(orig_rate, new_rate)


def resample_mono(audio: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling of `[samples]` (kernel cached per rate pair)."""
    if orig_rate == new_rate:
        return audio.astype(np.float32, copy=False)
    with torch.no_grad():
        out = _resampler(int(orig_rate), int(new_rate))(torch.from_numpy(np.ascontiguousarray(audio))[None])
    return out[0].numpy()


# --------------------------------------------------------------------------------------------
# Running and writing


def default_workers() -> int:
    """CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Run torch ops with `count` intra-op threads, then restore. The builders parallelise
    across clips; nested torch threads on busy cores made one resample 40x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def parallel_map(
    function: Callable[[Item], Result],
    items: Iterable[Item],
    workers: int | None,
    progress: bool,
    description: str,
    total: int,
    weight: Callable[[Item], int] = lambda item: 1,
) -> Iterator[Result]:
    """`map(function, items)` on a thread pool, in order, with a tqdm bar of `total` units.

    Threads suit these builders: the work is in subprocesses and in numpy/torch/soundfile
    calls that release the GIL.
    """
    items = list(items)
    workers = workers or default_workers()
    bar = tqdm(total=total, desc=description, unit="clip", disable=not progress, smoothing=0.05)
    with _torch_threads(1), bar:
        if workers == 1:
            results = map(function, items)
            for item, result in zip(items, results):
                bar.update(weight(item))
                yield result
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for item, result in zip(items, pool.map(function, items)):
                bar.update(weight(item))
                yield result


def collect_rows(results: Iterable, report: BuildReport) -> list[dict]:
    """The manifest rows among renderers' results; the others, (reason, example), are skips
    counted in `report`."""
    rows = []
    for result in results:
        if isinstance(result, dict):
            rows.append(result)
        else:
            report.skip(*result)
    return rows


def prepare_out_dir(out_dir: str | os.PathLike, overwrite: bool) -> Path:
    """Create `out_dir/wavs`; refuse to mix with an earlier build unless `overwrite`."""
    out_dir = Path(out_dir)
    manifest = out_dir / "manifest.jsonl"
    if manifest.exists():
        if not overwrite:
            raise BuildError(
                f"{manifest} already exists; choose another output folder or pass overwrite=True "
                "(which deletes the wavs/*.wav of the earlier build)"
            )
        for old in (out_dir / "wavs").glob("*.wav"):
            old.unlink()
        manifest.unlink()
    (out_dir / "wavs").mkdir(parents=True, exist_ok=True)
    return out_dir


def write_outputs(report: BuildReport, rows: list[dict], info: dict, started: float) -> BuildReport:
    """Write manifest.jsonl (atomically, so a crash leaves no half manifest) and info.json."""
    report.count(rows)
    report.seconds_taken = time.perf_counter() - started
    write_jsonl(report.manifest, rows)
    info = {**info, "report": report.to_dict()}
    with open(report.out_dir / "info.json", "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    return report
