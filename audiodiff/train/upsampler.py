"""The upsampler training task: full-band audio segments, the same segments band-limited to the
input rate, a `BandwidthExtender` and the vocoders' discriminators, one `gan_step` per batch."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
import torch.nn as nn

from audiodiff.audio import save_audio
from audiodiff.config import TrainConfig, UpsamplerRunConfig, to_dict
from audiodiff.data.dataset import make_dataset, scan_items
from audiodiff.plots import plot_spectrograms
from audiodiff.train.trainer import StepContext
from audiodiff.train.vocoder import GANTask
from audiodiff.upsampler import BandwidthExtender, Upsampler, band_limit, log_spectral_distance
from audiodiff.vocoder.training import gan_step, random_gain

__all__ = ["UpsamplerTask"]


class UpsamplerTask(GANTask):
    def __init__(self, config: UpsamplerRunConfig, verbose: bool = True):
        self.config = config
        items, self.report = scan_items(config.data)
        if verbose:
            print(self.report, file=sys.stderr)
        self.dataset = make_dataset(items, config.data, None)
        self.num_workers = config.data.num_workers
        self.preview_items = items[:: max(1, len(items) // 4)][:4]
        self.multiple = math.lcm(config.mel.hop_length, config.model.hop_length)  # segments are whole frames of both

    def build(self, device: torch.device, cfg: TrainConfig) -> None:
        config = self.config
        self.device = device
        self.generator = BandwidthExtender(config.model).to(device)
        self.join_discriminators(config.discriminators, config.discriminator_options, device, cfg)

    def _crop(self, audio: torch.Tensor) -> torch.Tensor:
        return audio[..., : audio.shape[-1] // self.multiple * self.multiple]

    def train_step(self, batch: dict, ctx: StepContext) -> dict[str, float]:
        config = self.config
        audio = self._crop(batch["x"].to(self.device))  # [batch, 1, samples]
        audio = random_gain(audio, config.gain_db)  # level augmentation, one gain per segment
        narrow = band_limit(audio, config.model.sample_rate, config.model.input_rate)
        losses = gan_step(
            self.g_net,
            self.d_net,
            self.optim_g,
            self.optim_d,
            narrow,
            audio,
            config.mel,
            config.loss,
            adversarial=ctx.step >= config.loss.discriminator_start,
            ctx=ctx,
        )
        losses.pop("skipped_updates")  # ctx.backward has told the trainer (bad_step)
        return losses

    def export_config(self) -> dict:
        info = {"recipe": to_dict(self.config), "dataset": self.report.to_dict()}
        return Upsampler(self.generator, info).config()

    @torch.no_grad()
    def preview(self, module: nn.Module, out_dir: Path, step: int) -> None:
        """Clips as band-limited, as extended, and as recorded (wavs), a spectrogram grid, and the
        log-spectral distance over the added band of both."""
        model = self.config.model
        upsampler = Upsampler(module)
        out_dir.mkdir(parents=True, exist_ok=True)
        clips, titles, lines = [], [], []
        for index, item in enumerate(self.preview_items):
            audio = self._crop(self.dataset.loader.segment(item, seed=index)[None].to(self.device))
            narrow = band_limit(audio, model.sample_rate, model.input_rate)
            extended = upsampler.model(narrow)
            plain, ours = (
                log_spectral_distance(x, audio, model.sample_rate, model.input_rate / 2) for x in (narrow, extended)
            )
            for name, clip in (("input", narrow), ("upsampled", extended), ("real", audio)):
                save_audio(out_dir / f"{name}_{index}.wav", clip[0].cpu(), model.sample_rate)
            clips += [narrow[0].cpu(), extended[0].cpu(), audio[0].cpu()]
            titles += [
                f"band-limited {index} (LSD {plain:.2f})",
                f"upsampled {index} (LSD {ours:.2f})",
                f"real {index}",
            ]
            lines.append(f"{plain:.4f} {ours:.4f}")
        plot_spectrograms(clips, model.sample_rate, out_dir / "spectrograms.png", titles, columns=3)
        (out_dir / "lsd.txt").write_text("plain upsampled\n" + "\n".join(lines) + "\n")
        module.train()
