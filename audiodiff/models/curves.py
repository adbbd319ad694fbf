"""Time-varying conditions (`"f0"`, `"loudness"`): `FloatTensor[batch, frames]`, NaN = not given.

Besides a summary embedding, a curve draws feature maps over the input's time axis (and, for f0
on mel models, over the mel axis: the harmonics of the F0 projected through the mel filterbank)
that a zero-initialised convolution adds to the U-Net's first feature map, so the network can
follow it frame by frame. `LocalSpec` is what the U-Net tells a curve about its input.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from audiodiff.models.condition_base import Condition, ConditionError, ConditionSpec

__all__ = ["CURVE_KINDS", "CurveCondition", "CurveConfig", "LocalSpec", "resample_frames"]

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
