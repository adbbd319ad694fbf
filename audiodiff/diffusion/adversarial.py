"""Adversarial post-training of few-step students: a discriminator on real clips against the
student's own few-step samples, plus a distillation regulariser that keeps the samples faithful to
the teacher (and so to the conditions).

- The student samples with `steps` DDIM steps from pure noise, with gradients (one or two network
  calls), as it will at inference.
- Relativistic pairing (as in Stable Audio Open Small's ARC post-training, Novack et al. 2025, and
  relativistic GANs, Jolicoeur-Martineau 2019): the discriminator scores a real clip against a
  generated one, D loss softplus(D(fake) - D(real)), student loss softplus(D(real) - D(fake)).
- The regulariser is adversarial diffusion distillation's (Sauer et al. 2023): the student's
  sample is noised to a random level, the teacher (guided at the recipe's scale) denoises it in one
  call, and the sample is pulled towards that (no gradient through the teacher). Where the teacher's
  trajectories split between modes, a student trained on regression alone lands between them; the
  adversarial term moves it onto one of them (tests: a two-mode mixture with an exact teacher).

Models are sampler-level `model(x_θ, θ, cond) -> v` as in `samplers`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from audiodiff.diffusion.objective import HALF_PI, angles_for_steps, predict_x0_eps

__all__ = ["SpaceDiscriminator", "discriminator_loss", "generator_loss", "student_sample"]

Model = Callable[[torch.Tensor, torch.Tensor, dict], torch.Tensor]


def student_sample(student: Model, noise: torch.Tensor, cond: dict, steps: int = 1, shift: float = 1.0) -> torch.Tensor:
    """The student's DDIM sample from `noise` in `steps` calls, with gradients."""
    angles = [float(a) for a in angles_for_steps(steps, shift)]
    x = noise
    for index in range(steps):
        theta = torch.full((x.shape[0],), angles[index], device=x.device, dtype=torch.float32)
        v = student(x, theta, cond).to(x.dtype)
        if angles[index] >= HALF_PI - 1e-9:
            x0, eps = -v, x
        else:
            x0, eps = predict_x0_eps(x, theta.to(x.dtype), v)
        low = angles[index + 1]
        x = math.cos(low) * x0 + math.sin(low) * eps if low > 0 else x0
    return x


def discriminator_loss(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Relativistic pairing: each real clip against a generated one (fake detached)."""
    return F.softplus(discriminator(fake.detach()) - discriminator(real)).mean()


def generator_loss(
    discriminator: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    teacher: Model | None,
    cond: dict,
    distill_weight: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict]:
    """The student's loss: relativistic adversarial term plus `distill_weight` x the teacher
    regulariser (0 turns it off; `teacher` None too). Returns (loss, parts)."""
    adversarial = F.softplus(discriminator(real) - discriminator(fake)).mean()
    parts = {"adversarial": float(adversarial.detach())}
    loss = adversarial
    if teacher is not None and distill_weight > 0:
        batch = fake.shape[0]
        theta = torch.rand(batch, generator=generator).to(fake.device) * (HALF_PI - 0.02) + 0.01
        noise = torch.randn(fake.shape, generator=generator).to(fake)
        shape = (-1,) + (1,) * (fake.dim() - 1)
        noised = torch.cos(theta).view(shape) * fake.detach() + torch.sin(theta).view(shape) * noise
        with torch.no_grad():
            v = teacher(noised, theta, cond)
            target, _ = predict_x0_eps(noised, theta.to(noised.dtype), v.to(noised.dtype))
        distill = F.mse_loss(fake.float(), target.float())
        parts["distill"] = float(distill.detach())
        loss = loss + distill_weight * distill
    return loss, parts


class SpaceDiscriminator(nn.Module):
    """A small convolutional critic on the model's own space (`dims` 1: waveform or latent rows;
    2: mels or latents): strided convolutions, then one score per clip `[batch]`."""

    def __init__(self, dims: int, in_channels: int, width: int = 32, depth: int = 4):
        super().__init__()
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        layers: list[nn.Module] = []
        channels = in_channels
        for level in range(depth):
            out = width * 2 ** min(level, 3)
            layers += [conv(channels, out, 3, stride=2, padding=1), nn.SiLU()]  # any input size halves
            channels = out
        layers.append(conv(channels, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float()).flatten(1).mean(1)
