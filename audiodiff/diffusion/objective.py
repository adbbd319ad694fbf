"""v-diffusion: continuous noise levels, the v-objective and the noise-level schedule.

The noise level is an angle θ in [0, π/2]: x_θ = cos θ · x + sin θ · ε, so α = cos θ, σ = sin θ and
the velocity v = α ε − σ x is exactly dx_θ/dθ. Training draws t ~ U[0, 1] and maps it to θ with
an optional log-SNR shift (θ = atan(shift · tan(π t / 2)); shift > 1 spends more time at high
noise, which longer inputs need). The network sees the normalised angle 2θ/π in [0, 1].

`objective: flow` trains a rectified flow instead (Liu et al. 2022; Lipman et al. 2022): the
straight path x_t = (1 − t) x + t ε with target velocity u = ε − x, and the network sees t.
Both predict (x, ε) from a noisy input, which is all the samplers use: `flow_as_v` turns a flow
network into a v-model on the angle scale, since x_θ / (cos θ + sin θ) is the flow state at
t = sin θ / (cos θ + sin θ).
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "alpha_sigma",
    "angle_from_t",
    "angles_for_steps",
    "noised",
    "predict_x0_eps",
    "flow_as_v",
    "flow_loss",
    "OBJECTIVES",
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


def _draw(x: torch.Tensor, shift: float, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A random noise angle per item (t ~ U[0, 1], shifted) and Gaussian noise like x."""
    t = torch.rand(x.shape[0], generator=generator, device="cpu").to(x.device)
    noise = torch.randn(x.shape, generator=generator, device="cpu").to(x.device, x.dtype)
    return angle_from_t(t, shift), noise


def v_loss(
    model: Callable, x: torch.Tensor, cond: dict | None = None, shift: float = 1.0, generator=None
) -> torch.Tensor:
    """Mean squared error between the model's v and the true v at a random noise level.
    `model(x_t, t_net, cond)` takes the normalised angle t_net = 2θ/π in [0, 1]."""
    theta, noise = _draw(x, shift, generator)
    prediction = model(noised(x, theta, noise), theta / HALF_PI, cond or {})
    return F.mse_loss(prediction.float(), v_target(x, theta, noise).float())


def flow_loss(
    model: Callable, x: torch.Tensor, cond: dict | None = None, shift: float = 1.0, generator=None
) -> torch.Tensor:
    """Rectified flow: mean squared error of the predicted velocity u = ε − x on the straight
    path x_t = (1 − t) x + t ε, at the flow time t of a v-objective noise level (same shift)."""
    theta, noise = _draw(x, shift, generator)
    t = torch.sin(theta) / (torch.cos(theta) + torch.sin(theta))
    prediction = model(_expand(1 - t, x) * x + _expand(t, x) * noise, t, cond or {})
    return F.mse_loss(prediction.float(), (noise - x).float())


def flow_as_v(net: Callable[[torch.Tensor, torch.Tensor, dict], torch.Tensor]) -> Callable:
    """A flow network `net(x_t, t, cond) -> u` as a sampler-level model `(x_θ, θ, cond) -> v`."""

    def model(x: torch.Tensor, theta: torch.Tensor, cond: dict) -> torch.Tensor:
        alpha, sigma = alpha_sigma(theta.to(x.dtype))
        scale = alpha + sigma
        t = sigma / scale
        x_flow = x / _expand(scale, x)
        u = net(x_flow, t, cond).to(x.dtype)
        x0, eps = x_flow - _expand(t, x) * u, x_flow + _expand(1 - t, x) * u
        return _expand(alpha, x) * eps - _expand(sigma, x) * x0

    return model


def v_as_model(net: Callable[[torch.Tensor, torch.Tensor, dict], torch.Tensor]) -> Callable:
    """A v network that takes the normalised angle 2θ/π (the U-Net) as a sampler-level model."""
    return lambda x, theta, cond: net(x, theta / HALF_PI, cond)


class Objective(typing.NamedTuple):
    loss: Callable  # (net, x, cond, shift, generator) -> scalar loss
    as_model: Callable  # net -> sampler-level model (x_θ, θ, cond) -> v


OBJECTIVES = {"v": Objective(v_loss, v_as_model), "flow": Objective(flow_loss, flow_as_v)}


def angles_for_steps(num_steps: int, shift: float = 1.0, t_start: float = 1.0, t_end: float = 0.0) -> torch.Tensor:
    """`num_steps + 1` decreasing angles from t_start to t_end (uniform in t), in float64."""
    if num_steps < 1:
        raise ValueError(f"num_steps={num_steps}: need at least 1 sampling step")
    t = torch.linspace(t_start, t_end, num_steps + 1, dtype=torch.float64)
    return angle_from_t(t, shift)
