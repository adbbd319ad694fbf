"""The mel autoencoder network: a convolutional encoder from the normalised log-mel `[batch, 1,
n_mels, frames]` to a KL-regularised latent `[batch, latent_channels, n_mels / freq_down, frames
/ time_down]`, and a decoder back. `audiodiff.latent.Autoencoder` loads and uses a trained one."""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn as nn

__all__ = ["AutoencoderModelConfig", "MelAutoencoder", "kl_divergence"]


@dataclasses.dataclass
class AutoencoderModelConfig:
    channels: int = 32  # width of the first level
    channel_mults: list[int] = dataclasses.field(default_factory=lambda: [1, 2, 4])
    num_res_blocks: int = 1  # per level, in the encoder and the decoder
    latent_channels: int = 4
    time_down: int = 4  # frames per latent frame (a power of 2)
    freq_down: int = 4  # mel bands per latent band (a power of 2)
    norm_groups: int = 8

    def __post_init__(self):
        for name in ("time_down", "freq_down"):
            factor = getattr(self, name)
            if factor < 1 or factor & (factor - 1):
                raise ValueError(f"model.{name}={factor}: must be a power of 2 (1, 2, 4, 8, ...)")
        levels = max(self.levels, 1)
        if len(self.channel_mults) < levels:
            raise ValueError(
                f"model.channel_mults={self.channel_mults}: needs at least {levels} levels for a "
                f"downsampling of {self.time_down} in time and {self.freq_down} in frequency"
            )
        if self.channels < 1 or self.latent_channels < 1 or self.num_res_blocks < 0:
            raise ValueError(
                "model.channels and model.latent_channels must be positive, model.num_res_blocks at least 0"
            )
        if any(self.channels * m % self.norm_groups for m in self.channel_mults):
            raise ValueError(
                f"model.norm_groups={self.norm_groups} must divide every level's width {[self.channels * m for m in self.channel_mults]}"
            )

    @property
    def levels(self) -> int:
        """Downsampling steps: enough for the larger of the two factors."""
        return int(math.log2(max(self.time_down, self.freq_down)))

    def strides(self) -> list[tuple[int, int]]:
        """(frequency, time) stride of each downsampling step."""
        steps_f, steps_t = int(math.log2(self.freq_down)), int(math.log2(self.time_down))
        return [(2 if i < steps_f else 1, 2 if i < steps_t else 1) for i in range(self.levels)]


class _Block(nn.Module):
    """GroupNorm, SiLU, conv, twice, with a residual path."""

    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(groups, cin),
            nn.SiLU(),
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.GroupNorm(groups, cout),
            nn.SiLU(),
            nn.Conv2d(cout, cout, 3, padding=1),
        )
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class MelAutoencoder(nn.Module):
    """Encoder and decoder; `forward` returns the reconstruction and the posterior."""

    def __init__(self, config: AutoencoderModelConfig):
        super().__init__()
        self.config = config
        widths = [config.channels * m for m in config.channel_mults]
        groups = config.norm_groups
        strides = config.strides()
        encoder: list[nn.Module] = [nn.Conv2d(1, widths[0], 3, padding=1)]
        width = widths[0]
        for level, stride in enumerate(strides):
            for _ in range(config.num_res_blocks):
                encoder.append(_Block(width, widths[level], groups))
                width = widths[level]
            encoder.append(
                nn.Conv2d(width, widths[level + 1] if level + 1 < len(widths) else width, 3, stride=stride, padding=1)
            )
            width = widths[level + 1] if level + 1 < len(widths) else width
        encoder += [
            _Block(width, width, groups),
            nn.GroupNorm(groups, width),
            nn.SiLU(),
            nn.Conv2d(width, 2 * config.latent_channels, 3, padding=1),
        ]
        self.encoder = nn.Sequential(*encoder)
        decoder: list[nn.Module] = [
            nn.Conv2d(config.latent_channels, width, 3, padding=1),
            _Block(width, width, groups),
        ]
        for level in reversed(range(len(strides))):
            decoder += [
                nn.Upsample(scale_factor=strides[level], mode="nearest"),
                nn.Conv2d(width, widths[level], 3, padding=1),
            ]
            width = widths[level]
            for _ in range(config.num_res_blocks):
                decoder.append(_Block(width, width, groups))
        decoder += [nn.GroupNorm(groups, width), nn.SiLU(), nn.Conv2d(width, 1, 3, padding=1)]
        self.decoder = nn.Sequential(*decoder)
        # running variance of the sampled latents over the training data (kept by the training
        # task): the checkpoint's latent_scale is 1 / sqrt of it, so scaled latents have unit variance
        self.register_buffer("latent_var", torch.ones(()))

    @torch.no_grad()
    def track_latent_var(self, latent: torch.Tensor, step: int) -> None:
        decay = min(0.99, (1 + step) / (10 + step))
        self.latent_var.lerp_(latent.detach().float().var(), 1 - decay)

    def latent_scale(self) -> float:
        return float(self.latent_var.clamp_min(1e-8).rsqrt())

    def check_shape(self, mel: torch.Tensor) -> None:
        factors = (self.config.freq_down, self.config.time_down)
        if mel.dim() != 4 or mel.shape[1] != 1 or mel.shape[2] % factors[0] or mel.shape[3] % factors[1]:
            raise ValueError(
                f"mel of shape {list(mel.shape)}: expected [batch, 1, bands, frames] with bands a multiple of "
                f"{factors[0]} and frames a multiple of {factors[1]} (Autoencoder.encode pads the frames)"
            )

    def posterior(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of the latent, each `[batch, latent_channels, bands/f, frames/t]`."""
        self.check_shape(mel)
        mean, logvar = self.encoder(mel).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.decoder(latent)

    def forward(self, mel: torch.Tensor, generator: torch.Generator | None = None):
        mean, logvar = self.posterior(mel)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        latent = mean + torch.exp(0.5 * logvar) * noise
        return self.decode(latent), mean, logvar, latent


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)), averaged over elements."""
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).mean()
