"""From a checked item to a training example: the file's full-length representation, optionally
cached on disk, then a crop of the segment length.

The full-length representation is the file resampled to `data.sample_rate`, converted to
`data.channels`, normalised with one gain for the whole file (before any crop, so a crop of a quiet
tail is not blown up to full scale), for mel models its log-mel (after zero-padding files shorter
than the segment), and for latent models that log-mel encoded by the autoencoder (its posterior
mean, scaled). Crops are taken from it: in samples for waveforms, in frames for mels and latents.
So an item is the same numbers whether its features came from the cache or were just computed.

The cache (`data.cache_dir`) holds one safetensors file per audio file, in a folder named by a
hash of everything the features depend on (MelSpec, rate, channels, normalisation, segment, the
autoencoder's weights): a
second epoch does no decoding, resampling or STFTs, and changing a setting starts a new folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from audiodiff.audio import (
    MelSpec,
    crop_or_pad,
    decode_audio,
    load_audio,
    normalize_loudness,
    normalize_peak,
    resample,
    to_channels,
)
from audiodiff.checkpoint import write_atomic
from audiodiff.config import DataConfig
from audiodiff.data.items import AudioItem
from audiodiff.spaces import space_for

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
        self.folder = (
            Path(root).expanduser() / f"{settings['representation']}-{hashlib.sha1(text.encode()).hexdigest()[:16]}"
        )
        self.settings = settings

    def file_for(self, item: AudioItem) -> Path:
        """The cache file of `item`: named by its path (and shard member), size and mtime."""
        stat = item.path.stat()
        key = f"{os.path.abspath(item.path)}|{item.member or ''}|{stat.st_size}|{stat.st_mtime_ns}"
        name = hashlib.sha1(key.encode()).hexdigest()[:24]
        return self.folder / name[:2] / f"{name}.safetensors"

    def load(self, file: Path, keys: tuple[str, ...] = ("x",)) -> dict[str, torch.Tensor] | None:
        """The cached tensors `keys` of one file, or None when any is missing or damaged."""
        if not file.is_file():
            return None
        try:
            tensors = load_file(str(file))
            return {key: tensors[key] for key in keys}
        except (OSError, SafetensorError, KeyError):
            return None  # damaged (e.g. a run killed mid-write elsewhere): recompute

    def save(self, file: Path, features: dict[str, torch.Tensor]) -> None:
        """Write atomically: workers and ranks may write the same file at once."""
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            settings = self.folder / "settings.json"
            if not settings.is_file():
                write_atomic(settings, lambda path: path.write_text(json.dumps(self.settings, indent=1)))
            tensors = {key: value.contiguous() for key, value in features.items()}
            write_atomic(file, lambda path: save_file(tensors, str(path)))
        except OSError:
            pass  # a full or read-only disk costs speed, not the run


class ItemLoader:
    """Items -> segments `[channels, samples]` (wave), `[channels, n_mels, frames]` (mel) or
    `[latent_channels, bands, latent_frames]` (latent: needs the `autoencoder`)."""

    def __init__(self, cfg: DataConfig, mel_spec: MelSpec | None, autoencoder=None, curve_hop: int | None = None):
        self.cfg = cfg
        self.curve_hop = curve_hop
        self.space = space_for(cfg, mel_spec, autoencoder=autoencoder)
        self.mel_spec = self.space.mel_spec
        self.curves = tuple(cfg.curves)
        self.curve_method = cfg.curve_method
        if self.curves and self.curve_method == "auto":
            from audiodiff.controls import default_f0_method

            self.curve_method = default_f0_method()
        self.cache = FeatureCache(cfg.cache_dir, self.settings()) if cfg.cache_dir else None

    @property
    def hop(self) -> int:
        """Samples per curve frame: the mel hop, or for waveforms `curve_hop` if given (a vocoder's
        mel hop), else the bundled frame rate's."""
        if self.curve_hop is not None:
            return self.space.curve_hop(self.curve_hop)
        from audiodiff.controls import FRAME_RATE

        return self.space.curve_hop(max(1, round(self.cfg.sample_rate / FRAME_RATE)))

    def settings(self) -> dict:
        """Everything the full-length features depend on (the cache folder's key)."""
        curves = (
            {"curves": list(self.curves), "curve_method": self.curve_method, "hop": self.hop} if self.curves else {}
        )
        return {
            **curves,
            "version": CACHE_VERSION,
            "normalize": self.cfg.normalize,
            "min_samples": self.space.encode_padding(self.cfg.segment_samples),
            "mel": None,  # a wave space has none (the key as before, so existing caches stay valid)
            **self.space.settings(),  # the space says what its features depend on (rate, channels, mel, gain, ...)
        }

    def audio(self, item: AudioItem, data: bytes | None = None) -> torch.Tensor:
        """The whole file, resampled, channel-converted and normalised: `[channels, samples]`."""
        if data is not None:
            audio = decode_audio_bytes(data, item.name, self.cfg.sample_rate, self.cfg.channels)
        else:
            audio, _ = load_audio(item.path, self.cfg.sample_rate, self.cfg.channels)
        return NORMALIZERS[self.cfg.normalize](audio)

    def compute(self, item: AudioItem, data: bytes | None = None) -> dict[str, torch.Tensor]:
        """The full-length features of `item`, computed now (no cache): `{"x": ..., <curve>: [frames]}`."""
        audio = self.audio(item, data)
        missing = self.space.encode_padding(self.cfg.segment_samples) - audio.shape[-1]
        if missing > 0:
            audio = F.pad(audio, (0, missing))
        out = {"x": self.space.features(audio)}
        if self.curves:
            from audiodiff.controls import extract, resample_curve

            frames = audio.shape[-1] // self.hop
            curves = extract(audio, self.cfg.sample_rate, self.cfg.sample_rate / self.hop, self.curve_method)
            for name in self.curves:
                out[name] = torch.from_numpy(resample_curve(curves[name], max(1, frames), kind=name))
        return out

    def full(self, item: AudioItem, data: bytes | None = None) -> dict[str, torch.Tensor]:
        """The full-length features of `item` (and its curves), from the cache when it has them."""
        if self.cache is None:
            return self.compute(item, data)
        file = self.cache.file_for(item)
        features = self.cache.load(file, ("x", *self.curves))
        if features is None:
            features = self.compute(item, data)
            self.cache.save(file, features)
        return features

    @property
    def segment_length(self) -> int:
        """The crop length along the last axis: samples, mel frames or latent frames."""
        return self.space.length(self.cfg.segment_samples)

    def segment(self, item: AudioItem, seed: int | None = None, data: bytes | None = None) -> torch.Tensor:
        """A crop of the segment length; `seed` fixes where (None: the global RNG)."""
        return self.example(item, seed, data)["x"]

    def example(self, item: AudioItem, seed: int | None = None, data: bytes | None = None) -> dict[str, torch.Tensor]:
        """`{"x": crop, <curve>: its frames}`: one crop of the segment length for the features and
        the curves alike (`seed` fixes where; None: the global RNG). Padding: zeros for the
        features, NaN (not given) for the curves."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        features = self.full(item, data)
        x, length = features["x"], self.segment_length
        have = x.shape[-1]
        start = 0
        per_frame = max(1, self.hop // self.space.samples_per_position)  # positions per curve frame
        if have > length and self.cfg.random_crop:
            start = int(torch.randint(0, have - length + 1, (1,), generator=generator))
            if self.curves:  # a waveform crop starts on a curve frame, so its curves line up with it
                start -= start % per_frame
        out = {"x": crop_or_pad(x[..., start:], length, random=False)}
        frames = length // per_frame
        for name in self.curves:
            curve = features[name][start // per_frame : start // per_frame + frames]
            out[name] = F.pad(curve, (0, frames - curve.shape[-1]), value=float("nan"))
        return out
