"""The U-Net: one implementation for waveforms (`dims=1`) and mel spectrograms (`dims=2`).

`UNet(config)(x, t, cond) -> v`, with `x` shaped `[batch, channels, time]` (dims=1) or
`[batch, channels, mels, frames]` (dims=2), `t` the noise level in [0, 1] shaped `[batch]`, and
`cond` a dict of conditions that the model's `Conditioner` turns into an embedding (added to the
time embedding and applied by scale-shift in every residual block) and optional context tokens
(read by cross-attention); curve conditions also add feature maps to the first level (`mel`, the
model's MelSpec, lets an f0 curve be drawn on the mel axis). Lengths that do not divide the total downsampling are padded and the
output cropped back.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from audiodiff.models.conditioning import Conditioner, ConditioningConfig
from audiodiff.models.curves import LocalSpec

__all__ = ["UNet", "UNetConfig"]

MAX_LEVELS, MAX_RES_BLOCKS = 16, 64  # far beyond any useful U-Net; guards against absurd configs
MAX_POSITION_FEATURES, POSITION_MAX_PERIOD = 256, 8192.0  # the longest period, in first-level positions


@dataclasses.dataclass
class UNetConfig:
    """Architecture of the U-Net; stored in every checkpoint's config.json."""

    dims: int = 2  # 1: waveform [b, c, t]; 2: mel [b, c, mels, frames]
    in_channels: int = 1
    channels: int = 64  # width of the first level
    channel_mults: tuple[int, ...] = (1, 2, 3, 4)  # width of each level, times `channels`
    num_res_blocks: int = 2  # residual blocks per level on the way down
    attention_levels: tuple[int, ...] = (2, 3)  # levels (0 = full resolution) with attention
    head_channels: int = 32  # channels per attention head
    dropout: float = 0.0
    kernel_size: int = 3
    downsample_factor: int = 2  # per level, along every axis
    patch_size: int = 1  # fold patch_size (per axis) neighbouring values into channels at the stem
    norm_groups: int = 32
    embed_dim: int = 0  # time/conditioning embedding width; 0 means 4 * channels
    # sinusoidal features of each position's distance from the window's start, added at the first
    # level (0: none). Convolutions see a few hundred milliseconds and attention has no order, so
    # without them a waveform model cannot tell 0.8 s after the onset from 0.1 s: one-shots need them.
    position_features: int = 0

    def __post_init__(self):
        self.channel_mults = tuple(self.channel_mults)
        self.attention_levels = tuple(self.attention_levels)
        problems = []
        if self.dims not in (1, 2):
            problems.append(f"dims={self.dims} must be 1 (waveform) or 2 (mel)")
        if not self.channel_mults:
            problems.append("channel_mults must name at least one level")
        bad = [lvl for lvl in self.attention_levels if not 0 <= lvl < len(self.channel_mults)]
        if bad:
            problems.append(f"attention_levels {bad} outside 0..{len(self.channel_mults) - 1}")
        if self.kernel_size % 2 == 0:
            problems.append(f"kernel_size={self.kernel_size} must be odd")
        if self.patch_size < 1:
            problems.append(f"patch_size={self.patch_size} must be at least 1")
        small = {
            k: getattr(self, k)
            for k in ("in_channels", "channels", "head_channels", "norm_groups", "kernel_size", "downsample_factor")
        }
        problems += [f"{name}={value} must be at least 1" for name, value in small.items() if value < 1]
        if self.position_features < 0 or self.position_features % 2 or self.position_features > MAX_POSITION_FEATURES:
            problems.append(
                f"position_features={self.position_features} must be even, from 0 to {MAX_POSITION_FEATURES}"
            )
        if self.num_res_blocks < 0 or self.embed_dim < 0 or any(mult < 1 for mult in self.channel_mults):
            problems.append("num_res_blocks and embed_dim must be >= 0 and channel_mults >= 1")
        if len(self.channel_mults) > MAX_LEVELS or self.num_res_blocks > MAX_RES_BLOCKS:
            # checked before anything is built: a hostile config.json could ask for millions of blocks
            problems.append(f"at most {MAX_LEVELS} levels and {MAX_RES_BLOCKS} blocks per level")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout={self.dropout} must be in [0, 1)")
        width, values = self.channels * (self.channel_mults or (1,))[0], self.in_channels * self.patch_size**self.dims
        if not problems and width < values:
            # the output layer maps `width` features a position to `values` numbers: the rest of
            # the space is out of its reach, and the starting noise there is never removed
            problems.append(
                f"the first level's width {width} (channels x channel_mults[0]) is below the {values} values of a "
                f"patch (in_channels x patch_size^dims): samples would keep the noise the model cannot reach; "
                f"raise model.channels or lower model.patch_size"
            )
        if problems:
            raise ValueError("UNetConfig: " + "; ".join(problems))
        for mult in self.channel_mults:
            width = self.channels * mult
            if width % self.groups_for(width) or width % self.head_channels and self.attention_levels:
                problems.append(f"level width {width} must divide by norm groups and head_channels")
        if problems:
            raise ValueError("UNetConfig: " + "; ".join(problems))

    def groups_for(self, width: int) -> int:
        return math.gcd(self.norm_groups, width)

    @property
    def time_embed_dim(self) -> int:
        return self.embed_dim or 4 * self.channels

    @property
    def total_downsampling(self) -> int:
        return self.downsample_factor ** (len(self.channel_mults) - 1) * self.patch_size


def _conv(dims: int, *args, **kwargs) -> nn.Module:
    return (nn.Conv1d if dims == 1 else nn.Conv2d)(*args, **kwargs)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features of `t` in [0, 1]: `[batch] -> [batch, dim]`."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = (t.float() * 1000.0)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def position_features(count: int, dim: int, device=None) -> torch.Tensor:
    """Sinusoidal features of positions 0..count-1, periods from 2 to POSITION_MAX_PERIOD
    positions: `[dim, count]`."""
    half = dim // 2
    periods = 2.0 * (POSITION_MAX_PERIOD / 2.0) ** (
        torch.arange(half, device=device, dtype=torch.float32) / max(half - 1, 1)
    )
    args = torch.arange(count, device=device, dtype=torch.float32)[None] * (2 * math.pi / periods)[:, None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=0)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with scale-shift (FiLM) from the embedding before the second."""

    def __init__(self, cfg: UNetConfig, in_ch: int, out_ch: int):
        super().__init__()
        pad = cfg.kernel_size // 2
        self.norm1 = nn.GroupNorm(cfg.groups_for(in_ch), in_ch)
        self.conv1 = _conv(cfg.dims, in_ch, out_ch, cfg.kernel_size, padding=pad)
        self.film = nn.Linear(cfg.time_embed_dim, 2 * out_ch)
        self.norm2 = nn.GroupNorm(cfg.groups_for(out_ch), out_ch)
        self.dropout = nn.Dropout(cfg.dropout)
        self.conv2 = _conv(cfg.dims, out_ch, out_ch, cfg.kernel_size, padding=pad)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = _conv(cfg.dims, in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context=None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(F.silu(emb)).chunk(2, dim=-1)
        expand = (...,) + (None,) * (x.dim() - 2)
        h = self.norm2(h) * (1 + scale[expand]) + shift[expand]
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    """Self-attention over all positions, then cross-attention to context tokens if any."""

    def __init__(self, cfg: UNetConfig, channels: int, context_dim: int | None):
        super().__init__()
        self.heads = max(1, channels // cfg.head_channels)
        self.norm = nn.GroupNorm(cfg.groups_for(channels), channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.cross = None
        if context_dim:
            self.cross_norm = nn.LayerNorm(channels)
            self.cross_q = nn.Linear(channels, channels)
            self.cross_kv = nn.Linear(context_dim, 2 * channels)
            self.cross = nn.Linear(channels, channels)
            nn.init.zeros_(self.cross.weight)
            nn.init.zeros_(self.cross.bias)

    def forward(self, x: torch.Tensor, emb=None, context=None) -> torch.Tensor:
        shape = x.shape
        tokens = rearrange(self.norm(x), "b c ... -> b (...) c")
        q, k, v = rearrange(self.qkv(tokens), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        h = rearrange(F.scaled_dot_product_attention(q, k, v), "b h n d -> b n (h d)")
        h = rearrange(x, "b c ... -> b (...) c") + self.out(h)
        if self.cross is not None and context is not None:
            tokens, mask = context
            q = rearrange(self.cross_q(self.cross_norm(h)), "b n (h d) -> b h n d", h=self.heads)
            k, v = rearrange(self.cross_kv(tokens), "b m (two h d) -> two b h m d", two=2, h=self.heads)
            attn_mask = mask[:, None, None, :] if mask is not None else None
            c = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
            h = h + self.cross(rearrange(c, "b h n d -> b n (h d)"))
        return h.transpose(1, 2).reshape(shape)


class Downsample(nn.Module):
    def __init__(self, cfg: UNetConfig, channels: int):
        super().__init__()
        f = cfg.downsample_factor
        self.conv = _conv(
            cfg.dims, channels, channels, 2 * f - 1 if f > 2 else 3, stride=f, padding=f - 1 if f > 2 else 1
        )

    def forward(self, x, emb=None, context=None):
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, cfg: UNetConfig, channels: int):
        super().__init__()
        self.factor = cfg.downsample_factor
        self.conv = _conv(cfg.dims, channels, channels, cfg.kernel_size, padding=cfg.kernel_size // 2)

    def forward(self, x, emb=None, context=None):
        return self.conv(F.interpolate(x, scale_factor=self.factor, mode="nearest"))


class Level(nn.Module):
    """A run of blocks applied in order; each takes (x, emb, context)."""

    def __init__(self, *blocks: nn.Module):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x, emb, context):
        for block in self.blocks:
            x = block(x, emb, context)
        return x


class UNet(nn.Module):
    """v-prediction U-Net; see the module docstring for shapes."""

    def __init__(self, config: UNetConfig, conditioning: ConditioningConfig | None = None, mel=None):
        super().__init__()
        self.config = cfg = config
        widths = [cfg.channels * m for m in cfg.channel_mults]
        local = LocalSpec(cfg.dims, widths[0], cfg.patch_size, cfg.kernel_size, mel if cfg.dims == 2 else None)
        self.conditioner = Conditioner(conditioning or ConditioningConfig(), cfg.time_embed_dim, local)
        context_dim = self.conditioner.context_dim
        embed = cfg.time_embed_dim
        self.time_mlp = nn.Sequential(nn.Linear(cfg.channels, embed), nn.SiLU(), nn.Linear(embed, embed))

        widths = [cfg.channels * m for m in cfg.channel_mults]
        in_ch = cfg.in_channels * cfg.patch_size**cfg.dims
        self.stem = _conv(cfg.dims, in_ch, widths[0], cfg.kernel_size, padding=cfg.kernel_size // 2)
        self.position = None
        if cfg.position_features:  # starts at zero: the network learns how much to lean on it
            self.position = _conv(cfg.dims, cfg.position_features, widths[0], 1)
            nn.init.zeros_(self.position.weight)
            nn.init.zeros_(self.position.bias)

        self.down = nn.ModuleList()
        skips = [widths[0]]
        width = widths[0]
        for level, level_width in enumerate(widths):
            for _ in range(cfg.num_res_blocks):
                blocks = [ResBlock(cfg, width, level_width)]
                width = level_width
                if level in cfg.attention_levels:
                    blocks.append(Attention(cfg, width, context_dim))
                self.down.append(Level(*blocks))
                skips.append(width)
            if level < len(widths) - 1:
                self.down.append(Level(Downsample(cfg, width)))
                skips.append(width)

        self.middle = Level(
            ResBlock(cfg, width, width), Attention(cfg, width, context_dim), ResBlock(cfg, width, width)
        )

        self.up = nn.ModuleList()
        for level in reversed(range(len(widths))):
            for index in range(cfg.num_res_blocks + 1):
                blocks = [ResBlock(cfg, width + skips.pop(), widths[level])]
                width = widths[level]
                if level in cfg.attention_levels:
                    blocks.append(Attention(cfg, width, context_dim))
                if level > 0 and index == cfg.num_res_blocks:
                    blocks.append(Upsample(cfg, width))
                self.up.append(Level(*blocks))

        self.head = nn.Sequential(
            nn.GroupNorm(cfg.groups_for(width), width),
            nn.SiLU(),
            _conv(cfg.dims, width, in_ch, cfg.kernel_size, padding=cfg.kernel_size // 2),
        )
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: dict | None = None) -> torch.Tensor:
        cfg = self.config
        if x.dim() != cfg.dims + 2 or x.shape[1] != cfg.in_channels:
            raise ValueError(
                f"UNet(dims={cfg.dims}) expects [batch, {cfg.in_channels}, "
                f"{'time' if cfg.dims == 1 else 'mels, frames'}], got {list(x.shape)}"
            )
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        size = x.shape[2:]
        x = self._pad(x)
        x = self._patch(x)

        cond = cond or {}
        emb, context = self.conditioner(cond, x.shape[0], x.device)
        emb = self.time_mlp(timestep_embedding(t, cfg.channels)) + emb

        h = self.stem(x)
        local = self.conditioner.local(cond, tuple(size), lambda maps: self._patch(self._pad(maps)))
        if local is not None:
            h = h + local.to(h.dtype)
        if self.position is not None:  # along time, the last axis (the same for every mel bin)
            features = position_features(h.shape[-1], cfg.position_features, h.device)
            features = features.reshape(1, -1, *(1,) * (cfg.dims - 1), h.shape[-1]).to(h.dtype)
            h = h + self.position(features)
        skips = [h]
        for level in self.down:
            h = level(h, emb, context)
            skips.append(h)
        h = self.middle(h, emb, context)
        for level in self.up:
            h = level(torch.cat([h, skips.pop()], dim=1), emb, context)
        out = self.head(h)

        out = self._unpatch(out)
        return out[(..., *(slice(0, n) for n in size))]

    def _patch(self, x: torch.Tensor) -> torch.Tensor:
        p = self.config.patch_size
        if p == 1:
            return x
        if self.config.dims == 1:
            return rearrange(x, "b c (t p) -> b (c p) t", p=p)
        return rearrange(x, "b c (h p) (w q) -> b (c p q) h w", p=p, q=p)

    def _unpatch(self, x: torch.Tensor) -> torch.Tensor:
        p = self.config.patch_size
        if p == 1:
            return x
        if self.config.dims == 1:
            return rearrange(x, "b (c p) t -> b c (t p)", p=p)
        return rearrange(x, "b (c p q) h w -> b c (h p) (w q)", p=p, q=p)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """Pad each axis to a multiple of the total downsampling; a mel U-Net's axes to at least
        two multiples. On CPU, torch 2.11's bf16 Conv2d with stride 2 returns wrong values (off by
        2 or NaN, and not the same twice) where its input is 1 or 2 wide; two multiples keep every
        downsampling input at least 4 wide (`tests/test_unet.py`)."""
        multiple = self.config.total_downsampling
        least = 2 * multiple if self.config.dims == 2 and multiple > self.config.patch_size else 0
        pads = []
        for n in reversed(x.shape[2:]):
            pads += [0, max((-n) % multiple, least - n)]
        return F.pad(x, pads) if any(pads) else x

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
