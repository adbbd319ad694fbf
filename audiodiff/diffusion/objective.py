"""v-diffusion: continuous noise levels, the v-objective and the noise-level schedule.

The noise level is an angle θ in [0, π/2]: x_θ = cos θ · x + sin θ · ε, so α = cos θ, σ = sin θ and
the velocity v = α ε − σ x is exactly dx_θ/dθ. Training draws t ~ U[0, 1] and maps it to θ with
an optional log-SNR shift (θ = atan(shift · tan(π t / 2)); shift > 1 spends more time at high
noise, which longer inputs need). The network sees the normalised angle 2θ/π in [0, 1].
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "alpha_sigma",
    "angle_from_t",
    "angles_for_steps",
    "noised",
    "predict_x0_eps",
    "v_loss",
    "v_target",
]

HALF_PI = math.pi / 2


def angle_from_t(t: torch.Tensor, shift: float = 1.0) -> torch.Tensor:
    """t in [0, 1] -> θ in [0, π/2], with the log-SNR shifted by −2 log(shift)."""
    if shift == 1.0:
        return t * HALF_PI
    theta = torch.atan(shift * torch.tan(t * HALF_PI))
    return torch.where(t >= 1.0, torch.full_like(theta, HALF_PI), theta)


def alpha_sigma(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(α, σ) = (cos θ, sin θ), exact at the ends (α = 0 at θ = π/2)."""
    alpha = torch.where(theta >= HALF_PI, torch.zeros_like(theta), torch.cos(theta))
    return alpha, torch.sin(theta)


def _expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def noised(x: torch.Tensor, theta: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """x_θ = α x + σ ε for per-item angles `[batch]`."""
    alpha, sigma = alpha_sigma(theta)
    return _expand(alpha, x) * x + _expand(sigma, x) * noise


def v_target(x: torch.Tensor, theta: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """v = α ε − σ x."""
    alpha, sigma = alpha_sigma(theta)
    return _expand(alpha, x) * noise - _expand(sigma, x) * x


def predict_x0_eps(x_t: torch.Tensor, theta: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Recover (x, ε) from x_θ and v: x = α x_θ − σ v, ε = σ x_θ + α v."""
    alpha, sigma = alpha_sigma(theta)
    alpha, sigma = _expand(alpha, x_t), _expand(sigma, x_t)
    return alpha * x_t - sigma * v, sigma * x_t + alpha * v


def v_loss(
    model: Callable[[torch.Tensor, torch.Tensor, dict], torch.Tensor],
    x: torch.Tensor,
    cond: dict | None = None,
    shift: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean squared error between the model's v and the true v at a random noise level.

    `model(x_t, t_net, cond)` takes the normalised angle t_net = 2θ/π in [0, 1].
    """
    batch = x.shape[0]
    t = torch.rand(batch, generator=generator, device="cpu").to(x.device)
    noise = torch.randn(x.shape, generator=generator, device="cpu").to(x.device, x.dtype)
    theta = angle_from_t(t, shift)
    prediction = model(noised(x, theta, noise), theta / HALF_PI, cond or {})
    return F.mse_loss(prediction.float(), v_target(x, theta, noise).float())


def angles_for_steps(num_steps: int, shift: float = 1.0, t_start: float = 1.0, t_end: float = 0.0) -> torch.Tensor:
    """`num_steps + 1` decreasing angles from t_start to t_end (uniform in t), in float64."""
    if num_steps < 1:
        raise ValueError(f"num_steps={num_steps}: need at least 1 sampling step")
    t = torch.linspace(t_start, t_end, num_steps + 1, dtype=torch.float64)
    return angle_from_t(t, shift)
