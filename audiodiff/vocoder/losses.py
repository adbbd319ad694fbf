"""Vocoder losses: least-squares GAN, feature matching, mel L1, multi-resolution STFT.

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
