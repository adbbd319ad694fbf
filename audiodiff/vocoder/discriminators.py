"""GAN discriminators for vocoder training: audio `[batch, 1, samples]` -> (logits, feature maps).

Each discriminator here is a set of sub-discriminators that look at the waveform differently:

- "mpd" multi-period (HiFi-GAN): the signal folded into `[samples / p, p]` for p in (2, 3, 5, 7, 11),
  so periodic structure lines up in columns.
- "msd" multi-scale (MelGAN/HiFi-GAN): the raw signal and two average-pooled copies.
- "mrd" multi-resolution (UnivNet): magnitude spectrograms at several STFT sizes.

Every one returns `(logits, features)`: one logits tensor per sub-discriminator and, for each, the
list of its intermediate activations (for the feature-matching loss). `Discriminators` chains a
chosen subset by name from `DISCRIMINATORS` and concatenates their lists.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from audiodiff.audio import stft

__all__ = [
    "DISCRIMINATORS",
    "Discriminators",
    "MultiPeriodDiscriminator",
    "MultiResolutionDiscriminator",
    "MultiScaleDiscriminator",
]

Outputs = tuple[list[torch.Tensor], list[list[torch.Tensor]]]
LEAKY_SLOPE = 0.1


class _ConvStack(nn.Module):
    """Convolutions with leaky ReLU between them and a final 1-channel conv; records every activation."""

    def __init__(self, convs: list[nn.Module], post: nn.Module):
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.post = post

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LEAKY_SLOPE)
            features.append(x)
        x = self.post(x)
        features.append(x)
        return x.flatten(1), features


# --------------------------------------------------------------------------------------------
# Multi-period


class PeriodDiscriminator(nn.Module):
    """One period p: audio `[batch, 1, samples]`, reflect-padded to a multiple of p, as `[batch, 1, samples/p, p]`."""

    def __init__(self, period: int, channels: tuple[int, ...] = (32, 128, 512, 1024), kernel_size: int = 5):
        super().__init__()
        self.period = period
        pad = (kernel_size - 1) // 2
        convs, previous = [], 1
        for width in channels:
            convs.append(weight_norm(nn.Conv2d(previous, width, (kernel_size, 1), (3, 1), (pad, 0))))
            previous = width
        convs.append(weight_norm(nn.Conv2d(previous, previous, (kernel_size, 1), 1, (pad, 0))))
        self.stack = _ConvStack(convs, weight_norm(nn.Conv2d(previous, 1, (3, 1), 1, (1, 0))))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        remainder = audio.shape[-1] % self.period
        if remainder:
            audio = F.pad(audio, (0, self.period - remainder), mode="reflect")
        return self.stack(rearrange(audio, "b c (t p) -> b c t p", p=self.period))


class MultiPeriodDiscriminator(nn.Module):
    """HiFi-GAN's MPD: one `PeriodDiscriminator` per period (primes, so the periods overlap little)."""

    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11), channels: tuple[int, ...] = (32, 128, 512, 1024)):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(period, tuple(channels)) for period in periods)

    def forward(self, audio: torch.Tensor) -> Outputs:
        return _gather(discriminator(audio) for discriminator in self.discriminators)


# --------------------------------------------------------------------------------------------
# Multi-scale


class ScaleDiscriminator(nn.Module):
    """Grouped strided 1-D convolutions over audio `[batch, 1, samples]` (MelGAN's design)."""

    # (out channels, kernel, stride, groups); the input has 1 channel.
    LAYERS = ((128, 15, 1, 1), (128, 41, 2, 4), (256, 41, 2, 16), (512, 41, 4, 16),
              (1024, 41, 4, 16), (1024, 41, 1, 16), (1024, 5, 1, 1))  # fmt: skip

    def __init__(self, norm: Callable[[nn.Module], nn.Module] = weight_norm, width: float = 1.0):
        super().__init__()
        convs, previous = [], 1
        for channels, kernel, stride, groups in self.LAYERS:
            channels = max(groups, round(channels * width / groups) * groups)  # `width` < 1: a smaller model
            groups = math.gcd(groups, previous, channels)  # unchanged at width 1
            convs.append(norm(nn.Conv1d(previous, channels, kernel, stride, padding=(kernel - 1) // 2, groups=groups)))
            previous = channels
        self.stack = _ConvStack(convs, norm(nn.Conv1d(previous, 1, 3, 1, padding=1)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.stack(audio)


class MultiScaleDiscriminator(nn.Module):
    """HiFi-GAN's MSD: scale discriminators on the audio average-pooled 1x, 2x, 4x; spectral norm on the first."""

    def __init__(self, num_scales: int = 3, width: float = 1.0):
        super().__init__()
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(spectral_norm if index == 0 else weight_norm, width) for index in range(num_scales)
        )

    def forward(self, audio: torch.Tensor) -> Outputs:
        outputs = []
        for index, discriminator in enumerate(self.discriminators):
            if index:
                audio = F.avg_pool1d(audio, 4, 2, padding=2)
            outputs.append(discriminator(audio))
        return _gather(outputs)


# --------------------------------------------------------------------------------------------
# Multi-resolution


class ResolutionDiscriminator(nn.Module):
    """2-D convolutions over a magnitude spectrogram `[batch, 1, frames, freqs]`, strided along frequency."""

    def __init__(self, n_fft: int, hop_length: int, win_length: int | None = None, channels: int = 32):
        super().__init__()
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length or n_fft
        convs = [weight_norm(nn.Conv2d(1, channels, (3, 9), padding=(1, 4)))]
        convs += [weight_norm(nn.Conv2d(channels, channels, (3, 9), (1, 2), padding=(1, 4))) for _ in range(3)]
        convs.append(weight_norm(nn.Conv2d(channels, channels, 3, padding=1)))
        self.stack = _ConvStack(convs, weight_norm(nn.Conv2d(channels, 1, 3, padding=1)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        magnitude = stft(audio[:, 0].float(), self.n_fft, self.hop_length, self.win_length).abs()
        return self.stack(rearrange(magnitude, "b f t -> b 1 t f").to(audio.dtype))


class MultiResolutionDiscriminator(nn.Module):
    """UnivNet's MRD: one `ResolutionDiscriminator` per (n_fft, hop, win) STFT resolution."""

    def __init__(
        self,
        resolutions: tuple[tuple[int, int, int], ...] = ((1024, 256, 1024), (2048, 512, 2048), (512, 128, 512)),
        channels: int = 32,
    ):
        super().__init__()
        self.discriminators = nn.ModuleList(
            ResolutionDiscriminator(n_fft, hop, win, channels) for n_fft, hop, win in resolutions
        )

    def forward(self, audio: torch.Tensor) -> Outputs:
        return _gather(discriminator(audio) for discriminator in self.discriminators)


# --------------------------------------------------------------------------------------------
# Registry


def _gather(outputs) -> Outputs:
    logits, features = [], []
    for item_logits, item_features in outputs:
        logits.append(item_logits)
        features.append(item_features)
    return logits, features


DISCRIMINATORS: dict[str, type[nn.Module]] = {
    "mpd": MultiPeriodDiscriminator,
    "msd": MultiScaleDiscriminator,
    "mrd": MultiResolutionDiscriminator,
}


class Discriminators(nn.Module):
    """The discriminators named in `names` (from `DISCRIMINATORS`), run on the same audio.

    `options` maps a name to keyword arguments for that discriminator, e.g.
    `{"mrd": {"resolutions": ((512, 128, 512),)}}`. HiFi-GAN uses ("mpd", "msd"); Vocos ("mpd", "mrd").
    audio `[batch, 1, samples]` -> (logits list, feature-map lists), concatenated in `names` order.
    """

    def __init__(self, names: tuple[str, ...] = ("mpd", "msd"), options: dict[str, dict[str, Any]] | None = None):
        super().__init__()
        options = options or {}
        unknown = sorted(set(names).union(options) - set(DISCRIMINATORS))
        if unknown or not names:
            problem = f"unknown discriminators {unknown}" if unknown else "no discriminators named"
            raise ValueError(f"{problem}; valid names are {sorted(DISCRIMINATORS)}")
        self.names = tuple(names)
        self.discriminators = nn.ModuleDict({name: DISCRIMINATORS[name](**options.get(name, {})) for name in names})

    def forward(self, audio: torch.Tensor) -> Outputs:
        if audio.dim() == 2:
            audio = audio[:, None]
        logits, features = [], []
        for discriminator in self.discriminators.values():
            item_logits, item_features = discriminator(audio)
            logits += item_logits
            features += item_features
        return logits, features
