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


class ConditionError(ValueError):
    """A condition the model does not take, or a value it was not trained with."""


@dataclasses.dataclass
class TextConfig:
    """The built-in caption encoder, learned with the model; its vocabulary is saved with it."""

    vocab: list[str] = dataclasses.field(default_factory=list)  # words; built from the captions
    dim: int = 128
    layers: int = 2
    heads: int = 4
    max_tokens: int = 32


@dataclasses.dataclass
class ConditioningConfig:
    labels: list[str] | str = dataclasses.field(default_factory=list)  # class names, or "auto" (from the data)
    text: TextConfig | None = None  # None = no text; an empty vocab is built from the captions
    numbers: dict[str, list[float] | str] = dataclasses.field(default_factory=dict)  # name -> [min, max] or "auto"
    drop_prob: float = 0.1  # conditioning dropout per condition (enables guidance)
    drop: dict[str, float] = dataclasses.field(default_factory=dict)  # per-condition override

    def __post_init__(self):
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


class Conditioner(nn.Module):
    """Condition dict -> (embedding `[batch, embed_dim]`, context or None)."""

    def __init__(self, cfg: ConditioningConfig, embed_dim: int):
        super().__init__()
        unresolved = [n for n, v in [("labels", cfg.labels), *cfg.numbers.items()] if isinstance(v, str)]
        if unresolved:
            raise ConditionError(f"conditioning {unresolved} still 'auto'; they are filled from the data when training starts")
        self.cfg = cfg
        self.label_embed = nn.Embedding(len(cfg.labels) + 1, embed_dim) if cfg.labels else None
        self.text = TextEncoder(cfg.text) if cfg.text else None
        self.text_proj = nn.Linear(cfg.text.dim, embed_dim) if cfg.text else None
        self.number_mlps = nn.ModuleDict(
            {name: nn.Sequential(nn.Linear(16, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim)) for name in cfg.numbers}
        )
        self.number_null = nn.ParameterDict({name: nn.Parameter(torch.zeros(embed_dim)) for name in cfg.numbers})
        self.embed_dim = embed_dim

    @property
    def context_dim(self) -> int | None:
        return self.cfg.text.dim if self.cfg.text else None

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
