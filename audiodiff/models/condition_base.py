"""The base of every condition type: `Condition` (one input a model is conditioned on), the
`ConditionSpec` it describes itself with for front-ends, the error a user reads, and the registry
of types a config can name (`condition_type`, `CONDITION_TYPES`).

A new condition type is one `Condition` subclass registered with `condition_type`; the built-in
ones are in `conditioning` (label, text, number) and `curves` (f0, loudness).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from audiodiff.errors import UserError

__all__ = ["Condition", "CONDITION_TYPES", "ConditionError", "ConditionSpec", "condition_type"]


class ConditionError(UserError, ValueError):
    """A condition the model does not take, or a value it was not trained with."""


@dataclasses.dataclass(frozen=True)
class ConditionSpec:
    """What a front-end needs to offer a condition without knowing its type: the CLI builds its
    `--cond NAME=VALUE` help from these, the demo its widgets. Validation stays in
    `Condition.check`; `low`/`high` are the trained range (widget limits), `choices` the labels.
    `parser` is the condition's own `parse_text` (`Conditioner.specs` attaches it)."""

    name: str
    kind: str  # "label", "text", "number", "curve", or a new type's own
    help: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    unit: str = ""
    null: str = "left out: unconditional"
    parser: Callable[[str], Any] | None = dataclasses.field(default=None, compare=False, repr=False)

    def parse_text(self, text: str):
        """A value typed on the command line or in a text box -> the value `check` takes, as the
        condition reads text (`Condition.parse_text`); the text itself without a parser."""
        return text if self.parser is None else self.parser(text)

    def describe(self) -> str:
        """One line for help texts."""
        parts = [f"{self.name} ({self.kind}): {self.help}"]
        if self.choices:
            shown = ", ".join(self.choices[:12]) + (", ..." if len(self.choices) > 12 else "")
            parts.append(f"one of {shown}")
        if self.low is not None:
            parts.append(f"trained on {self.low:g}..{self.high:g}{' ' + self.unit if self.unit else ''}")
        return "; ".join(parts)


class Condition(nn.Module):
    """One input a model is conditioned on. It owns everything about that input: its null value
    (the "absent" that classifier-free guidance compares against), training dropout, turning user
    values into a batch (with the errors a user reads), and its embedding. A condition batch holds
    one value per item; `values` below is that batch."""

    null_value: Any = None

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def null(self, batch: int, device=None):
        return torch.full((batch,), self.null_value, dtype=self.dtype, device=device)

    def parse(self, value, batch: int):
        """User values (one for all items, or one per item) -> a condition batch."""
        items = list(value) if isinstance(value, (list, tuple)) else [value] * batch
        if len(items) != batch:
            raise ConditionError(f"{self.name}: got {len(items)} values for a batch of {batch}")
        return torch.tensor([self.check(item) for item in items], dtype=self.dtype)

    def check(self, item):
        """One user value -> its stored form, or a ConditionError naming the value and the fix."""
        raise NotImplementedError

    def parse_text(self, text: str):
        """A value typed as text (`--cond NAME=VALUE`, a text box on the page) -> a value that
        `check` takes; the text itself unless the type reads text otherwise."""
        return text

    def spec(self) -> ConditionSpec:
        """How front-ends offer this condition (see `ConditionSpec`)."""
        raise NotImplementedError

    def keep(self, values, keep: torch.Tensor, device=None, generator: torch.Generator | None = None):
        """Training dropout: null where `keep` ([batch] bool) is False (`generator` draws any
        further randomness a condition needs, such as the spans a curve masks)."""
        values = values.to(device)
        keep = keep.to(values.device).view(-1, *[1] * (values.dim() - 1))
        return torch.where(keep, values, torch.full_like(values, self.null_value))

    def forward(self, values, device) -> tuple[torch.Tensor, tuple | None]:
        """A condition batch -> (embedding `[batch, embed_dim]`, cross-attention context or None)."""
        raise NotImplementedError

    def local(self, values, size: tuple[int, ...], prepare) -> torch.Tensor | None:
        """What this condition adds to the U-Net's first feature map; None for a condition that
        is one value per clip (only curves draw over time)."""
        return None

    context_dim: int | None = None


CONDITION_TYPES: dict[str, type[Condition]] = {}
"""Condition types a config can name in `conditioning.extra` (`{kind: ...}`), by kind."""


def condition_type(kind: str):
    """Register a `Condition` subclass under `kind`: it is then built from `conditioning.extra`
    (`cls.from_config(name, options, embed_dim)`), offered by the CLI and read from the data
    with no other change. Its values are numbers per clip (NaN = null), as `NumberCondition`'s."""

    def register(cls: type[Condition]) -> type[Condition]:
        if kind in CONDITION_TYPES and CONDITION_TYPES[kind] is not cls:
            raise ValueError(f"condition type {kind!r} is registered twice")
        cls.kind = kind
        CONDITION_TYPES[kind] = cls
        return cls

    return register
