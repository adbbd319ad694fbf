"""The mel autoencoder training task: mel segments in, their reconstruction out, trained with L1,
multi-scale L1 (the two mels average-pooled on both axes) and a small KL term; the running
variance of the latents gives the checkpoint's latent scale. Previews show real mels beside
their reconstructions."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from audiodiff.config import AutoencoderRunConfig, TrainConfig, to_dict
from audiodiff.data.dataset import collate, make_dataset, scan_items
from audiodiff.latent import Autoencoder, checkpoint_config
from audiodiff.models.autoencoder import MelAutoencoder, kl_divergence
from audiodiff.train.trainer import StepContext, adamw

__all__ = ["AutoencoderTask", "reconstruction_losses"]


def reconstruction_losses(
    reconstruction: torch.Tensor, mel: torch.Tensor, scales: list[int]
) -> dict[str, torch.Tensor]:
    """L1 at full resolution, and the mean L1 of both average-pooled by each of `scales`."""
    coarse = [
        F.l1_loss(F.avg_pool2d(reconstruction, s, ceil_mode=True), F.avg_pool2d(mel, s, ceil_mode=True)) for s in scales
    ]
    return {
        "l1": F.l1_loss(reconstruction, mel),
        "multiscale": torch.stack(coarse).mean() if coarse else reconstruction.new_zeros(()),
    }


class AutoencoderTask:
    def __init__(self, config: AutoencoderRunConfig, verbose: bool = True):
        self.config = config
        items, self.report = scan_items(config.data)
        if verbose:
            print(self.report, file=sys.stderr)
        self.dataset = make_dataset(items, config.data, config.mel)
        self.num_workers = config.data.num_workers

    def collate(self, rows: list[dict]) -> dict:
        return collate(rows)

    def build(self, device: torch.device, cfg: TrainConfig) -> None:
        self.device = device
        self.model = MelAutoencoder(self.config.model).to(device)
        self.net: nn.Module = self.model
        self.optimizer = adamw(self.model.parameters(), cfg)
        self.modules = {"model": self.model}
        self.optimizers = {"model": self.optimizer}
        self.ema_module = self.model

    def wrap(self, wrap_fn) -> None:
        self.net = wrap_fn(self.model)

    def _crop(self, mel: torch.Tensor) -> torch.Tensor:
        """Whole latent frames only: the frames cut down to a multiple of time_down."""
        frames = mel.shape[-1] // self.config.model.time_down * self.config.model.time_down
        return mel[..., :frames]

    def train_step(self, batch: dict, ctx: StepContext) -> dict[str, float]:
        mel = self._crop(batch["x"].to(self.device, non_blocking=True))
        weights = self.config.loss
        with ctx.autocast():
            reconstruction, mean, logvar, latent = self.net(mel, ctx.generator)
        losses = reconstruction_losses(reconstruction.float(), mel, weights.scales)
        losses["kl"] = kl_divergence(mean.float(), logvar.float())
        loss = weights.l1 * losses["l1"] + weights.multiscale * losses["multiscale"] + weights.kl * losses["kl"]
        ctx.backward(loss, self.model, self.optimizer)
        self.model.track_latent_var(latent, ctx.step)
        return {
            "loss": float(loss.detach()),
            **{f"{name}_loss": float(value.detach()) for name, value in losses.items()},
            "latent_std": float(self.model.latent_var.sqrt()),
        }

    def export_config(self) -> dict:
        info = {"recipe": to_dict(self.config), "dataset": self.report.to_dict()}
        return checkpoint_config(self.config.model, self.config.mel, self.model.latent_scale(), info)

    @torch.no_grad()
    def preview(self, module: nn.Module, out_dir: Path, step: int) -> None:
        """Real mels above their reconstructions (one PNG) and the mean L1."""
        from audiodiff.plots import plot_mels

        autoencoder = Autoencoder(module, self.config.mel, module.latent_scale())
        reals, rebuilt = [], []
        for index in range(min(4, len(self.dataset))):
            mel = self._crop(self.dataset[index]["x"][None].to(self.device))
            reals.append(mel[0, 0].cpu())
            rebuilt.append(autoencoder.round_trip(mel)[0, 0].cpu())
        module.train()
        distance = sum(float((a - b).abs().mean()) for a, b in zip(reals, rebuilt)) / max(1, len(reals))
        titles = [f"real {i}" for i in range(len(reals))] + [
            f"through the autoencoder {i} (step {step})" for i in range(len(reals))
        ]
        out_dir.mkdir(parents=True, exist_ok=True)
        plot_mels(reals + rebuilt, out_dir / "reconstructions.png", titles, columns=max(1, len(reals)))
        (out_dir / "mel_l1.txt").write_text(f"{distance:.4f}\n")
