"""The table of distillation methods: what each one trains, how its student samples, and whether
the student takes the guidance scale as an input.

A method is one `DistillMethod` row; `train/distill.py` reads the row and never branches on the
method's name. The losses themselves are plain functions of sampler-level models in
`audiodiff.diffusion.distill`, checked on exact Gaussian teachers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from audiodiff.config import ConfigError
from audiodiff.diffusion.adversarial import generator_loss
from audiodiff.diffusion.distill import consistency_loss, guidance_loss, progressive_loss

__all__ = ["DISTILL_METHODS", "DistillMethod", "distill_method"]


@dataclasses.dataclass(frozen=True)
class DistillStep:
    """What one training step of any method sees."""

    student: Callable  # sampler-level model (x, θ, cond) -> v, with gradients
    teacher: Callable  # the teacher, guided at the recipe's scale unless it takes the scale as an input
    x: torch.Tensor  # clean training examples in model space
    cond: dict  # the condition batch (after dropout)
    distill: object  # the recipe's `DistillConfig`
    student_steps: int  # the steps the student samples with
    shift: float
    generator: torch.Generator | None
    fake: torch.Tensor | None = None  # adversarial methods: the student's own few-step samples
    discriminator: Callable | None = None  # adversarial methods: clip -> score `[batch]`


@dataclasses.dataclass(frozen=True)
class DistillMethod:
    """One way to distil a student.

    `loss(step)` is the training loss; `sampler` the student's default sampler (None: the
    teacher's); `guidance_input`: the student learns the guidance scale as an input (one call a
    step, guidance still chosen at sampling time); `fixed_steps`: the student is trained for
    `distill.student_steps` sampling steps."""

    name: str
    loss: Callable[[DistillStep], torch.Tensor]
    sampler: str | None
    guidance_input: bool
    fixed_steps: bool
    summary: str
    discriminator: bool = False  # trains a critic on the model's space beside the student


DISTILL_METHODS: dict[str, DistillMethod] = {
    method.name: method
    for method in (
        DistillMethod(
            "guidance",
            lambda s: guidance_loss(
                s.student, s.teacher, s.x, s.cond, tuple(s.distill.guidance_range), s.shift, s.generator
            ),
            sampler=None,
            guidance_input=True,
            fixed_steps=False,
            summary="the guided prediction in one call, the scale an input (Meng et al. 2023)",
        ),
        DistillMethod(
            "progressive",
            lambda s: progressive_loss(s.student, s.teacher, s.x, s.cond, s.student_steps, s.shift, s.generator),
            sampler="ddim",
            guidance_input=False,
            fixed_steps=True,
            summary="one student DDIM step does two of the teacher's (Salimans and Ho 2022)",
        ),
        DistillMethod(
            "adversarial",
            lambda s: generator_loss(
                s.discriminator, s.x, s.fake, s.teacher, s.cond, s.distill.distill_weight, s.generator
            )[0],
            sampler="ddim",
            guidance_input=False,
            fixed_steps=True,
            summary="a critic on real clips against the student's few-step samples, plus the teacher's regulariser "
            "(adversarial diffusion distillation, Sauer et al. 2023; ARC's relativistic pairing)",
            discriminator=True,
        ),
        DistillMethod(
            "consistency",
            lambda s: consistency_loss(s.student, s.teacher, s.x, s.cond, s.distill.intervals, s.shift, s.generator),
            sampler="consistency",
            guidance_input=False,
            fixed_steps=True,
            summary="every point of a teacher trajectory maps to its end (Song et al. 2023)",
        ),
    )
}


def distill_method(name: str) -> DistillMethod:
    """The method called `name`, or an error listing the methods."""
    if name not in DISTILL_METHODS:
        raise ConfigError(f"distill.method={name!r}; choose one of {sorted(DISTILL_METHODS)}")
    return DISTILL_METHODS[name]
