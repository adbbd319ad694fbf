"""Signal metrics: how far an estimate is from its reference, clip by clip.

Every function takes `estimate` and `reference` audio of the same shape `[..., samples]`
(e.g. `[batch, samples]` or `[samples]`) and returns one value per clip, shape `[...]`
(0-dim for a single clip); average with `.mean()` (or `.nanmean()` for the F0 metrics, which
are NaN where they are undefined). Distances are 0 for identical signals. Spectral frames are
compared one to one (no time warping), which is right for analysis-resynthesis evaluation.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch

from audiodiff.audio import MelSpec, stft

__all__ = [
    "DEFAULT_FMAX",
    "DEFAULT_FMIN",
    "STFT_RESOLUTIONS",
    "estimate_f0",
    "f0_metrics",
    "f0_rmse_cents",
    "log_spectral_distance",
    "mel_cepstral_distortion",
    "mel_l1",
    "multi_resolution_stft_distance",
    "voicing_f1",
]

STFT_RESOLUTIONS: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (2048, 512))
"""(n_fft, hop_length) pairs of the multi-resolution STFT distance."""

DEFAULT_FMIN = 65.0  # C2: below the lowest speaking voices and most bass melodies
DEFAULT_FMAX = 2093.0  # C7: above sung soprano and the fundamental of most instruments

_LOG_FLOOR = 1e-5  # magnitude floor before logs (-100 dB)


def _check_pair(estimate: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    estimate, reference = torch.as_tensor(estimate).float(), torch.as_tensor(reference).float()
    if estimate.shape != reference.shape:
        raise ValueError(
            f"estimate {list(estimate.shape)} and reference {list(reference.shape)} differ in shape; "
            "crop both to the same length first (e.g. audio[..., :n])"
        )
    if estimate.dim() == 0 or estimate.shape[-1] == 0:
        raise ValueError(f"expected audio [..., samples], got shape {list(estimate.shape)}")
    return estimate, reference


# --------------------------------------------------------------------------------------------
# Spectral distances


def multi_resolution_stft_distance(
    estimate: torch.Tensor,
    reference: torch.Tensor,
    resolutions: Sequence[tuple[int, int]] = STFT_RESOLUTIONS,
) -> torch.Tensor:
    """Spectral convergence + log-magnitude L1, averaged over STFT resolutions; `[...]`.

    Spectral convergence is ||S_ref - S_est||_F / ||S_ref||_F and the log term is the mean
    |ln S_ref - ln S_est| (Yamamoto et al. 2020, Parallel WaveGAN), per clip.
    """
    estimate, reference = _check_pair(estimate, reference)
    total = torch.zeros(estimate.shape[:-1])
    for n_fft, hop_length in resolutions:
        est = stft(estimate, n_fft, hop_length).abs().clamp_min(_LOG_FLOOR)
        ref = stft(reference, n_fft, hop_length).abs().clamp_min(_LOG_FLOOR)
        convergence = torch.linalg.vector_norm(ref - est, dim=(-2, -1)) / torch.linalg.vector_norm(ref, dim=(-2, -1))
        log_l1 = (ref.log() - est.log()).abs().mean(dim=(-2, -1))
        total = total + convergence + log_l1
    return total / len(resolutions)


def mel_l1(estimate: torch.Tensor, reference: torch.Tensor, mel_spec: MelSpec) -> torch.Tensor:
    """Mean |ln mel_ref - ln mel_est| of natural-log mel magnitudes (the HiFi-GAN validation
    "mel error"), floored at `mel_spec.log_floor`; `[...]`. Audio at `mel_spec.sample_rate`."""
    estimate, reference = _check_pair(estimate, reference)
    est = mel_spec.magnitude(estimate).clamp_min(mel_spec.log_floor).log()
    ref = mel_spec.magnitude(reference).clamp_min(mel_spec.log_floor).log()
    return (ref - est).abs().mean(dim=(-2, -1))


@functools.lru_cache(maxsize=8)
def _cepstral_basis(n_mels: int, num_coefficients: int) -> torch.Tensor:
    """`[n_mels, num_coefficients - 1]` cosine basis for c_1..c_{K-1} (c_0 dropped).

    Scaled so ln|H(m)| = c_0 + 2 * sum_k c_k cos(pi k (m + 1/2) / M): the cepstral convention
    that the MCD constant assumes.
    """
    m = torch.arange(n_mels, dtype=torch.float64) + 0.5
    k = torch.arange(1, num_coefficients, dtype=torch.float64)
    return (torch.cos(math.pi * m[:, None] * k[None, :] / n_mels) / n_mels).float()


def mel_cepstral_distortion(
    estimate: torch.Tensor, reference: torch.Tensor, mel_spec: MelSpec, num_coefficients: int = 13
) -> torch.Tensor:
    """Mel-cepstral distortion in dB, frame-aligned (no DTW), averaged over frames; `[...]`.

    MCD = (10 / ln 10) * sqrt(2 * sum_{k=1}^{K-1} (c_k - c'_k)^2) (Kubichek 1993), with c_k the
    DCT-II cepstrum of the natural-log mel magnitude; c_0 (overall level) is excluded.
    """
    estimate, reference = _check_pair(estimate, reference)
    if not 2 <= num_coefficients <= mel_spec.n_mels:
        raise ValueError(f"num_coefficients={num_coefficients}; use 2..n_mels ({mel_spec.n_mels})")
    basis = _cepstral_basis(mel_spec.n_mels, num_coefficients)
    est = mel_spec.magnitude(estimate).clamp_min(mel_spec.log_floor).log()
    ref = mel_spec.magnitude(reference).clamp_min(mel_spec.log_floor).log()
    diff = torch.einsum("...mt,mk->...tk", ref - est, basis)  # [..., frames, K-1]
    per_frame = (10.0 / math.log(10.0)) * torch.sqrt(2.0 * diff.pow(2).sum(-1))
    return per_frame.mean(-1)


def log_spectral_distance(
    estimate: torch.Tensor, reference: torch.Tensor, n_fft: int = 2048, hop_length: int = 512
) -> torch.Tensor:
    """Log-spectral distance in dB: per frame the RMS over frequency of the power-spectrum
    difference 10 log10 P_ref - 10 log10 P_est (floored at -100 dB), averaged over frames; `[...]`."""
    estimate, reference = _check_pair(estimate, reference)
    est = stft(estimate, n_fft, hop_length).abs().pow(2).clamp_min(1e-10).log10()
    ref = stft(reference, n_fft, hop_length).abs().pow(2).clamp_min(1e-10).log10()
    per_frame = (10.0 * (ref - est)).pow(2).mean(dim=-2).sqrt()  # [..., frames]
    return per_frame.mean(-1)


# --------------------------------------------------------------------------------------------
# Pitch


def _f0_frame_length(sample_rate: int, fmin: float) -> int:
    """Smallest power of two holding four periods of `fmin` (pYIN needs at least two)."""
    return 1 << math.ceil(math.log2(4 * sample_rate / fmin))


def estimate_f0(
    audio: torch.Tensor,
    sample_rate: int,
    fmin: float = DEFAULT_FMIN,
    fmax: float = DEFAULT_FMAX,
    hop_length: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """F0 in Hz and the voiced flag, both `[..., frames]`, from audio `[..., samples]` (pYIN).

    Unvoiced frames have f0 = NaN. The default range (C2..C7, 65..2093 Hz) covers speech and
    most music; narrow it for speed and fewer octave errors. `hop_length` defaults to a
    quarter of the analysis frame.
    """
    import librosa  # heavy import (numba); only the F0 metrics need it

    if not 0 < fmin < fmax <= sample_rate / 2:
        raise ValueError(f"need 0 < fmin < fmax <= sample_rate/2; got fmin={fmin}, fmax={fmax}, rate {sample_rate}")
    audio = torch.as_tensor(audio).float()
    frame_length = _f0_frame_length(sample_rate, fmin)
    hop_length = hop_length or frame_length // 4
    flat = audio.reshape(-1, audio.shape[-1]).cpu().numpy().astype(np.float64)
    if flat.shape[-1] < frame_length:
        flat = np.pad(flat, ((0, 0), (0, frame_length - flat.shape[-1])))
    f0, voiced, _ = librosa.pyin(
        flat, fmin=fmin, fmax=fmax, sr=sample_rate, frame_length=frame_length, hop_length=hop_length
    )
    f0 = torch.from_numpy(np.asarray(f0, dtype=np.float32))
    voiced = torch.from_numpy(np.asarray(voiced, dtype=bool))
    shape = (*audio.shape[:-1], f0.shape[-1])
    return f0.reshape(shape), voiced.reshape(shape)


def _rmse_cents(f0_est: torch.Tensor, f0_ref: torch.Tensor, both: torch.Tensor) -> torch.Tensor:
    cents = 1200.0 * torch.log2(f0_est / f0_ref)
    squared = torch.where(both, cents, torch.zeros_like(cents)).pow(2).sum(-1)
    count = both.sum(-1)
    return torch.where(count > 0, (squared / count.clamp_min(1)).sqrt(), torch.full_like(squared, math.nan))


def _f1(voiced_est: torch.Tensor, voiced_ref: torch.Tensor) -> torch.Tensor:
    true_pos = (voiced_est & voiced_ref).sum(-1).float()
    errors = (voiced_est ^ voiced_ref).sum(-1).float()  # false positives + false negatives
    denominator = 2 * true_pos + errors
    return torch.where(denominator > 0, 2 * true_pos / denominator.clamp_min(1), torch.ones_like(true_pos))


def f0_metrics(
    estimate: torch.Tensor,
    reference: torch.Tensor,
    sample_rate: int,
    fmin: float = DEFAULT_FMIN,
    fmax: float = DEFAULT_FMAX,
) -> dict[str, torch.Tensor]:
    """Both pitch metrics from one pYIN pass: {"f0_rmse_cents": [...], "vuv_f1": [...]}."""
    estimate, reference = _check_pair(estimate, reference)
    f0, voiced = estimate_f0(torch.stack([estimate, reference]), sample_rate, fmin, fmax)
    return {"f0_rmse_cents": _rmse_cents(f0[0], f0[1], voiced[0] & voiced[1]), "vuv_f1": _f1(voiced[0], voiced[1])}


def f0_rmse_cents(
    estimate: torch.Tensor,
    reference: torch.Tensor,
    sample_rate: int,
    fmin: float = DEFAULT_FMIN,
    fmax: float = DEFAULT_FMAX,
) -> torch.Tensor:
    """RMS of 1200 log2(f0_est / f0_ref) in cents over frames voiced in both; NaN where no
    frame is; `[...]`."""
    return f0_metrics(estimate, reference, sample_rate, fmin, fmax)["f0_rmse_cents"]


def voicing_f1(
    estimate: torch.Tensor,
    reference: torch.Tensor,
    sample_rate: int,
    fmin: float = DEFAULT_FMIN,
    fmax: float = DEFAULT_FMAX,
) -> torch.Tensor:
    """F1 of the estimate's voiced frames against the reference's (voiced = positive class);
    1.0 when neither has a voiced frame; `[...]`."""
    return f0_metrics(estimate, reference, sample_rate, fmin, fmax)["vuv_f1"]
