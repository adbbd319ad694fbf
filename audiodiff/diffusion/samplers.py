"""Samplers: plain functions with one signature, plus the classifier-free guidance wrapper.

    sampler(model, x, angles, cond=None, callback=None, noise=None, **options) -> x0

`model(x, theta, cond) -> v` works on noise angles θ (`[batch]`, see `objective`); `x` starts as
pure noise at `angles[0]` (π/2 for a full run); `angles` decreases to 0; `callback` receives a dict
(step, total, x, denoised, theta) after every step; `noise(like)` draws fresh Gaussian noise for
stochastic samplers (the pipeline passes per-item generators so a seed gives the same audio at
any batch size). Adding a sampler means adding one function to `SAMPLERS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from audiodiff.diffusion.objective import HALF_PI, predict_x0_eps
from audiodiff.models.conditioning import join

__all__ = ["SAMPLERS", "get_sampler", "guided", "consistency", "ddim", "euler", "heun", "dpmpp_2m"]

Model = Callable[[torch.Tensor, torch.Tensor, dict], torch.Tensor]


def _ab(theta: float) -> tuple[float, float]:
    """(α, σ) for a scalar angle, exact at both ends."""
    if theta >= HALF_PI - 1e-12:
        return 0.0, 1.0
    if theta <= 0.0:
        return 1.0, 0.0
    return math.cos(theta), math.sin(theta)


def _denoise(model: Model, x: torch.Tensor, theta: float, cond) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(v, x0, ε) predicted at angle θ."""
    angle = torch.full((x.shape[0],), theta, device=x.device, dtype=torch.float32)
    v = model(x, angle, cond).to(x.dtype)
    x0, eps = predict_x0_eps(x, angle.to(x.dtype), v)
    if theta >= HALF_PI - 1e-12:
        x0, eps = -v, x  # α = 0: x_θ is pure noise and v = −x
    return v, x0, eps


def _report(callback, step, total, x, denoised, theta):
    if callback is not None:
        callback({"step": step, "total": total, "x": x, "denoised": denoised, "theta": theta})


def _angles(angles) -> list[float]:
    return [float(a) for a in angles]


@torch.no_grad()
def ddim(model: Model, x, angles, cond=None, callback=None, noise=None, eta: float = 0.0):
    """DDIM: jump to the predicted x0 and re-noise to the next level; eta > 0 adds fresh noise
    (eta = 1 is ancestral DDPM sampling)."""
    angles = _angles(angles)
    total = len(angles) - 1
    for i in range(total):
        a_t, s_t = _ab(angles[i])
        a_s, s_s = _ab(angles[i + 1])
        _, x0, eps = _denoise(model, x, angles[i], cond)
        c = 0.0
        if eta > 0 and s_t > 0 and a_s > 0:
            c = eta * (s_s / s_t) * math.sqrt(max(0.0, 1 - (a_t / a_s) ** 2))
        x = a_s * x0 + math.sqrt(max(0.0, s_s**2 - c**2)) * eps
        if c > 0:
            x = x + c * (noise(x) if noise is not None else torch.randn_like(x))
        _report(callback, i, total, x, x0, angles[i + 1])
    return x


@torch.no_grad()
def euler(model: Model, x, angles, cond=None, callback=None, noise=None):
    """Euler steps of the probability-flow ODE dx/dθ = v."""
    angles = _angles(angles)
    total = len(angles) - 1
    for i in range(total):
        v, x0, _ = _denoise(model, x, angles[i], cond)
        x = x + (angles[i + 1] - angles[i]) * v
        _report(callback, i, total, x, x0, angles[i + 1])
    return x


@torch.no_grad()
def heun(model: Model, x, angles, cond=None, callback=None, noise=None):
    """Heun's second-order method on dx/dθ = v (Euler on the last step, where θ = 0)."""
    angles = _angles(angles)
    total = len(angles) - 1
    for i in range(total):
        h = angles[i + 1] - angles[i]
        v, x0, _ = _denoise(model, x, angles[i], cond)
        x_next = x + h * v
        if angles[i + 1] > 0:
            v_next, _, _ = _denoise(model, x_next, angles[i + 1], cond)
            x_next = x + h * 0.5 * (v + v_next)
        x = x_next
        _report(callback, i, total, x, x0, angles[i + 1])
    return x


@torch.no_grad()
def dpmpp_2m(model: Model, x, angles, cond=None, callback=None, noise=None):
    """DPM-Solver++(2M): multistep second order in λ = log(α/σ), on x0 predictions."""
    angles = _angles(angles)
    total = len(angles) - 1

    def lam(theta: float) -> float:
        a, s = _ab(theta)
        return math.inf if s == 0 else (-math.inf if a == 0 else math.log(a / s))

    previous_x0, previous_h = None, None
    for i in range(total):
        a_t, s_t = _ab(angles[i])
        a_s, s_s = _ab(angles[i + 1])
        _, x0, _ = _denoise(model, x, angles[i], cond)
        h = lam(angles[i + 1]) - lam(angles[i])
        denoised = x0
        if previous_x0 is not None and math.isfinite(h) and math.isfinite(previous_h):
            r = previous_h / h
            denoised = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * previous_x0
        # x_s = (σ_s/σ_t) x_t + (α_s − σ_s α_t / σ_t) D; with σ_t = 1 at the start and σ_s = 0 at the end.
        x = (s_s / s_t) * x + (a_s - s_s * a_t / s_t) * denoised
        previous_x0, previous_h = x0, h
        _report(callback, i, total, x, x0, angles[i + 1])
    return x


def ddpm(model: Model, x, angles, cond=None, callback=None, noise=None):
    """Ancestral sampling: DDIM with eta = 1."""
    return ddim(model, x, angles, cond, callback, noise, eta=1.0)


@torch.no_grad()
def consistency(model: Model, x, angles, cond=None, callback=None, noise=None):
    """Multistep consistency sampling (Song et al. 2023): jump to the predicted x0, then noise it
    afresh to the next level; a consistency model's one step is already a sample."""
    angles = _angles(angles)
    total = len(angles) - 1
    for i in range(total):
        _, x0, _ = _denoise(model, x, angles[i], cond)
        a_s, s_s = _ab(angles[i + 1])
        x = a_s * x0 + (s_s * (noise(x0) if noise is not None else torch.randn_like(x0)) if s_s > 0 else 0.0)
        _report(callback, i, total, x, x0, angles[i + 1])
    return x


SAMPLERS: dict[str, Callable] = {
    "consistency": consistency,
    "ddim": ddim,
    "ddpm": ddpm,
    "euler": euler,
    "heun": heun,
    "dpmpp_2m": dpmpp_2m,
}


def get_sampler(name: str) -> Callable:
    try:
        return SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}") from None


def guided(
    model: Model,
    scale: float,
    uncond: dict | None = None,
    interval: tuple[float, float] = (0.0, 1.0),
    rest_scale: float = 1.0,
) -> Model:
    """Classifier-free guidance: v = v_u + scale · (v_c − v_u).

    `uncond` is the condition batch to guide away from (`{}`, all null, by default; a negative
    prompt or label otherwise). Guidance applies only while the normalised noise level 2θ/π lies
    inside `interval` (Kynkäänniemi et al. 2024, "Applying Guidance in a Limited Interval");
    outside it the conditional prediction is used. scale = 1 is plain conditional sampling and
    scale = 0 plain unconditional sampling. With `rest_scale` ≠ 1, `uncond` is guided towards in
    turn (composed guidance, as in Liu et al. 2022, "Compositional Visual Generation"):
    v = v_null + rest_scale · (v_u − v_null) + scale · (v_c − v_u), three predictions a step;
    `guide=` makes `uncond` the asked conditions it does not name. With `rest_scale` ≠ 1 the
    interval bounds the extra push alone: outside it every asked condition is guided at
    `rest_scale` (v_null + rest_scale · (v_c − v_null)); with `rest_scale` = 1 that is the
    conditional prediction, as for plain guidance.
    """
    uncond = uncond or {}
    low, high = interval
    composed = rest_scale != 1.0 and bool(uncond)  # with nothing to keep, v_u is v_null

    def model_fn(x, theta, cond):
        level = float(theta.flatten()[0]) / HALF_PI
        if not low - 1e-6 <= level <= high + 1e-6:
            return guided(model, rest_scale)(x, theta, cond)  # at 1: the conditional prediction
        if scale == 1.0 and not composed:
            return model(x, theta, cond)
        batch = x.shape[0]
        if composed:
            three = model(
                torch.cat([x, x, x]), torch.cat([theta, theta, theta]), join(join(cond, uncond, batch), {}, batch)
            )
            v_cond, v_rest, v_null = three[:batch], three[batch : 2 * batch], three[2 * batch :]
            return v_null + rest_scale * (v_rest - v_null) + scale * (v_cond - v_rest)
        if scale == 0.0:
            return model(x, theta, uncond)
        both = model(torch.cat([x, x]), torch.cat([theta, theta]), join(cond, uncond, batch))
        v_cond, v_uncond = both[:batch], both[batch:]
        return v_uncond + scale * (v_cond - v_uncond)

    return model_fn
