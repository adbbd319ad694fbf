"""Vocoder losses: least-squares GAN, feature matching, mel L1, multi-resolution STFT, and
APNet's anti-wrapping phase losses.

Audio is `[batch, 1, samples]` (or `[batch, samples]`); logits and feature maps are the lists a
`Discriminators` returns. Each loss is an unweighted scalar; `gan_step` weights them by a
`VocoderLossConfig` (the `loss` section of a vocoder recipe), also known here as `LossWeights`.
"""

from __future__ import annotations

import torch

from audiodiff.audio import MelSpec, stft
from audiodiff.config import VocoderLossConfig as LossWeights

__all__ = [
    "LossWeights",
    "discriminator_loss",
    "feature_matching_loss",
    "generator_adversarial_loss",
    "mel_l1_loss",
    "multi_resolution_stft_loss",
    "anti_wrapping",
    "phase_losses",
]


def discriminator_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """Least-squares GAN: push real logits to 1 and fake ones to 0, summed over sub-discriminators."""
    total = real_logits[0].new_zeros(())
    for real, fake in zip(real_logits, fake_logits, strict=True):
        total = total + torch.mean((1.0 - real.float()) ** 2) + torch.mean(fake.float() ** 2)
    return total


def generator_adversarial_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """Least-squares GAN for the generator: push fake logits to 1, summed over sub-discriminators."""
    total = fake_logits[0].new_zeros(())
    for fake in fake_logits:
        total = total + torch.mean((1.0 - fake.float()) ** 2)
    return total


def feature_matching_loss(
    real_features: list[list[torch.Tensor]], fake_features: list[list[torch.Tensor]]
) -> torch.Tensor:
    """L1 between the discriminators' activations on real and generated audio, summed over layers."""
    total = real_features[0][0].new_zeros((), dtype=torch.float32)
    for real_maps, fake_maps in zip(real_features, fake_features, strict=True):
        for real, fake in zip(real_maps, fake_maps, strict=True):
            total = total + torch.mean(torch.abs(real.detach().float() - fake.float()))
    return total


def mel_l1_loss(fake_audio: torch.Tensor, real_audio: torch.Tensor, mel_spec: MelSpec) -> torch.Tensor:
    """L1 between natural-log mel magnitudes (floored at `mel_spec.log_floor`), HiFi-GAN's convention.

    Uses the unnormalised log-mel, so the x45 weight means what it does in the paper.
    """
    fake = torch.log(mel_spec.magnitude(_mono(fake_audio).float()).clamp_min(mel_spec.log_floor))
    real = torch.log(mel_spec.magnitude(_mono(real_audio).float()).clamp_min(mel_spec.log_floor))
    return torch.nn.functional.l1_loss(fake, real)


STFT_RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))  # (n_fft, hop, win), Parallel WaveGAN


def multi_resolution_stft_loss(
    fake_audio: torch.Tensor,
    real_audio: torch.Tensor,
    resolutions: tuple[tuple[int, int, int], ...] = STFT_RESOLUTIONS,
    eps: float = 1e-7,
) -> torch.Tensor:
    """Spectral convergence + L1 log magnitude, averaged over STFT resolutions (n_fft, hop, win)."""
    fake_audio, real_audio = _mono(fake_audio).float(), _mono(real_audio).float()
    total = fake_audio.new_zeros(())
    for n_fft, hop_length, win_length in resolutions:
        fake = stft(fake_audio, n_fft, hop_length, win_length).abs().clamp_min(eps)
        real = stft(real_audio, n_fft, hop_length, win_length).abs().clamp_min(eps)
        convergence = torch.linalg.norm(real - fake) / torch.linalg.norm(real).clamp_min(eps)
        log_magnitude = torch.nn.functional.l1_loss(torch.log(fake), torch.log(real))
        total = total + convergence + log_magnitude
    return total / len(resolutions)


def _mono(audio: torch.Tensor) -> torch.Tensor:
    """`[batch, 1, samples]` -> `[batch, samples]`; `[batch, samples]` passes through."""
    return audio[:, 0] if audio.dim() == 3 else audio


def anti_wrapping(x: torch.Tensor) -> torch.Tensor:
    """APNet's f_AW(x) = |x - 2 pi round(x / 2 pi)|: the distance of a phase difference from the
    nearest whole turn, so that phases 2 pi apart count as equal."""
    return torch.abs(x - 2 * torch.pi * torch.round(x / (2 * torch.pi)))


def phase_losses(
    fake_audio: torch.Tensor, real_audio: torch.Tensor, n_fft: int, hop_length: int, win_length: int | None = None
) -> dict[str, torch.Tensor]:
    """APNet's three phase losses (Ai & Ling 2023, "APNet: an all-frame-level neural vocoder
    incorporating direct prediction of amplitude and phase spectra", eqs. 8-10), between the STFT
    phases of generated and real audio: instantaneous phase (`ip`: the phases themselves), group
    delay (`gd`: their differences along frequency) and instantaneous angular frequency (`iaf`:
    along time), each the mean anti-wrapped difference. Magnitude losses leave phase free; these
    teach a generator coherent phase without a discriminator. Computed on the STFT of the waveform,
    so they apply to any generator (APNet takes them on its predicted phase spectrum, which the
    ISTFT generator's STFT reproduces where the spectrum is consistent)."""
    fake = torch.angle(stft(_mono(fake_audio).float(), n_fft, hop_length, win_length))
    real = torch.angle(stft(_mono(real_audio).float(), n_fft, hop_length, win_length))
    return {
        "ip": anti_wrapping(fake - real).mean(),
        "gd": anti_wrapping(torch.diff(fake, dim=-2) - torch.diff(real, dim=-2)).mean(),
        "iaf": anti_wrapping(torch.diff(fake, dim=-1) - torch.diff(real, dim=-1)).mean(),
    }
