"""Latent diffusion's first stage: a trained mel autoencoder, for inference.

    from audiodiff.latent import Autoencoder
    ae = Autoencoder.from_pretrained("runs/mel-vae-16k")
    latent = ae.encode(mel)          # scaled by the checkpoint's latent_scale: unit variance over the training set
    mel_again = ae.decode(latent, frames=mel.shape[-1])

A checkpoint is a directory like every other (config.json + model.safetensors, written
atomically, loaded without executing anything from it); its config.json holds the MelSpec, the
architecture and the latent scale.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from audiodiff.audio import MelSpec
from audiodiff.bundled import bundled_autoencoders, find_checkpoint
from audiodiff.checkpoint import CONFIG, WEIGHTS, CheckpointError, check_top_level, load_state_dict, read_json
from audiodiff.config import ConfigError, from_dict, to_dict
from audiodiff.models.autoencoder import AutoencoderModelConfig, MelAutoencoder

__all__ = ["Autoencoder", "CONFIG_KEYS", "checkpoint_config"]

MAX_PARAMETERS = 500_000_000  # a config asking for more is corrupt, not a model
CONFIG_KEYS = ("kind", "mel", "model", "latent_scale", "dataset", "recipe", "training", "source", "metrics")


def checkpoint_config(
    model: AutoencoderModelConfig, mel_spec: MelSpec, latent_scale: float, info: dict | None = None
) -> dict:
    """An autoencoder checkpoint's config.json (the one writer: the training task and save_pretrained)."""
    extra = {
        k: v for k, v in (info or {}).items() if k in CONFIG_KEYS and k not in ("kind", "mel", "model", "latent_scale")
    }
    return {
        "kind": Autoencoder.kind,
        "mel": mel_spec.to_dict(),
        "model": to_dict(model),
        "latent_scale": float(latent_scale),
        **extra,
    }


class Autoencoder:
    """A trained mel autoencoder for inference: scaled latents in, mels out."""

    kind = "autoencoder"

    def __init__(self, model: MelAutoencoder, mel_spec: MelSpec, latent_scale: float = 1.0, info: dict | None = None):
        self.model = model.eval()
        self.mel_spec = mel_spec
        self.latent_scale = float(latent_scale)
        self.info = info or {}

    @property
    def config(self) -> AutoencoderModelConfig:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device) -> Autoencoder:
        self.model.to(device)
        return self

    def latent_shape(self, bands: int, frames: int) -> tuple[int, int, int]:
        """The latent `[channels, bands, frames]` of a mel of `bands` x `frames` (frames padded up)."""
        time = self.config.time_down
        return self.config.latent_channels, bands // self.config.freq_down, -(-frames // time)

    @torch.no_grad()
    def encode(self, mel: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Scaled latents of normalised log-mels `[batch, 1, bands, frames]`; frames are padded
        with silence (-1) up to a multiple of `time_down`. The posterior mean unless `sample`."""
        time = self.config.time_down
        pad = (-mel.shape[-1]) % time
        if pad:
            mel = F.pad(mel, (0, pad), value=-1.0)
        mean, logvar = self.model.posterior(mel.to(self.device, torch.float32))
        if sample:
            mean = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=generator, device=mean.device)
        return mean * self.latent_scale

    @torch.no_grad()
    def decode(self, latent: torch.Tensor, frames: int | None = None) -> torch.Tensor:
        """Normalised log-mels from scaled latents, cut to `frames` when given."""
        mel = self.model.decode(latent.to(self.device, torch.float32) / self.latent_scale)
        return mel[..., :frames] if frames is not None else mel

    def round_trip(self, mel: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(mel), mel.shape[-1])

    def digest(self) -> str:
        """A short hash of the weights and the latent scale (the feature cache's key for latents)."""
        hasher = hashlib.sha1(repr(self.latent_scale).encode())
        for name, tensor in sorted(self.model.state_dict().items()):
            hasher.update(name.encode())
            hasher.update(tensor.detach().float().cpu().numpy().tobytes())
        return hasher.hexdigest()[:16]

    def check_joins(self, mel_spec: MelSpec, in_channels: int, where: str, channels: int = 1) -> None:
        """Refuse a diffusion model whose MelSpec or input channels (`channels` audio channels, each
        its own latents) do not match these latents."""
        differences = mel_spec.diff(self.mel_spec)
        if differences:
            raise ConfigError(
                f"{where}: the model and its autoencoder use different mel settings ({'; '.join(differences)}); "
                "set `mel:` to the autoencoder's, or train an autoencoder with this MelSpec"
            )
        expected = self.config.latent_channels * channels
        if in_channels != expected:
            per = f" for {channels} audio channels" if channels > 1 else ""
            raise ConfigError(
                f"{where}: model.in_channels={in_channels}, but the autoencoder's latents have "
                f"{self.config.latent_channels} channels{per}; set model.in_channels={expected}"
            )

    # -- checkpoints

    def checkpoint_config(self) -> dict:
        return checkpoint_config(self.config, self.mel_spec, self.latent_scale, self.info)

    def save_pretrained(self, path: str | os.PathLike, dtype: torch.dtype = torch.float32) -> Path:
        """config.json + model.safetensors; `dtype=torch.float16` halves the file (it loads back as float32)."""
        from audiodiff.checkpoint import save_tensors, write_checkpoint, write_json

        state = {
            k: v.detach().cpu().to(dtype if v.is_floating_point() else v.dtype).contiguous()
            for k, v in self.model.state_dict().items()
        }
        config = self.checkpoint_config()

        def write(folder: Path) -> None:
            write_json(folder / CONFIG, config)
            save_tensors(folder / WEIGHTS, state)

        return write_checkpoint(path, write)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str = "cpu") -> Autoencoder:
        """A bundled autoencoder's name, an autoencoder checkpoint or a run directory."""
        folder = find_checkpoint(path, lambda: f"bundled autoencoders: {bundled_autoencoders()}")
        config = read_json(folder / CONFIG)
        if config.get("kind") != cls.kind:
            raise CheckpointError(
                f"{folder / CONFIG}: kind={config.get('kind')!r}; an autoencoder checkpoint has kind 'autoencoder'"
            )
        check_top_level(config, CONFIG_KEYS, folder / CONFIG)
        try:
            mel_spec = MelSpec.from_dict(config["mel"])
            model_config = from_dict(AutoencoderModelConfig, config.get("model"), "model")
            scale = float(config.get("latent_scale", 1.0))
        except (KeyError, TypeError, ValueError, ConfigError) as error:
            raise CheckpointError(f"{folder / CONFIG}: bad 'mel', 'model' or 'latent_scale' ({error})") from None
        if not (math.isfinite(scale) and scale > 0):
            raise CheckpointError(f"{folder / CONFIG}: latent_scale={scale} must be a positive number")
        if mel_spec.n_mels % model_config.freq_down:
            raise CheckpointError(
                f"{folder / CONFIG}: {mel_spec.n_mels} mel bands do not divide by model.freq_down={model_config.freq_down}"
            )
        with torch.device("meta"):
            size = sum(p.numel() for p in MelAutoencoder(model_config).parameters())
        if size > MAX_PARAMETERS:
            raise CheckpointError(
                f"{folder / CONFIG}: an autoencoder of {size / 1e9:.1f}B parameters is absurd; the config is corrupt"
            )
        model = MelAutoencoder(model_config)
        load_state_dict(folder / WEIGHTS, model)
        info = {k: v for k, v in config.items() if k not in ("kind", "mel", "model", "latent_scale")} | {
            "path": str(folder)
        }
        return cls(model.to(device), mel_spec, scale, info)
