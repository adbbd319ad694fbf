"""A GAN bandwidth extender: audio from a 16 kHz model -> full-band 44.1 kHz audio.

Plain resampling to 44.1 kHz leaves nothing above the input's Nyquist frequency (8 kHz); the
upsampler predicts that band. The input is resampled to the output rate, its STFT is analysed by
a small ConvNeXt stack at frame rate (the low band's log-magnitudes in, Vocos-like), and a head
predicts the magnitude and phase of the missing bins. The output spectrum is the input's below
the crossover and the prediction above it, with a short linear ramp between, so the band the
model did make passes through unchanged (`BandwidthExtender`, checked by a test). Trained with the
vocoders' GAN step (multi-period and multi-resolution discriminators, mel and multi-resolution
STFT losses) on real 44.1 kHz clips and 16 kHz versions of them (`recipes/upsampler-44k`).

    up = Upsampler.from_pretrained("upsampler-44k")
    full = up(audio_16k, 16000)                  # [n, channels, samples] -> [n, channels, samples * 44100 / 16000]
    Pipeline.from_pretrained("notes", upsampler="upsampler-44k").generate(label="flute").sample_rate  # 44100

A checkpoint is a folder: config.json ({"kind": "upsampler", "model": {...}}) and
model.safetensors, written atomically and loaded strictly like every other checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from audiodiff.audio import istft, resample, stft
from audiodiff.checkpoint import (
    CONFIG,
    INFO_KEYS,
    WEIGHTS,
    CheckpointError,
    check_top_level,
    load_state_dict,
    read_json,
    write_model,
)
from audiodiff.config import UpsamplerModelConfig
from audiodiff.errors import UserError
from audiodiff.vocoder.generators import ConvNeXtBlock, _init_vocos

__all__ = [
    "BandwidthExtender",
    "Upsampler",
    "UpsamplerError",
    "UpsamplerModelConfig",
    "band_limit",
    "log_spectral_distance",
]

MAX_PARAMETERS = 100_000_000
LOG_FLOOR = 1e-5


class UpsamplerError(UserError, ValueError):
    """Audio an upsampler cannot take; the message names the input and the fix."""


class BandwidthExtender(nn.Module):
    """Band-limited audio `[batch, 1, samples]` at `sample_rate` -> the same audio with the band
    above `input_rate / 2` predicted; `samples` a multiple of `hop_length`. Not clipped."""

    def __init__(self, config: UpsamplerModelConfig | None = None):
        super().__init__()
        config = config or UpsamplerModelConfig()
        self.settings = config
        start, top = config.crossover_bins
        self.low_bins, self.first_bin = top, start
        self.embed = nn.Conv1d(top, config.dim, config.kernel_size, padding=config.kernel_size // 2)
        self.embed_norm = nn.LayerNorm(config.dim)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(config.dim, config.intermediate_dim, config.kernel_size, 1 / config.num_layers)
            for _ in range(config.num_layers)
        )
        self.final_norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, 2 * (config.bins - start))  # log-magnitude and phase of the upper bins
        ramp = torch.zeros(config.bins)
        ramp[start:top] = torch.linspace(0.0, 1.0, top - start + 2)[1:-1]
        ramp[top:] = 1.0
        self.register_buffer("ramp", ramp[start:, None], persistent=False)  # the prediction's share per bin
        self.apply(_init_vocos)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        config = self.settings
        spec = stft(audio[:, 0], config.n_fft, config.hop_length)  # [b, bins, frames] complex
        features = torch.log(spec[:, : self.low_bins].abs().clamp_min(LOG_FLOOR))
        x = self.embed(features.to(self.embed.weight.dtype))
        x = rearrange(self.embed_norm(rearrange(x, "b c t -> b t c")), "b t c -> b c t")
        for block in self.blocks:
            x = block(x)
        log_magnitude, phase = self.head(self.final_norm(rearrange(x, "b c t -> b t c"))).float().chunk(2, dim=-1)
        magnitude = torch.exp(log_magnitude.clamp(max=math.log(config.max_magnitude)))
        predicted = torch.polar(magnitude, phase).transpose(1, 2)  # [b, upper bins, frames]
        upper = spec[:, self.first_bin :] * (1 - self.ramp) + predicted * self.ramp
        return istft(torch.cat([spec[:, : self.first_bin], upper], dim=1), config.n_fft, config.hop_length)[:, None]

    @property
    def config(self) -> dict:
        return dataclasses.asdict(self.settings)

    def num_parameters(self) -> int:
        return sum(parameter.numel() for parameter in self.parameters())


def band_limit(audio: torch.Tensor, sample_rate: int, input_rate: int) -> torch.Tensor:
    """What a model at `input_rate` could have made of `audio`: down to it and back up, the same length."""
    return resample(resample(audio, sample_rate, input_rate), input_rate, sample_rate)[..., : audio.shape[-1]]


def log_spectral_distance(
    estimate: torch.Tensor,
    reference: torch.Tensor,
    sample_rate: int,
    low_hz: float = 0.0,
    high_hz: float | None = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    eps: float = 1e-8,
) -> float:
    """Log-spectral distance as the audio super-resolution papers report it (NU-Wave, AudioSR):
    per STFT frame, the root mean square over frequency bins of log10 power differences, then the
    mean over frames; over the bins from `low_hz` to `high_hz` (default Nyquist) when given, to
    score only the band an upsampler adds. Audio `[..., samples]`, the same length."""
    length = min(estimate.shape[-1], reference.shape[-1])
    powers = [stft(x[..., :length].reshape(-1, length), n_fft, hop_length).abs() ** 2 for x in (estimate, reference)]
    first = int(round(low_hz * n_fft / sample_rate))
    last = n_fft // 2 + 1 if high_hz is None else int(round(high_hz * n_fft / sample_rate)) + 1
    difference = torch.log10(powers[0][:, first:last] + eps) - torch.log10(powers[1][:, first:last] + eps)
    return difference.pow(2).mean(dim=1).sqrt().mean().item()


class Upsampler(nn.Module):
    """A trained `BandwidthExtender` behind a call that takes audio at the input rate:
    `[n, channels, samples]` (or `[channels, samples]`, `[samples]`) -> the same layout at
    `sample_rate`, each channel extended on its own; long audio in chunks with context."""

    kind = "upsampler"
    chunk_frames = 4096  # about 24 s at the defaults; each chunk sees `context_frames` of audio each side
    context_frames = 32

    def __init__(self, model: BandwidthExtender, info: dict | None = None):
        super().__init__()
        self.model = model.eval()
        self.info = info or {}

    @property
    def input_rate(self) -> int:
        return self.model.settings.input_rate

    @property
    def sample_rate(self) -> int:
        return self.model.settings.sample_rate

    def forward(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        if int(sample_rate) != self.input_rate:
            raise UpsamplerError(
                f"the upsampler extends {self.input_rate} Hz audio, got {sample_rate} Hz; resample the input to "
                f"{self.input_rate} Hz, or train an upsampler from {sample_rate} Hz (recipes/upsampler-44k, model.input_rate)"
            )
        if not torch.is_tensor(audio) or audio.dim() not in (1, 2, 3) or not audio.is_floating_point():
            raise UpsamplerError(
                "upsampler input: a float tensor [samples], [channels, samples] or [n, channels, samples]"
            )
        shape = audio.shape
        flat = audio.reshape(-1, 1, shape[-1]).float()
        device = next(self.model.parameters()).device
        wide = resample(flat.to(device), self.input_rate, self.sample_rate)
        with torch.inference_mode():
            out = self._extend(wide)
        return out.reshape(*shape[:-1], out.shape[-1]).to(audio.device)

    def _extend(self, audio: torch.Tensor) -> torch.Tensor:
        hop = self.model.settings.hop_length
        length = audio.shape[-1]
        padded = F.pad(audio, (0, -length % hop))
        step, context = self.chunk_frames * hop, self.context_frames * hop
        pieces = []
        for start in range(0, padded.shape[-1], step):
            low, high = max(0, start - context), min(padded.shape[-1], start + step + context)
            piece = self.model(padded[..., low:high])
            pieces.append(piece[..., start - low : start - low + min(step, padded.shape[-1] - start)])
        return torch.cat(pieces, dim=-1)[..., :length]

    # -- checkpoints

    def config(self) -> dict:
        return {"kind": self.kind, "model": self.model.config, **{k: v for k, v in self.info.items() if k != "path"}}

    def save_pretrained(self, path: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
        """config.json + model.safetensors; `dtype=torch.float16` halves the file (loads as float32)."""
        return write_model(path, self.config(), self.model.state_dict(), dtype)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> Upsampler:
        """A bundled name ("upsampler-44k"), a checkpoint folder or a run directory."""
        from audiodiff.bundled import bundled_upsamplers, find_checkpoint

        folder = find_checkpoint(path, lambda: f"bundled upsamplers: {bundled_upsamplers()}")
        config = read_json(folder / CONFIG)
        if config.get("kind") != cls.kind:
            raise CheckpointError(f"{folder / CONFIG}: kind={config.get('kind')!r} is not an upsampler")
        check_top_level(config, ("kind", "model", *INFO_KEYS), folder / CONFIG)
        try:
            settings = UpsamplerModelConfig(**config["model"])
            with torch.device("meta"):
                size = BandwidthExtender(settings).num_parameters()
            if size > MAX_PARAMETERS:
                raise ValueError(f"{size / 1e9:.1f}B parameters is absurd")
            model = BandwidthExtender(settings)
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{folder / CONFIG}: bad 'model' section ({error})") from None
        load_state_dict(folder / WEIGHTS, model)
        info = {k: v for k, v in config.items() if k not in ("kind", "model")}
        info["path"] = str(folder)
        return cls(model.float(), info)
