"""The source half of a source-filter vocoder: a pitch grid that a network can predict the F0 on,
and the harmonic excitation that an F0 curve drives.

`PitchGrid` spaces pitch classes evenly in cents (CREPE's scheme): a target F0 becomes a Gaussian
bump over the classes (`targets`), and logits become an F0 by a probability-weighted average of
the cents around the most likely class (`decode`), so the answer is finer than the grid.

`harmonic_excitation` turns an F0 per frame into a band-limited pulse train: every harmonic of the
F0 below the Nyquist frequency at amplitude 1, all in phase, summed in closed form (the Dirichlet
kernel), so its cost does not grow with the number of harmonics. The phase is the running integral
of the F0, so the harmonics stay coherent from frame to frame, which is what a vocoder that
predicts a phase per frame gets wrong; a filter (the generator) then gives each its level.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["PitchGrid", "excitation_phase", "excitation_spectrum", "harmonic_excitation"]


class PitchGrid:
    """Pitch classes `cents` apart covering `f0_min`..`f0_max` Hz (the defaults: pYIN's search
    range in `audiodiff.controls`) with `MARGIN` more at each end, so that a target's Gaussian and
    the decoding window are never cut off by the grid's ends."""

    MARGIN = 6

    def __init__(self, f0_min: float = 40.0, f0_max: float = 1600.0, cents: float = 20.0):
        if not 0 < f0_min < f0_max or cents <= 0:
            raise ValueError(f"PitchGrid: need 0 < f0_min < f0_max and cents > 0 (got {f0_min}, {f0_max}, {cents})")
        self.cents = cents
        self.f0_min = f0_min * 2.0 ** (-self.MARGIN * cents / 1200)  # the lowest class's pitch
        self.bins = int(math.ceil(1200 * math.log2(f0_max / f0_min) / cents)) + 1 + 2 * self.MARGIN

    def to_bin(self, f0: torch.Tensor) -> torch.Tensor:
        """Hz -> fractional class index (unclamped); f0 must be positive."""
        return 1200 * torch.log2(f0 / self.f0_min) / self.cents

    def to_hz(self, index: torch.Tensor) -> torch.Tensor:
        return self.f0_min * torch.pow(2.0, index * self.cents / 1200)

    def targets(self, f0: torch.Tensor, sigma_cents: float = 25.0) -> torch.Tensor:
        """F0 `[...]` in Hz (voiced frames only) -> a normalised Gaussian over the classes `[..., bins]`."""
        centre = self.to_bin(f0.clamp_min(self.f0_min)).clamp(0, self.bins - 1)[..., None]
        grid = torch.arange(self.bins, device=f0.device, dtype=torch.float32)
        weights = torch.exp(-0.5 * ((grid - centre) * (self.cents / sigma_cents)) ** 2)
        return weights / weights.sum(-1, keepdim=True)

    def decode(self, logits: torch.Tensor, radius: int = 4) -> torch.Tensor:
        """Logits over the classes `[..., bins]` -> F0 in Hz `[...]`: the softmax-weighted class
        index over the most likely class and `radius` neighbours on each side."""
        logits = logits.float()
        best = logits.argmax(-1, keepdim=True)
        window = best + torch.arange(-radius, radius + 1, device=logits.device)
        inside = (window >= 0) & (window < self.bins)  # the grid's ends have fewer neighbours
        chosen = logits.gather(-1, window.clamp(0, self.bins - 1)).masked_fill(~inside, float("-inf"))
        index = (torch.softmax(chosen, dim=-1) * window.to(chosen.dtype)).sum(-1)
        return self.to_hz(index)


def _per_sample(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """A curve per frame `[batch, frames]` -> per sample `[batch, frames * hop]`, linear between
    frame centres (frame k is centred on sample (k + 1/2) * hop, as `audio.stft` frames are), held
    beyond the first and last centre."""
    batch, count = frames.shape
    padded = torch.cat([frames[:, :1], frames, frames[:, -1:]], dim=1)  # centres at -hop/2 .. (count+1/2)*hop
    upsampled = F.interpolate(padded[:, None], size=(count + 2) * hop, mode="linear", align_corners=False)[:, 0]
    return upsampled[:, hop : hop + count * hop]


def excitation_phase(
    f0: torch.Tensor, hop: int, sample_rate: int, start: torch.Tensor | None = None, anchor: int = 0
) -> torch.Tensor:
    """The pulse train's phase in cycles per sample `[batch, frames * hop]` (float64): the running
    sum of the per-sample F0 `[batch, frames]` (Hz, floored at 1 Hz), `start` cycles `[batch]`
    (default 0) at sample `anchor`. Only the fractional part matters; float64 keeps it exact over hours."""
    per_sample = _per_sample(f0.double().clamp_min(1.0), hop)
    phase = torch.cumsum(per_sample / sample_rate, dim=-1)
    phase = phase - phase[:, anchor : anchor + 1]
    if start is not None:
        phase = phase + start.double()[:, None]
    return phase


def excitation_spectrum(
    f0: torch.Tensor, voicing: torch.Tensor, n_fft: int, hop: int, sample_rate: int, start: torch.Tensor | None = None
) -> torch.Tensor:
    """The pulse train's STFT `[batch, n_fft//2+1, frames]`, framed as `audio.stft` frames (frame k
    centred on sample (k + 1/2) * hop) and scaled so that a unit partial peaks at 1. Where
    `audio.stft` would pad the edges by reflection, the pulse train simply goes on (its F0 held),
    so no frame sees a partial turned back on itself."""
    pad = (n_fft - hop) // 2
    extra = -(-pad // hop)  # frames of held F0 before and after
    held = [
        torch.cat([curve[:, :1].expand(-1, extra), curve, curve[:, -1:].expand(-1, extra)], dim=1)
        for curve in (f0, voicing)
    ]
    pulses = harmonic_excitation(*held, hop, sample_rate, start, anchor=extra * hop)
    frames = f0.shape[-1]
    first = extra * hop - pad
    segment = pulses[:, first : first + (frames - 1) * hop + n_fft]
    window = torch.hann_window(n_fft, periodic=True, dtype=segment.dtype, device=segment.device)
    return torch.stft(segment, n_fft, hop, n_fft, window, center=False, return_complex=True) / (n_fft / 4)


def harmonic_excitation(
    f0: torch.Tensor,
    voicing: torch.Tensor,
    hop: int,
    sample_rate: int,
    start: torch.Tensor | None = None,
    anchor: int = 0,
) -> torch.Tensor:
    """F0 `[batch, frames]` in Hz and voicing `[batch, frames]` in [0, 1] -> a band-limited pulse
    train `[batch, frames * hop]` (float32): sum over harmonics h * f0 < sample_rate / 2 of
    cos(2 pi h phase), each at amplitude 1, times the voicing. The highest harmonic fades out
    linearly as it nears the Nyquist frequency, so a gliding F0 makes no clicks and nothing
    aliases. `start`: the phase in cycles at sample `anchor` (chunked vocoding carries it over)."""
    phase = excitation_phase(f0, hop, sample_rate, start, anchor)
    frequency = _per_sample(f0.double().clamp_min(1.0), hop)
    count = (sample_rate / 2) / frequency  # harmonics below Nyquist, fractional
    top = torch.ceil(count) - 1  # the highest harmonic below Nyquist (count is never whole in practice)
    fade = count - top  # in (0, 1]: 1 just after it entered, -> 0 as it reaches Nyquist
    theta = 2 * math.pi * (phase - torch.round(phase))  # in [-pi, pi]
    half = torch.sin(theta / 2)
    near_zero = half.abs() < 1e-9
    below = top - 1  # sum_{h=1}^{n} cos(h theta) = sin((n + 1/2) theta) / (2 sin(theta / 2)) - 1/2, or n at theta = 0
    dirichlet = torch.where(
        near_zero, below, torch.sin((below + 0.5) * theta) / (2 * torch.where(near_zero, 1.0, half)) - 0.5
    )
    pulses = dirichlet + fade.clamp(max=1.0) * torch.cos(top * theta)
    return (pulses * _per_sample(voicing.double().clamp(0, 1), hop)).float()
