"""Distillation objectives: a student learns in one network call what its teacher does in several.

Both are plain functions of sampler-level models `model(x_θ, θ, cond) -> v` (see `samplers`),
like the v-objective, so they are checked on exact Gaussian teachers before they touch audio.

- `guidance_loss` (Meng et al. 2023, "On Distillation of Guided Diffusion Models", stage one):
  the student takes the guidance scale w as the condition `GUIDANCE` and reproduces the teacher's
  guided prediction v_u + w (v_c − v_u) in one call instead of two.
- `progressive_loss` (Salimans and Ho 2022, "Progressive Distillation"): one student DDIM step
  from t to t − 1/N reproduces two teacher DDIM steps; the student samples with N steps where the
  teacher needed 2N. The target is the x̃ that makes one DDIM step land where the two did, turned
  into a v target: the v error is the paper's "SNR + 1" weighting of the x error.
- `consistency_loss` (Song et al. 2023, "Consistency Models", consistency distillation): on a
  grid of N intervals, one teacher DDIM step from t_{n+1} to t_n follows the probability-flow ODE,
  and the student's x̂0 at t_{n+1} must equal its own (no gradient) x̂0 at t_n, so every point of a
  trajectory maps to the trajectory's end. The v-parameterisation meets the boundary condition
  f(x, 0) = x exactly (x̂0 = α x − σ v, σ = 0 at t = 0). The target network is the student itself
  without gradient, as in improved consistency training (Song and Dhariwal 2023), not an EMA.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from audiodiff.diffusion.objective import _expand, alpha_sigma, angle_from_t, noised, predict_x0_eps

__all__ = ["GUIDANCE", "consistency_loss", "guidance_loss", "progressive_loss"]

GUIDANCE = "guidance_scale"  # the condition a guidance-distilled student reads its scale from

Model = Callable[[torch.Tensor, torch.Tensor, dict], torch.Tensor]


def _noisy(x: torch.Tensor, theta: torch.Tensor, generator) -> torch.Tensor:
    noise = torch.randn(x.shape, generator=generator, device="cpu").to(x.device, x.dtype)
    return noised(x, theta, noise)


def guidance_loss(
    student: Model,
    teacher: Model,
    x: torch.Tensor,
    cond: dict,
    guidance_range: tuple[float, float],
    shift: float = 1.0,
    generator: torch.Generator | None = None,
    uncond: dict | None = None,
) -> torch.Tensor:
    """MSE between the student's v at a random level and scale w ~ U[guidance_range] and the
    teacher's guided v at the same point. `uncond` is what guidance compares against (all null)."""
    batch = x.shape[0]
    t = torch.rand(batch, generator=generator, device="cpu").to(x.device)
    low, high = guidance_range
    scale = (low + (high - low) * torch.rand(batch, generator=generator, device="cpu")).to(x.device)
    theta = angle_from_t(t, shift).to(x.dtype)
    x_t = _noisy(x, theta, generator)
    with torch.no_grad():
        v_cond, v_uncond = teacher(x_t, theta, cond), teacher(x_t, theta, uncond or {})
        target = v_uncond + _expand(scale, x_t).to(x_t.dtype) * (v_cond - v_uncond)
    prediction = student(x_t, theta, {**cond, GUIDANCE: scale})
    return F.mse_loss(prediction.float(), target.float())


def _ddim_step(model: Model, z: torch.Tensor, theta_t: torch.Tensor, theta_s: torch.Tensor, cond: dict) -> torch.Tensor:
    """One deterministic DDIM step from θ_t to θ_s (per item)."""
    x0, eps = predict_x0_eps(z, theta_t, model(z, theta_t, cond))
    alpha_s, sigma_s = alpha_sigma(theta_s)
    return _expand(alpha_s, z) * x0 + _expand(sigma_s, z) * eps


def progressive_loss(
    student: Model,
    teacher: Model,
    x: torch.Tensor,
    cond: dict,
    student_steps: int,
    shift: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """MSE in v between the student's one step t -> t − 1/N and the teacher's two steps of half
    the size, on the student's sampling grid t_i = i/N (`angles_for_steps(N)`)."""
    batch = x.shape[0]
    index = torch.randint(1, student_steps + 1, (batch,), generator=generator, device="cpu").to(x.device)
    t = index.to(torch.float64) / student_steps
    theta_t, theta_mid, theta_s = (angle_from_t(t - k * 0.5 / student_steps, shift).to(x.dtype) for k in (0, 1, 2))
    z_t = _noisy(x, theta_t, generator)
    with torch.no_grad():
        z_s = _ddim_step(teacher, _ddim_step(teacher, z_t, theta_t, theta_mid, cond), theta_mid, theta_s, cond)
        alpha_t, sigma_t = (_expand(v, z_t) for v in alpha_sigma(theta_t))
        alpha_s, sigma_s = (_expand(v, z_t) for v in alpha_sigma(theta_s))
        ratio = sigma_s / sigma_t
        x_target = (z_s - ratio * z_t) / (alpha_s - ratio * alpha_t)  # one DDIM step from z_t with this x lands on z_s
        eps_target = (z_t - alpha_t * x_target) / sigma_t
        v_target = alpha_t * eps_target - sigma_t * x_target
    return F.mse_loss(student(z_t, theta_t, cond).float(), v_target.float())


def consistency_loss(
    student: Model,
    teacher: Model,
    x: torch.Tensor,
    cond: dict,
    intervals: int,
    shift: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """MSE in x between the student's x̂0 at t_{n+1} and its own x̂0 (no gradient) one teacher DDIM
    step later at t_n, on the grid t_n = n / intervals (n uniform over the intervals)."""
    if intervals < 1:
        raise ValueError(f"intervals={intervals}: the consistency grid needs at least one interval")
    batch = x.shape[0]
    index = torch.randint(0, intervals, (batch,), generator=generator, device="cpu").to(x.device)
    t_high = (index + 1).to(torch.float64) / intervals
    theta_high, theta_low = (angle_from_t(t, shift).to(x.dtype) for t in (t_high, t_high - 1.0 / intervals))
    z_high = _noisy(x, theta_high, generator)
    with torch.no_grad():
        z_low = _ddim_step(teacher, z_high, theta_high, theta_low, cond)
        x_target, _ = predict_x0_eps(z_low, theta_low, student(z_low, theta_low, cond))
        x_target = torch.where(_expand(theta_low == 0, z_low), z_low, x_target)  # f(x, 0) = x, whatever v says
    x_student, _ = predict_x0_eps(z_high, theta_high, student(z_high, theta_high, cond))
    return F.mse_loss(x_student.float(), x_target.float())
