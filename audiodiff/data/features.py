"""From a checked item to a training example: the file's full-length representation, optionally
cached on disk, then a crop of the segment length.

The full-length representation is the file resampled to `data.sample_rate`, converted to
`data.channels`, normalised with one gain for the whole file (before any crop, so a crop of a quiet
tail is not blown up to full scale), and for mel models its log-mel (after zero-padding files
shorter than the segment). Crops are taken from it: in samples for waveforms, in frames for mels.
So an item is the same numbers whether its features came from the cache or were just computed.

The cache (`data.cache_dir`) holds one safetensors file per audio file, in a folder named by a
hash of everything the features depend on (MelSpec, rate, channels, normalisation, segment): a
second epoch does no decoding, resampling or STFTs, and changing a setting starts a new folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from audiodiff.audio import MelSpec, crop_or_pad, decode_audio, load_audio, normalize_loudness, normalize_peak, resample, to_channels
from audiodiff.checkpoint import write_atomic
from audiodiff.config import DataConfig
from audiodiff.data.items import AudioItem

__all__ = ["FeatureCache", "ItemLoader", "NORMALIZERS", "decode_audio_bytes"]

CACHE_VERSION = 1

NORMALIZERS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "none": lambda audio: audio,
    "peak": normalize_peak,
    "loudness": normalize_loudness,
}


def decode_audio_bytes(data: bytes, name: str, sample_rate: int, channels: int) -> torch.Tensor:
    """An encoded file's bytes (wav, flac, ogg, ...) as float32 `[channels, samples]` at `sample_rate`."""
    audio, file_rate = decode_audio(io.BytesIO(data), name)
    return resample(to_channels(audio, channels, name=name), file_rate, sample_rate)


class FeatureCache:
    """Full-length features on disk, one file per audio file, valid while it is unchanged."""

    def __init__(self, root: str | os.PathLike, settings: dict):
        text = json.dumps(settings, sort_keys=True)
        self.folder = Path(root).expanduser() / f"{settings['representation']}-{hashlib.sha1(text.encode()).hexdigest()[:16]}"
        self.settings = settings

    def file_for(self, item: AudioItem) -> Path:
        """The cache file of `item`: named by its path (and shard member), size and mtime."""
        stat = item.path.stat()
        key = f"{os.path.abspath(item.path)}|{item.member or ''}|{stat.st_size}|{stat.st_mtime_ns}"
        name = hashlib.sha1(key.encode()).hexdigest()[:24]
        return self.folder / name[:2] / f"{name}.safetensors"

    def load(self, file: Path) -> torch.Tensor | None:
        if not file.is_file():
            return None
        try:
            return load_file(str(file))["x"]
        except (OSError, SafetensorError, KeyError):
            return None  # damaged (e.g. a run killed mid-write elsewhere): recompute

    def save(self, file: Path, features: torch.Tensor) -> None:
        """Write atomically: workers and ranks may write the same file at once."""
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            settings = self.folder / "settings.json"
            if not settings.is_file():
                write_atomic(settings, lambda path: path.write_text(json.dumps(self.settings, indent=1)))
            write_atomic(file, lambda path: save_file({"x": features.contiguous()}, str(path)))
        except OSError:
            pass  # a full or read-only disk costs speed, not the run


class ItemLoader:
    """Items -> segments `[channels, samples]` (wave) or `[channels, n_mels, frames]` (mel)."""

    def __init__(self, cfg: DataConfig, mel_spec: MelSpec | None):
        self.cfg = cfg
        self.mel_spec = mel_spec if cfg.representation == "mel" else None
        self.cache = FeatureCache(cfg.cache_dir, self.settings()) if cfg.cache_dir else None

    def settings(self) -> dict:
        """Everything the full-length features depend on (the cache folder's key)."""
        return {
            "version": CACHE_VERSION,
            "representation": self.cfg.representation,
            "sample_rate": self.cfg.sample_rate,
            "channels": self.cfg.channels,
            "normalize": self.cfg.normalize,
            "min_samples": self.cfg.segment_samples if self.mel_spec is not None else 0,
            "mel": self.mel_spec.to_dict() if self.mel_spec is not None else None,
        }

    def audio(self, item: AudioItem, data: bytes | None = None) -> torch.Tensor:
        """The whole file, resampled, channel-converted and normalised: `[channels, samples]`."""
        if data is not None:
            audio = decode_audio_bytes(data, item.name, self.cfg.sample_rate, self.cfg.channels)
        else:
            audio, _ = load_audio(item.path, self.cfg.sample_rate, self.cfg.channels)
        return NORMALIZERS[self.cfg.normalize](audio)

    def compute(self, item: AudioItem, data: bytes | None = None) -> torch.Tensor:
        """The full-length features of `item`, computed now (no cache)."""
        audio = self.audio(item, data)
        if self.mel_spec is None:
            return audio
        missing = self.cfg.segment_samples - audio.shape[-1]
        if missing > 0:
            audio = F.pad(audio, (0, missing))
        return self.mel_spec(audio)

    def full(self, item: AudioItem, data: bytes | None = None) -> torch.Tensor:
        """The full-length features of `item`, from the cache when it has them."""
        if self.cache is None:
            return self.compute(item, data)
        file = self.cache.file_for(item)
        features = self.cache.load(file)
        if features is None:
            features = self.compute(item, data)
            self.cache.save(file, features)
        return features

    @property
    def segment_length(self) -> int:
        """The crop length along the last axis: samples, or mel frames."""
        samples = self.cfg.segment_samples
        return self.mel_spec.num_frames(samples) if self.mel_spec is not None else samples

    def segment(self, item: AudioItem, seed: int | None = None, data: bytes | None = None) -> torch.Tensor:
        """A crop of the segment length; `seed` fixes where (None: the global RNG)."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        return crop_or_pad(self.full(item, data), self.segment_length, generator, random=self.cfg.random_crop)
