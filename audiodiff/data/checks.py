"""File checks for a scan, remembered between runs so a restart does not decode every file again.

A file is checked in two stages: its header (opens, sample rate, length) and, when the length is
acceptable, its samples (decode, finite, not silent). What the checks find does not depend on the
config, so it is kept in a JSON scan cache keyed by path, size and modification time; the limits
in `DataConfig` (min_seconds, max_file_seconds, channels) are applied to those facts on every
scan. A file that changes on disk gets a new size or mtime and is checked again.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat as stat_module
from pathlib import Path

import numpy as np
import soundfile
from tqdm.auto import tqdm

from audiodiff.checkpoint import write_atomic
from audiodiff.config import DataConfig
from audiodiff.data.items import AudioItem, ScanReport

__all__ = ["SILENCE_PEAK", "ScanCache", "check_items", "default_cache_root"]

SILENCE_PEAK = 1e-4  # a file whose peak is below this is treated as silent
MAX_SAMPLE_RATE = 768_000
CACHE_VERSION = 1


def default_cache_root() -> Path:
    """Where caches go when `data.cache_dir` is not set: $AUDIODIFF_CACHE_DIR, else the user cache."""
    if os.environ.get("AUDIODIFF_CACHE_DIR"):
        return Path(os.environ["AUDIODIFF_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "audiodiff"


class ScanCache:
    """Facts about files by absolute path, valid while size and mtime are unchanged."""

    def __init__(self, file: Path | None):
        self.file = file
        self.entries: dict[str, dict] = {}
        self.dirty = False
        self.hits = 0
        if file is not None and file.is_file():
            try:
                data = json.loads(file.read_text())
                if data.get("version") == CACHE_VERSION and isinstance(data.get("files"), dict):
                    self.entries = data["files"]
            except (OSError, ValueError, AttributeError):
                pass  # a damaged cache is rebuilt, never trusted

    @classmethod
    def for_data(cls, cfg: DataConfig, root: Path) -> ScanCache:
        """The cache of the data at `root`: under data.cache_dir, else the user cache; off if
        data.scan_cache is false."""
        if not cfg.scan_cache:
            return cls(None)
        folder = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else default_cache_root()
        digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
        return cls(folder / "scan" / f"{root.name or 'root'}-{digest}.json")

    def get(self, key: str, stat: os.stat_result) -> dict | None:
        entry = self.entries.get(key)
        if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
            self.hits += 1
            return entry
        return None

    def put(self, key: str, entry: dict) -> None:
        self.entries[key] = entry
        self.dirty = True

    def save(self) -> None:
        """Write atomically (ranks and workers may scan at once); a read-only place is no error."""
        if self.file is None or not self.dirty:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps({"version": CACHE_VERSION, "files": self.entries})
            write_atomic(self.file, lambda temporary: temporary.write_text(text))
            self.dirty = False
        except OSError:
            pass


def _header_facts(path: Path) -> dict:
    try:
        info = soundfile.info(str(path))
    except Exception:  # libsndfile raises several types for files it cannot parse
        return {"error": "unreadable or not audio"}
    facts = {
        "error": None,
        "sample_rate": int(info.samplerate),
        "channels": int(info.channels),
        "frames": int(info.frames),
    }
    if info.frames <= 0:
        facts["error"] = "empty (0 samples)"
    elif not 0 < info.samplerate <= MAX_SAMPLE_RATE:
        facts["error"] = "absurd sample rate"
    return facts


def _content_error(path: Path) -> str | None:
    try:
        data, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception:
        return "corrupt (decoding failed)"
    if data.size == 0:
        return "empty (0 samples)"
    if not np.isfinite(data).all():
        return "NaN or Inf samples"
    if np.abs(data).max() < SILENCE_PEAK:
        return "silent"
    return None


def check_item(item: AudioItem, cfg: DataConfig, cache: ScanCache) -> str | None:
    """None if the file is usable (and fills seconds, sample_rate, channels), else why not."""
    try:
        stat = item.path.stat()
    except FileNotFoundError:
        return "missing file"
    except OSError:
        return "unreadable (permission or I/O error)"
    if not stat_module.S_ISREG(stat.st_mode):
        return "not a regular file"
    if stat.st_size == 0:
        return "empty file (0 bytes)"
    try:
        with item.path.open("rb") as handle:
            handle.read(1)
    except OSError:  # never cached: permissions change without touching mtime
        return "unreadable (permission or I/O error)"
    key = os.path.abspath(item.path)
    entry = cache.get(key, stat)
    if entry is None:
        entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, **_header_facts(item.path)}
        cache.put(key, entry)
    if entry["error"]:
        return entry["error"]
    seconds = entry["frames"] / entry["sample_rate"]
    if seconds > cfg.max_file_seconds:
        return f"longer than data.max_file_seconds={cfg.max_file_seconds:g}"
    if seconds < cfg.min_seconds:
        return f"shorter than data.min_seconds={cfg.min_seconds:g}"
    if cfg.channels == 2 and entry["channels"] > 2:
        return "more than 2 channels (data.channels=2 takes mono or stereo; 1 downmixes any)"
    if "content_error" not in entry:
        entry["content_error"] = _content_error(item.path)
        cache.put(key, entry)
    if entry["content_error"]:
        return entry["content_error"]
    item.seconds, item.sample_rate, item.channels = seconds, entry["sample_rate"], entry["channels"]
    return None


def _note_conversions(item: AudioItem, cfg: DataConfig, report: ScanReport) -> None:
    if item.sample_rate != cfg.sample_rate:
        report.convert(f"resampled {item.sample_rate} Hz -> {cfg.sample_rate} Hz", item.name)
    if item.channels != cfg.channels:
        what = "mixed down to mono" if cfg.channels == 1 else "mono duplicated to stereo"
        report.convert(f"{item.channels} channels {what}", item.name)
    if cfg.segment_seconds and item.seconds < cfg.segment_seconds:
        report.convert(f"shorter than the {cfg.segment_seconds:g} s segment, padded with silence", item.name)


def check_items(
    items: list[AudioItem], cfg: DataConfig, root: Path, report: ScanReport, progress: bool | None = None
) -> list[AudioItem]:
    """The usable items; the others are counted in `report` with their reason.

    `progress`: None shows a bar only on a terminal."""
    cache = ScanCache.for_data(cfg, root)
    usable = []
    bar = tqdm(
        items, desc="checking audio", unit="file", leave=False, disable=None if progress is None else not progress
    )
    for item in bar:
        reason = check_item(item, cfg, cache)
        if reason:
            report.skip(reason, item.name)
        else:
            usable.append(item)
            _note_conversions(item, cfg, report)
    cache.save()
    return usable
