"""Likelihood of data under a diffusion model, from the probability-flow ODE (Song et al. 2021,
"Score-based generative modeling through SDEs", section 4.3 and appendix D).

On the angle scale x_θ = cos θ · x + sin θ · ε the probability-flow ODE is dx/dθ = v̂(x_θ, θ) (the
model's velocity; DDIM's ODE). Along it the log-density changes by the divergence of the field:
d log p_θ(x_θ)/dθ = −div v̂. Integrating a clip forward from θ_min (almost clean) to π/2 (where
x_θ is exactly N(0, I)) gives

    log p_θmin(x) = log N(x_π/2; 0, I) + ∫ div v̂(x_θ, θ) dθ.

The divergence is estimated with Hutchinson's trick, div v̂ = E[zᵀ (∂v̂/∂x) z] for Rademacher probes
z (one vector-Jacobian product per probe), the probes fixed along each trajectory (as FFJORD does);
the joint ODE (clip and divergence integral) is solved by classic fourth-order Runge-Kutta on a
grid uniform in the model's training time t. The
estimate is unbiased up to the ODE discretisation, and its spread over probes and clips gives the
standard error. The result is in nats and in bits per dimension of the model's own space (the
normalised log-mel, or the waveform), where data are continuous, so values below zero are normal:
compare models and clips in the same space, not with discrete-data bits/dim.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from audiodiff.diffusion.objective import HALF_PI, angle_from_t

__all__ = ["gaussian_log_likelihood", "gaussian_v_model", "ode_log_likelihood"]

Model = Callable[[torch.Tensor, torch.Tensor, dict], torch.Tensor]


def _field_and_divergence(model: Model, x: torch.Tensor, theta: float, cond: dict, probes: torch.Tensor):
    """(v̂(x, θ), the Hutchinson divergence estimate per item averaged over `probes` [p, *x.shape])."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        angle = torch.full((x.shape[0],), theta, dtype=torch.float32, device=x.device)
        v = model(x, angle, cond).to(x.dtype)
        divergence = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
        for index, probe in enumerate(probes):
            (gradient,) = torch.autograd.grad(v, x, probe, retain_graph=index + 1 < len(probes))
            divergence += (gradient * probe).flatten(1).sum(1).double()
    return v.detach(), divergence / len(probes)


def ode_log_likelihood(
    model: Model,
    x: torch.Tensor,
    cond: dict | None = None,
    steps: int = 12,
    probes: int = 1,
    t_min: float = 1e-3,
    shift: float = 1.0,
    generator: torch.Generator | None = None,
    callback: Callable[[int, int], None] | None = None,
) -> dict[str, torch.Tensor]:
    """Log-likelihood of clean data `x` `[batch, ...]` under a sampler-level model (x_θ, θ, cond) -> v.

    Integrates the probability-flow ODE from t_min to 1 in `steps` Runge-Kutta steps (4 model calls,
    each with one backward pass per probe), with `probes` Rademacher vectors per clip. Returns per item:
    `log_likelihood` (nats, of x as a sample at θ_min = the angle of t_min), `nll_bits_per_dim`,
    `prior` (log N(x_π/2; 0, I)) and `divergence` (the integral); float64 tensors `[batch]`.
    """
    if steps < 1 or probes < 1:
        raise ValueError(f"steps={steps} and probes={probes} must be at least 1")
    if not 0.0 < t_min < 1.0:
        raise ValueError(f"t_min={t_min} must lie in (0, 1): the ODE starts just above clean data")
    cond = cond or {}
    t = torch.linspace(t_min, 1.0, steps + 1, dtype=torch.float64)
    angles = [float(a) for a in angle_from_t(t, shift)]
    angles[-1] = HALF_PI
    shape = (probes, *x.shape)
    z = (torch.randint(0, 2, shape, generator=generator, device="cpu") * 2 - 1).to(x.device, x.dtype)
    state = x.detach().clone()
    integral = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    for i in range(steps):  # classic Runge-Kutta on the joint ODE (x, ∫ div)
        a, b = angles[i], angles[i + 1]
        h, middle = b - a, (a + b) / 2
        k1, d1 = _field_and_divergence(model, state, a, cond, z)
        k2, d2 = _field_and_divergence(model, state + h / 2 * k1, middle, cond, z)
        k3, d3 = _field_and_divergence(model, state + h / 2 * k2, middle, cond, z)
        k4, d4 = _field_and_divergence(model, state + h * k3, b, cond, z)
        state = state + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        integral += h / 6 * (d1 + 2 * d2 + 2 * d3 + d4)
        if callback is not None:
            callback(i + 1, steps)
    dims = x[0].numel()
    prior = -0.5 * (state.double().flatten(1) ** 2).sum(1) - 0.5 * dims * math.log(2 * math.pi)
    log_likelihood = prior + integral
    return {
        "log_likelihood": log_likelihood,
        "nll_bits_per_dim": -log_likelihood / (dims * math.log(2)),
        "prior": prior,
        "divergence": integral,
    }


def gaussian_log_likelihood(
    x: torch.Tensor, mean: torch.Tensor | float, variance: torch.Tensor | float
) -> torch.Tensor:
    """log N(x; mean, variance · I) per item of `[batch, ...]`, in float64: the closed form for
    isotropic Gaussian data (full covariances: torch.distributions.MultivariateNormal)."""
    x = x.double().flatten(1)
    mean = torch.as_tensor(mean, dtype=torch.float64).flatten()
    variance = torch.as_tensor(variance, dtype=torch.float64).flatten()
    return (-0.5 * ((x - mean) ** 2 / variance + torch.log(2 * math.pi * variance))).sum(1)


def gaussian_v_model(mean: torch.Tensor, covariance: torch.Tensor) -> Model:
    """The exact v-predictor E[v | x_θ] of data N(mean, covariance) `[dim]`, `[dim, dim]`: a
    model with a known answer, for checking likelihoods and samplers. With Σ_θ = cos²θ Σ + sin²θ I
    and r = Σ_θ⁻¹ (x_θ − cos θ μ): E[x | x_θ] = μ + cos θ Σ r, E[ε | x_θ] = sin θ r."""
    mean, covariance = mean.double(), covariance.double()
    eye = torch.eye(len(mean), dtype=torch.float64)

    def model(x: torch.Tensor, theta: torch.Tensor, cond: dict) -> torch.Tensor:
        c, s = math.cos(float(theta[0])), math.sin(float(theta[0]))
        residual = torch.linalg.solve(c**2 * covariance + s**2 * eye, (x.double() - c * mean).T).T
        return (c * (s * residual) - s * (mean + c * residual @ covariance)).to(x.dtype)

    return model
