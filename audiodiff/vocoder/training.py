"""One vocoder GAN training step: a discriminator update, then a generator update.

The trainer owns the loop, the data, EMA and checkpoints; it calls `gan_step` once per batch, and
both updates go through its `StepContext.backward` (grad scaler, `train.grad_clip`, the cross-rank
skip of a non-finite update).
Both models may be wrapped in DistributedDataParallel: the discriminators see one forward per
backward (real and generated audio are batched together), and the generator update runs the
unwrapped discriminators with their parameters frozen, so no gradient is reduced for them.
"""

from __future__ import annotations

import torch
from torch import nn

from audiodiff.audio import MelSpec
from audiodiff.config import TrainConfig, VocoderLossConfig
from audiodiff.train.trainer import StepContext, Trainer
from audiodiff.vocoder.losses import (
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    mel_l1_loss,
    multi_resolution_stft_loss,
    phase_losses,
)

__all__ = ["gan_step", "random_gain"]


def gan_step(
    generator: nn.Module,
    discriminators: nn.Module,
    optim_g: torch.optim.Optimizer,
    optim_d: torch.optim.Optimizer,
    inputs: torch.Tensor,
    audio: torch.Tensor,
    mel_spec: MelSpec,
    weights: VocoderLossConfig | None = None,
    *,
    adversarial: bool = True,
    autocast_dtype: torch.dtype | None = None,
    loss_mel_spec: MelSpec | None = None,
    ctx: StepContext | None = None,
    f0: torch.Tensor | None = None,
) -> dict[str, float]:
    """Update the discriminators once, then the generator once; return the losses as floats.

    inputs: what the generator takes: a vocoder's normalised log-mel `[batch, n_mels, frames]` of
    audio `[batch, 1, frames * hop]`, or an upsampler's band-limited audio of the same length.
    `adversarial=False` skips the discriminators (the mel-only warm-up before `discriminator_start`).
    `ctx` is the trainer's; without one (tests, notebooks) the step runs in one process, unclipped,
    with the networks under autocast to `autocast_dtype` (e.g. torch.bfloat16) if given. The mel and
    STFT losses stay in float32. `loss_mel_spec` computes the mel loss with another analysis
    (HiFi-GAN used a full-band one); by default it is `mel_spec`. `f0` `[batch, frames]` (Hz, 0
    unvoiced, NaN unknown) is the measured pitch a source-filter generator is driven by and learns
    to predict (`generator(mel, f0) -> (audio, pitch loss)`, weighted by `weights.pitch`).
    Keys: generator (total), mel, [stft], [phase], [pitch], and with `adversarial`: discriminator, adversarial,
    feature_matching; `skipped_updates` counts updates skipped for a non-finite loss or gradient.
    """
    weights = weights or VocoderLossConfig()
    loss_mel_spec = loss_mel_spec or mel_spec
    if audio.dim() == 2:
        audio = audio[:, None]
    if audio.shape[-1] % mel_spec.hop_length or inputs.shape[-1] not in (
        audio.shape[-1],
        audio.shape[-1] // mel_spec.hop_length,
    ):
        raise ValueError(
            f"gan_step: audio has {audio.shape[-1]} samples but the input has {inputs.shape[-1]} frames "
            f"x hop {mel_spec.hop_length}; crop the audio to frames * hop"
        )
    if ctx is None:
        ctx = StepContext(Trainer(None, TrainConfig(device=audio.device.type, precision="fp32", grad_clip=0.0)))
        ctx.trainer.amp_dtype = autocast_dtype
    generator.train()
    discriminators.train()
    losses: dict[str, float] = {}
    skipped = 0

    with ctx.autocast():
        fake, loss_pitch = (generator(inputs), None) if f0 is None else generator(inputs, f0)

    if adversarial:
        with ctx.autocast():
            logits, _ = discriminators(torch.cat([audio, fake.detach().to(audio.dtype)]))
        real_logits, fake_logits = _split(logits)
        loss_d = discriminator_loss(real_logits, fake_logits)
        skipped += not ctx.backward(loss_d, discriminators, optim_d)
        losses["discriminator"] = loss_d.item()

    fake = fake.float()
    loss_mel = mel_l1_loss(fake, audio, loss_mel_spec)
    loss_g = weights.mel * loss_mel
    losses["mel"] = loss_mel.item()
    if loss_pitch is not None:
        loss_g = loss_g + weights.pitch * loss_pitch.float()
        losses["pitch"] = loss_pitch.item()
    if weights.stft:
        loss_stft = multi_resolution_stft_loss(fake, audio)
        loss_g = loss_g + weights.stft * loss_stft
        losses["stft"] = loss_stft.item()
    if weights.phase:
        parts = phase_losses(fake, audio, mel_spec.n_fft, mel_spec.hop_length, mel_spec.win_length)
        loss_phase = parts["ip"] + parts["gd"] + parts["iaf"]
        loss_g = loss_g + weights.phase * loss_phase
        losses["phase"] = loss_phase.item()
    if adversarial:
        plain = getattr(discriminators, "module", discriminators)  # bypass DDP: no reduction for frozen params
        plain.requires_grad_(False)
        try:
            with ctx.autocast():
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
    skipped += not ctx.backward(loss_g, generator, optim_g)
    losses["generator"] = loss_g.item()
    losses["skipped_updates"] = float(skipped)
    return losses


def random_gain(audio: torch.Tensor, gain_db: list[float]) -> torch.Tensor:
    """Level augmentation: each segment of `audio` `[batch, ...]` at a gain drawn uniformly in dB
    from `gain_db` ([0, 0]: unchanged)."""
    low, high = gain_db
    if (low, high) == (0.0, 0.0):
        return audio
    shape = (audio.shape[0],) + (1,) * (audio.dim() - 1)
    decibels = torch.empty(shape, device=audio.device).uniform_(low, high)
    return audio * torch.pow(10.0, decibels / 20.0)


def _split(tensors: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each `[2 * batch, ...]` tensor -> (first half, second half): (real, generated)."""
    halves = [tensor.chunk(2) for tensor in tensors]
    return [real for real, _ in halves], [fake for _, fake in halves]
