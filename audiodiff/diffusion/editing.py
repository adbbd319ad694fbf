"""Editing in model space (mel or waveform): variation, inpainting (RePaint-style replacement
with resampling), continuation beyond one window, seamless loops and noise interpolation.

These are plain functions of a sampler-level `model(x, theta, cond) -> v` (see `samplers`), like
the samplers themselves; `Pipeline` turns audio into model space and back around them.
Masks are 1 where content is generated and 0 where it is kept, broadcastable to `x`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from audiodiff.diffusion.objective import angles_for_steps
from audiodiff.diffusion.samplers import _ab, _report, get_sampler

__all__ = ["inpaint", "slerp", "vary"]

Noise = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def vary(
    model,
    x: torch.Tensor,
    strength: float,
    steps: int,
    cond: dict | None = None,
    noise: Noise | None = None,
    sampler: str = "dpmpp_2m",
    shift: float = 1.0,
    callback=None,
) -> torch.Tensor:
    """Noise `x` to level t = strength, then sample back to 0 (SDEdit). strength 0 returns x."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength={strength}: must be between 0 (return the input) and 1 (ignore it)")
    if strength == 0.0:
        return x.clone()
    noise = noise or torch.randn_like
    angles = angles_for_steps(max(1, round(steps * strength)), shift, t_start=strength)
    alpha, sigma = _ab(float(angles[0]))
    x_t = alpha * x + sigma * noise(x)
    return get_sampler(sampler)(model, x_t, angles, cond or {}, callback, noise)


@torch.no_grad()
def inpaint(
    model,
    known: torch.Tensor,
    mask: torch.Tensor,
    steps: int,
    cond: dict | None = None,
    noise: Noise | None = None,
    resample: int = 2,
    shift: float = 1.0,
    callback=None,
    sampler: str = "ddpm",
) -> torch.Tensor:
    """Regenerate where `mask` is 1 and keep `known` where it is 0 (exactly, at the end).

    Each step is one step of `sampler` from t to s (ancestral DDPM by default); the kept region
    is then replaced by the known content noised to level s. With `resample` > 1 the result is
    noised back to t and the step redone, so the generated part can agree with the kept part
    across the seam (RePaint, Lugmayr et al. 2022).
    """
    if resample < 1:
        raise ValueError(f"resample={resample}: must be at least 1")
    noise = noise or torch.randn_like
    step = get_sampler(sampler)
    mask = mask.to(known.dtype).expand_as(known)
    angles = [float(a) for a in angles_for_steps(steps, shift)]
    x = noise(known)
    total = len(angles) - 1
    for i in range(total):
        a_t, s_t = _ab(angles[i])
        a_s, s_s = _ab(angles[i + 1])
        for r in range(resample):
            seen: dict = {}
            generated = step(model, x, angles[i : i + 2], cond or {}, seen.update, noise)
            kept = a_s * known + s_s * noise(known)
            x_s = mask * generated + (1 - mask) * kept
            if r == resample - 1 or i == total - 1:
                x = x_s
                break
            # back from s to t: x_t = (α_t/α_s) x_s + sqrt(σ_t² − (α_t/α_s)² σ_s²) z
            ratio = a_t / a_s
            x = ratio * x_s + math.sqrt(max(0.0, s_t**2 - (ratio * s_s) ** 2)) * noise(x_s)
        _report(callback, i, total, x, seen["denoised"], angles[i + 1])
    return mask * x + (1 - mask) * known


def slerp(a: torch.Tensor, b: torch.Tensor, weight: float) -> torch.Tensor:
    """Spherical interpolation between two noise tensors (keeps their norm Gaussian-like)."""
    flat_a, flat_b = a.flatten().double(), b.flatten().double()
    cos = torch.dot(flat_a, flat_b) / (flat_a.norm() * flat_b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:
        return (1 - weight) * a + weight * b
    s = torch.sin(omega)
    return ((torch.sin((1 - weight) * omega) / s) * a.double() + (torch.sin(weight * omega) / s) * b.double()).to(
        a.dtype
    )
