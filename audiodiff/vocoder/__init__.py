"""Vocoders: normalised log-mel `[batch, n_mels, frames]` -> audio `[batch, 1, frames * hop]`.

`Vocoder` is the one interface; `GriffinLimVocoder` needs no training and is the baseline;
`GANVocoder` wraps a trained generator (see `generators`). Both load with
`Vocoder.from_pretrained(dir)` and carry their `mel_spec`, so a diffusion model and a vocoder can
be checked for compatibility before they are joined.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn

from audiodiff.audio import MelSpec, griffin_lim

__all__ = ["Vocoder", "GriffinLimVocoder", "VocoderError", "check_compatible"]


class VocoderError(ValueError):
    """A vocoder that cannot be used with this mel; the message names the fields."""


class Vocoder(nn.Module):
    """Base class: subclasses implement `generate(mel) -> audio` for a checked mel."""

    kind = "base"

    def __init__(self, mel_spec: MelSpec):
        super().__init__()
        self.mel_spec = mel_spec

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        mel = self.mel_spec.check_mel(mel, name="vocoder input")
        with torch.inference_mode():
            return self.generate(mel).clamp(-1.0, 1.0)

    def generate(self, mel: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def config(self) -> dict:
        return {"kind": self.kind, "mel": self.mel_spec.to_dict()}

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, mel_spec: MelSpec | None = None) -> "Vocoder":
        """A vocoder checkpoint directory, "griffin_lim" (with `mel_spec`), or a bundled name."""
        from audiodiff.vocoder.loading import load_vocoder

        return load_vocoder(path, mel_spec)


class GriffinLimVocoder(Vocoder):
    """Fast Griffin-Lim on the pseudo-inverse of the mel filterbank; no weights."""

    kind = "griffin_lim"

    def __init__(self, mel_spec: MelSpec, num_iters: int = 32):
        super().__init__(mel_spec)
        self.num_iters = num_iters

    def generate(self, mel: torch.Tensor) -> torch.Tensor:
        return griffin_lim(mel, self.mel_spec, self.num_iters)

    def config(self) -> dict:
        return super().config() | {"num_iters": self.num_iters}


def check_compatible(model_spec: MelSpec, vocoder: Vocoder, model_name: str = "the diffusion model") -> None:
    """Refuse to join a model and a vocoder whose MelSpecs differ, naming the fields."""
    differences = model_spec.diff(vocoder.mel_spec)
    if differences:
        raise VocoderError(
            f"{model_name} and the vocoder use different mel settings ({'; '.join(differences)}); "
            "use a vocoder trained with the model's MelSpec, or Griffin-Lim"
        )
