"""One generation request, resolved once.

`GenerationRequest` holds what a caller asked (None: not given). `GenerationRequest.resolve`
fills every default once, from the call and then the model's config, checks every value, and
returns a frozen `Resolved`: the sampler, steps, guidance (with `guide`, rest guidance and the
guidance interval), seeds and conditions that the sampling code consumes. `GenerateOutput.settings`
carries it back, and `audiodiff generate` writes it beside the clips, so any clip can be made again
from its settings (`GenerationRequest.from_settings`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import operator
from collections.abc import Callable
from typing import Any

import torch

from audiodiff.diffusion.samplers import SAMPLERS
from audiodiff.errors import UserError
from audiodiff.models.condition_base import ConditionError

__all__ = ["GenerateOutput", "GenerationRequest", "MAX_SEED", "MAX_SECONDS", "RequestError", "Resolved"]

MAX_SECONDS = 600.0  # longest generated duration or continuation
MAX_SEED = 2**63 - 1
INPAINT_SAMPLER = "ddpm"  # RePaint's ancestral steps, unless a request names another sampler


class RequestError(UserError, ValueError):
    """A sampling or editing option out of range (steps, duration, strength, a span, ...); the
    message names the value and what it may be."""


@dataclasses.dataclass(frozen=True)
class Resolved:
    """Every setting one call used, after defaults: what `GenerateOutput.settings` returns.

    `guidance` is the scale towards the `guided` conditions; the conditions in `rest` are those
    guidance moves away from (the negatives, or with `guide=` the asked conditions not guided),
    pushed at `rest_guidance`. `takes_guidance`: a student with the scale as an input (one call a
    step, no negatives)."""

    sampler: str
    steps: int
    guidance: float
    guidance_interval: tuple[float, float]
    guide: tuple[str, ...] | None
    rest_guidance: float
    seed: int
    seeds: tuple[int, ...]
    conditions: dict[str, Any]
    negatives: dict[str, Any]
    rest: dict[str, Any]
    normalize: bool
    shift: float
    objective: str
    space: str
    takes_guidance: bool = False

    def to_dict(self) -> dict:
        """JSON-ready: tensors and arrays become lists."""
        return {field.name: _plain(getattr(self, field.name)) for field in dataclasses.fields(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


@dataclasses.dataclass
class GenerateOutput:
    """What a generate or edit call returns."""

    audio: torch.Tensor  # [n, channels, samples], float32 in [-1, 1]
    sample_rate: int
    seeds: list[int]
    mel: torch.Tensor | None = None  # [n, n_mels, frames] (the first channel's) for mel and latent models
    settings: Resolved | None = None  # every setting the call used, after defaults


@dataclasses.dataclass
class GenerationRequest:
    """Every sampling option of one call, as asked. Pipeline methods take these fields as
    keyword options (and `request=`); the CLI and the demo build one and pass it.
    `conditions` and `negatives` map condition names to user values (see `Conditioner.prepare`)."""

    conditions: dict[str, Any] = dataclasses.field(default_factory=dict)
    negatives: dict[str, Any] = dataclasses.field(default_factory=dict)
    sampler: str | None = None  # None: the model's (ddpm for inpainting and continuation)
    steps: int | None = None
    guidance: float | None = None
    guidance_interval: tuple[float, float] | None = None  # None: the model's sampling.guidance_interval
    guide: tuple[str, ...] | None = None  # guide towards these at `guidance`; the rest asked at `rest_guidance`
    rest_guidance: float | None = None  # None: the model's sampling.rest_guidance
    seed: int = 0
    normalize: bool = False  # True: scale each clip's peak to NORMALIZE_PEAK (default: the model's level)
    progress: bool = False
    callback: Callable[[dict], None] | None = None

    @classmethod
    def of(cls, request: GenerationRequest | None = None, **options) -> GenerationRequest:
        """`request` with keyword options on top: the fields above, `negative_<condition>=` and
        any other name as a condition. A None option means "not given"."""
        request = request or cls()
        fields = {f.name for f in dataclasses.fields(cls)} - {"conditions", "negatives"}
        conditions, negatives, settings = dict(request.conditions), dict(request.negatives), {}
        for key, value in options.items():
            if value is None:
                continue
            if key in fields:
                settings[key] = value
            elif key.startswith("negative_"):
                negatives[key[len("negative_") :]] = value
            else:
                conditions[key] = value
        for key in ("steps", "seed"):
            if isinstance(settings.get(key), float) and settings[key].is_integer():
                settings[key] = int(settings[key])
        return dataclasses.replace(request, conditions=conditions, negatives=negatives, **settings)

    @classmethod
    def from_settings(cls, settings: dict | Resolved) -> GenerationRequest:
        """The request that makes the same clips again from `Resolved.to_dict()` (a sidecar)."""
        data = settings.to_dict() if isinstance(settings, Resolved) else dict(settings)
        guide = data.get("guide")
        return cls(
            conditions=dict(data.get("conditions") or {}),
            negatives=dict(data.get("negatives") or {}),
            sampler=data["sampler"],
            steps=int(data["steps"]),
            guidance=float(data["guidance"]),
            guidance_interval=tuple(data["guidance_interval"]),
            guide=tuple(guide) if guide is not None else (),
            rest_guidance=float(data["rest_guidance"]),
            seed=int(data["seed"]),
            normalize=bool(data.get("normalize", False)),
        )

    def check(self) -> GenerationRequest:
        """Check what can be checked without a model (the CLI calls this before loading one)."""
        if self.sampler is not None and self.sampler not in SAMPLERS:
            raise RequestError(f"unknown sampler {self.sampler!r}; choose one of {sorted(SAMPLERS)}")
        if self.steps is not None:
            check_steps(self.steps)
        for name in ("guidance", "rest_guidance"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(number(value)):
                raise RequestError(f"{name}={value}: must be a finite number (1 = conditional, 0 = unconditional)")
        if self.guidance_interval is not None:
            check_interval(self.guidance_interval)
        check_seed("seed", self.seed)
        return self

    def resolve(
        self,
        config,
        n: int,
        takes_guidance: bool = False,
        default_sampler: str | None = None,
        space: str = "",
        where: str = "config",
    ) -> Resolved:
        """Every default filled once: from this request, then `default_sampler` (an editing
        method's), then the model's `config.sampling`. `takes_guidance`: the model has the
        guidance scale as an input. Raises RequestError naming a bad value."""
        self.check()
        sampling = config.sampling
        sampler = self.sampler or default_sampler or sampling.sampler
        if sampler not in SAMPLERS:
            raise RequestError(
                f"{where}: sampling.sampler={sampler!r} is not a sampler; pass sampler= one of {sorted(SAMPLERS)}"
            )
        steps = check_steps(sampling.steps if self.steps is None else self.steps)
        interval = check_interval(
            sampling.guidance_interval if self.guidance_interval is None else self.guidance_interval
        )
        scale = float(sampling.guidance if self.guidance is None else self.guidance)
        rest, rest_scale, guide = self._guidance_split(sampling, takes_guidance)
        if takes_guidance and (rest or interval != (0.0, 1.0)):
            teacher = config.student.base if config.student else "its teacher"
            raise ConditionError(
                "this student takes guidance as an input and was distilled without negative conditions or a "
                f"guidance interval; use its teacher ({teacher}) for negative_*, guide= and guidance_interval"
            )
        return Resolved(
            sampler=sampler,
            steps=steps,
            guidance=scale,
            guidance_interval=interval,
            guide=guide,
            rest_guidance=rest_scale,
            seed=int(self.seed),
            seeds=tuple(int(self.seed) + i for i in range(n)),
            conditions=dict(self.conditions),
            negatives=dict(self.negatives),
            rest=rest,
            normalize=bool(self.normalize),
            shift=float(config.diffusion.shift),
            objective=config.diffusion.objective,
            space=space,
            takes_guidance=takes_guidance,
        )

    def _guidance_split(self, sampling, takes_guidance: bool) -> tuple[dict, float, tuple[str, ...] | None]:
        """(what guidance moves away from, the scale of those conditions, the guided names): the
        negatives at 1; or with `guide=` (else the model's `sampling.guide`, where the call asks
        one of those and no negatives; `guide=[]` turns that default off) every asked condition
        but the guided ones, at `rest_guidance`, so that guidance strengthens the guided ones (a
        label, say) while curves and numbers are followed as asked."""
        guide = self.guide
        if guide is None:
            guide = [name for name in sampling.guide if name in self.conditions]
            if not guide or self.negatives or takes_guidance:
                return dict(self.negatives), 1.0, None
        else:
            guide = [guide] if isinstance(guide, str) else list(guide)
            if not guide:  # guide=[]: every asked condition at `guidance`, whatever the model's default
                return dict(self.negatives), 1.0, None
            unknown = sorted(set(guide) - set(self.conditions))
            if unknown:
                raise RequestError(
                    f"guide={guide}: name conditions this call asks for ({sorted(self.conditions)}), e.g. guide=['label']"
                )
            if self.negatives:
                raise RequestError("guide= and negative_* both set what guidance moves away from; give one of them")
        rest_scale = float(sampling.rest_guidance if self.rest_guidance is None else self.rest_guidance)
        rest = {name: value for name, value in self.conditions.items() if name not in guide}
        return rest, rest_scale, tuple(guide)


# --------------------------------------------------------------------------------------------
# Checks shared by the pipeline's methods


def number(value) -> float:
    """`value` as a float; NaN (which every range check refuses) for what is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def whole(value) -> int | None:
    """`value` as an int when it is a whole number (not a bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def check_steps(steps) -> int:
    if whole(steps) is None or not 1 <= steps <= 1000:
        raise RequestError(f"steps={steps}: must be a whole number between 1 and 1000")
    return int(steps)


def check_count(n) -> None:
    if whole(n) is None or n < 1:
        raise RequestError(f"n={n}: must be a whole number of clips, at least 1")


def check_seed(name: str, seed) -> None:
    if whole(seed) is None or not 0 <= seed <= MAX_SEED:
        raise RequestError(f"{name}={seed}: must be a whole number between 0 and 2**63 - 1")


def check_interval(interval) -> tuple[float, float]:
    """A guidance interval (low, high) of noise levels, checked: 0 <= low <= high <= 1."""
    try:
        low, high = (number(v) for v in interval)
    except (TypeError, ValueError):
        low = high = math.nan
    if not 0.0 <= low <= high <= 1.0:
        raise RequestError(
            f"guidance_interval={interval!r}: give two noise levels (low, high) with 0 <= low <= high <= 1, "
            "e.g. (0.3, 1.0) to guide only the noisier steps; (0, 1) guides every step"
        )
    return (low, high)


def check_seconds(name: str, value) -> float:
    """A duration in seconds, checked: more than 0 and at most `MAX_SECONDS`."""
    seconds = number(value)
    if not 0 < seconds <= MAX_SECONDS:
        raise RequestError(f"{name}={seconds:g} s: must be more than 0 and at most {MAX_SECONDS:g} seconds")
    return seconds


def check_resample_steps(resample_steps) -> None:
    if whole(resample_steps) is None or not 1 <= resample_steps <= 100:
        raise RequestError(
            f"resample_steps={resample_steps}: must be a whole number between 1 and 100 (RePaint resampling per step)"
        )


def _plain(value):
    """JSON-ready copy: tensors and numpy arrays as lists, tuples as lists, dicts recursively."""
    if hasattr(value, "tolist"):  # tensors and numpy arrays
        return value.tolist()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
