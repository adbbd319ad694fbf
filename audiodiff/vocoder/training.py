"""One vocoder GAN training step: a discriminator update, then a generator update.

The trainer owns the loop, the data, EMA and checkpoints; it calls `gan_step` once per batch.
Both models may be wrapped in DistributedDataParallel: the discriminators see one forward per
backward (real and generated audio are batched together), and the generator update runs the
unwrapped discriminators with their parameters frozen, so no gradient is reduced for them.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from audiodiff.audio import MelSpec
from audiodiff.vocoder.losses import (
    LossWeights,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    mel_l1_loss,
    multi_resolution_stft_loss,
)

__all__ = ["gan_step"]


def gan_step(
    generator: nn.Module,
    discriminators: nn.Module,
    optim_g: torch.optim.Optimizer,
    optim_d: torch.optim.Optimizer,
    mel: torch.Tensor,
    audio: torch.Tensor,
    mel_spec: MelSpec,
    weights: LossWeights | None = None,
    *,
    adversarial: bool = True,
    autocast_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    max_grad_norm: float | None = None,
    loss_mel_spec: MelSpec | None = None,
) -> dict[str, float]:
    """Update the discriminators once, then the generator once; return the losses as floats.

    mel: normalised log-mel `[batch, n_mels, frames]`; audio: `[batch, 1, frames * hop]`.
    `adversarial=False` skips the discriminators (the mel-only warm-up before `discriminator_start`).
    `autocast_dtype` (e.g. torch.bfloat16) runs the networks under autocast; the mel and STFT losses
    stay in float32. Pass a `scaler` for float16. `loss_mel_spec` computes the mel loss with another
    analysis (HiFi-GAN used a full-band one); by default it is `mel_spec`.
    Keys: generator (total), mel, [stft], and with `adversarial`: discriminator, adversarial,
    feature_matching; `skipped_updates` counts updates skipped for a non-finite loss or gradient.
    """
    weights = weights or LossWeights()
    loss_mel_spec = loss_mel_spec or mel_spec
    if audio.dim() == 2:
        audio = audio[:, None]
    if audio.shape[-1] != mel.shape[-1] * mel_spec.hop_length:
        raise ValueError(
            f"gan_step: audio has {audio.shape[-1]} samples but the mel has {mel.shape[-1]} frames "
            f"x hop {mel_spec.hop_length}; crop the audio to frames * hop"
        )
    device_type = audio.device.type
    autocast = (
        torch.autocast(device_type, dtype=autocast_dtype) if autocast_dtype is not None else contextlib.nullcontext()
    )
    generator.train()
    discriminators.train()
    losses: dict[str, float] = {}
    skipped = 0

    with autocast:
        fake = generator(mel)

    if adversarial:
        optim_d.zero_grad(set_to_none=True)
        with autocast:
            logits, _ = discriminators(torch.cat([audio, fake.detach().to(audio.dtype)]))
        real_logits, fake_logits = _split(logits)
        loss_d = discriminator_loss(real_logits, fake_logits)
        skipped += not _update(loss_d, discriminators, optim_d, scaler, max_grad_norm)
        losses["discriminator"] = loss_d.item()

    optim_g.zero_grad(set_to_none=True)
    fake = fake.float()
    loss_mel = mel_l1_loss(fake, audio, loss_mel_spec)
    loss_g = weights.mel * loss_mel
    losses["mel"] = loss_mel.item()
    if weights.stft:
        loss_stft = multi_resolution_stft_loss(fake, audio)
        loss_g = loss_g + weights.stft * loss_stft
        losses["stft"] = loss_stft.item()
    if adversarial:
        plain = getattr(discriminators, "module", discriminators)  # bypass DDP: no reduction for frozen params
        plain.requires_grad_(False)
        try:
            with autocast:
                logits, features = plain(torch.cat([audio, fake.to(audio.dtype)]))
        finally:
            plain.requires_grad_(True)
        _, fake_logits = _split(logits)
        real_features, fake_features = zip(*(_split(maps) for maps in features))
        loss_adv = generator_adversarial_loss(fake_logits)
        loss_fm = feature_matching_loss(list(real_features), list(fake_features))
        loss_g = loss_g + weights.adversarial * loss_adv + weights.feature_matching * loss_fm
        losses["adversarial"] = loss_adv.item()
        losses["feature_matching"] = loss_fm.item()
    skipped += not _update(loss_g, generator, optim_g, scaler, max_grad_norm)
    if scaler is not None:
        scaler.update()
    losses["generator"] = loss_g.item()
    losses["skipped_updates"] = float(skipped)
    return losses


def _split(tensors: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each `[2 * batch, ...]` tensor -> (first half, second half): (real, generated)."""
    halves = [tensor.chunk(2) for tensor in tensors]
    return [real for real, _ in halves], [fake for _, fake in halves]


def _update(
    loss: torch.Tensor,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    max_grad_norm: float | None,
) -> bool:
    """Backward and step; False (and no step) if the loss or the gradient is not finite."""
    (scaler.scale(loss) if scaler is not None else loss).backward()
    if scaler is not None:
        scaler.unscale_(optimizer)
    params = [p for p in model.parameters() if p.grad is not None]
    norm = nn.utils.clip_grad_norm_(params, max_grad_norm if max_grad_norm else float("inf"))
    if not (torch.isfinite(norm) and torch.isfinite(loss.detach())):
        optimizer.zero_grad(set_to_none=True)
        return False
    if scaler is not None:
        scaler.step(optimizer)
    else:
        optimizer.step()
    return True
