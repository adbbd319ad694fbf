"""Distillation objectives checked where the answer is known: Gaussian data, whose exact v is a
closed form, so the teacher is exact and the student's target can be computed without training."""

import copy
import math

import pytest
import torch
import torch.nn as nn

from audiodiff.diffusion.distill import GUIDANCE, consistency_loss, guidance_loss, progressive_loss
from audiodiff.diffusion.objective import alpha_sigma, angles_for_steps
from audiodiff.diffusion.samplers import get_sampler, guided

STD = 0.3
MEANS = {0: -0.5, 1: 0.8, -1: 0.2}  # label -> data mean; -1 (null) is the unconditional teacher


def exact_v(x, theta, mean, std=STD):
    """The exact v of data N(mean, std^2) in every dimension (mean may be per item)."""
    alpha, sigma = (v[:, None] for v in alpha_sigma(theta.double()))
    mean = torch.as_tensor(mean, dtype=torch.float64).reshape(-1, 1)
    x0 = mean + alpha * std**2 / (alpha**2 * std**2 + sigma**2) * (x - alpha * mean)
    return (alpha * x - x0) / sigma.clamp_min(1e-12)


def teacher(x, theta, cond):
    labels = (cond or {}).get("label", torch.full((x.shape[0],), -1))
    return exact_v(x, theta, torch.tensor([MEANS[int(k)] for k in labels]))


class LinearInX(nn.Module):
    """v = a(features) * x + b(features): the form of every exact Gaussian v, so a student of this
    form can match its target exactly and any error left is the method's."""

    def __init__(self, guidance: bool = False):
        super().__init__()
        self.guidance = guidance
        inputs = 3 + (3 if guidance else 0)
        self.net = nn.Sequential(
            nn.Linear(inputs, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 2)
        ).double()

    def forward(self, x, theta, cond):
        theta = theta.double()
        features = [theta, torch.sin(theta), torch.cos(theta)]
        if self.guidance:
            label = cond["label"].double()
            features += [label, 1 - label, cond[GUIDANCE].double() / 4]
        a, b = self.net(torch.stack(features, dim=-1)).unbind(-1)
        return a[:, None] * x + b[:, None]


def fit(student, loss_fn, steps, lr=3e-3, batch=512):
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        loss = loss_fn(batch, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return student


def test_guidance_student_reproduces_the_guided_teacher_in_one_call():
    torch.manual_seed(0)
    student = LinearInX(guidance=True)

    def loss_fn(batch, generator):
        labels = torch.randint(0, 2, (batch,), generator=generator)
        x = torch.tensor([MEANS[int(k)] for k in labels], dtype=torch.float64)[:, None] + STD * torch.randn(
            batch, 2, generator=generator, dtype=torch.float64
        )
        return guidance_loss(student, teacher, x, {"label": labels}, (0.0, 4.0), generator=generator)

    fit(student, loss_fn, 3000)
    generator = torch.Generator().manual_seed(1)
    labels = torch.tensor([0, 1] * 128)
    noise = torch.randn(256, 2, generator=generator, dtype=torch.float64)
    for scale in (1.0, 2.5):
        cond = {"label": labels}
        reference = get_sampler("ddim")(guided(teacher, scale), noise.clone(), angles_for_steps(8), cond)
        with torch.no_grad():
            student_cond = {**cond, GUIDANCE: torch.full((256,), scale, dtype=torch.float64)}
            calls = []

            def counted(x, theta, c):
                calls.append(x.shape[0])
                return student(x, theta, c)

            out = get_sampler("ddim")(counted, noise.clone(), angles_for_steps(8), student_cond)
        assert calls == [256] * 8  # one call per step: no separate unconditional pass
        spread = (reference[labels == 1].mean() - reference[labels == 0].mean()).abs()  # grows with the scale
        error = (out - reference).abs().mean()
        assert error < 0.02 * spread, f"scale {scale}: mean error {error:.4f}, classes {spread:.2f} apart"
    # the scale is an input: two scales give different samples, as the teacher's do
    assert not torch.allclose(
        out,
        get_sampler("ddim")(
            student, noise.clone(), angles_for_steps(8), {**cond, GUIDANCE: torch.ones(256, dtype=torch.float64)}
        ),
    )


def test_progressive_distillation_halves_the_steps_stage_by_stage_to_one():
    """Teacher: the exact model sampled with 4 DDIM steps. Two stages (4 -> 2 -> 1) must give a
    1-step student that lands where the 4-step teacher does; the exact model itself in one DDIM
    step collapses every sample onto the mean."""
    torch.manual_seed(0)

    def data(batch, generator):
        return MEANS[-1] + STD * torch.randn(batch, 2, generator=generator, dtype=torch.float64)

    stage_teacher = teacher
    student = LinearInX()
    for steps in (2, 1):
        frozen = stage_teacher
        student = fit(
            student,
            lambda batch, generator: progressive_loss(
                student, frozen, data(batch, generator), {}, steps, generator=generator
            ),
            1200,
        )
        stage_teacher = copy.deepcopy(student).requires_grad_(False)
    noise = torch.randn(512, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    reference = get_sampler("ddim")(teacher, noise.clone(), angles_for_steps(4))
    with torch.no_grad():
        one_step = get_sampler("ddim")(student, noise.clone(), angles_for_steps(1))
    naive = get_sampler("ddim")(teacher, noise.clone(), angles_for_steps(1))
    assert (one_step - reference).abs().mean() < 0.01
    assert (naive - reference).abs().mean() > 0.1
    assert abs(one_step.std().item() - reference.std().item()) < 0.01


@pytest.mark.parametrize("steps", [1, 3])
def test_progressive_target_is_the_teacher_itself_when_the_teacher_is_linear_in_time(steps):
    """For a point mass the DDIM ODE is exact in any number of steps, so two teacher steps and
    one student step agree: the exact model has zero progressive loss."""
    point = lambda x, theta, cond: exact_v(x, theta, 0.7, std=0.0)  # noqa: E731
    x = torch.full((64, 3), 0.7, dtype=torch.float64)
    loss = progressive_loss(point, point, x, {}, steps, generator=torch.Generator().manual_seed(0))
    assert loss.item() < 1e-12 * max(1, math.prod(x.shape))


@pytest.mark.slow  # 25 s; the consistency recipe's smoke test stays in the default run
def test_consistency_distillation_maps_every_level_to_the_end_of_its_trajectory():
    """The exact teacher's ODE, followed by DDIM over a grid of 16 intervals: the consistency
    student's one step lands where the teacher's 16 DDIM steps over that grid do, from noise and
    from halfway along the teacher's trajectory; two consistency-sampler steps keep the data's
    mean and no less spread; the teacher itself in one step collapses onto the mean."""
    torch.manual_seed(0)
    student = LinearInX()

    def loss_fn(batch, generator):
        x = MEANS[-1] + STD * torch.randn(batch, 2, generator=generator, dtype=torch.float64)
        return consistency_loss(student, teacher, x, {}, 16, generator=generator)

    fit(student, loss_fn, 3000)
    noise = torch.randn(512, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    grid = angles_for_steps(16)
    reference = get_sampler("ddim")(teacher, noise.clone(), grid)
    halfway = get_sampler("ddim")(teacher, noise.clone(), grid[:9])  # t = 1/2 on the teacher's path
    fresh = torch.Generator().manual_seed(4)
    with torch.no_grad():
        one_step = get_sampler("consistency")(student, noise.clone(), angles_for_steps(1))
        from_middle = get_sampler("consistency")(student, halfway, grid[[8, 16]])
        two_step = get_sampler("consistency")(
            student,
            noise.clone(),
            angles_for_steps(2),
            noise=lambda like: torch.randn(like.shape, generator=fresh, dtype=like.dtype),
        )
    naive = get_sampler("ddim")(teacher, noise.clone(), angles_for_steps(1))
    assert (one_step - reference).abs().mean() < 0.01
    assert (from_middle - reference).abs().mean() < 0.01
    assert (naive - reference).abs().mean() > 0.1
    assert abs(two_step.mean().item() - MEANS[-1]) < 0.03
    # DDIM over 16 intervals shrinks the spread (0.26 for 0.3); fresh noise at t = 1/2 restores some of it
    assert reference.std().item() - 0.01 < two_step.std().item() < STD + 0.01


def test_consistency_loss_is_zero_for_a_point_mass_and_checks_its_grid():
    point = lambda x, theta, cond: exact_v(x, theta, 0.7, std=0.0)  # noqa: E731
    x = torch.full((64, 3), 0.7, dtype=torch.float64)
    assert consistency_loss(point, point, x, {}, 4, generator=torch.Generator().manual_seed(0)).item() < 1e-20
    with pytest.raises(ValueError, match="intervals=0"):
        consistency_loss(point, point, x, {}, 0)
