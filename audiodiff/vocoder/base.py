"""The vocoder interface, Griffin-Lim, and loading by kind: `VOCODER_KINDS` maps a config's
`kind` to a loader; `gan.py` adds its own entry, so this module imports no vocoder of its own."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn

from audiodiff.audio import MelSpec, griffin_lim
from audiodiff.bundled import bundled_vocoders, find_checkpoint
from audiodiff.checkpoint import CONFIG, CheckpointError, check_top_level, read_json
from audiodiff.errors import UserError

__all__ = ["Vocoder", "GriffinLimVocoder", "VocoderError", "check_compatible", "VOCODER_KINDS"]


class VocoderError(UserError, ValueError):
    """A vocoder that cannot be used with this mel; the message names the fields."""


class Vocoder(nn.Module):
    """Base class: subclasses implement `generate(mel) -> audio` for a checked mel."""

    kind = "base"

    def __init__(self, mel_spec: MelSpec):
        super().__init__()
        self.mel_spec = mel_spec

    def forward(self, mel: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        """A checked mel `[batch, n_mels, frames]` -> audio `[batch, 1, frames * hop]`, clamped to
        [-1, 1] unless `clamp=False` (the pipeline scales loud clips down instead)."""
        mel = self.mel_spec.check_mel(mel, name="vocoder input")
        with torch.inference_mode():
            audio = self.generate(mel)
        return audio.clamp(-1.0, 1.0) if clamp else audio

    def generate(self, mel: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def round_trip(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio `[batch, samples]` -> its mel -> audio `[batch, 1, frames * hop]`: what the mel keeps."""
        return self(self.mel_spec(audio))

    def config(self) -> dict:
        return {"kind": self.kind, "mel": self.mel_spec.to_dict()}

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, mel_spec: MelSpec | None = None) -> Vocoder:
        """A vocoder checkpoint directory, "griffin_lim" (with `mel_spec`), or a bundled name."""
        if str(path) == "griffin_lim":
            if mel_spec is None:
                raise VocoderError("Griffin-Lim needs the MelSpec of the mels it will invert")
            return GriffinLimVocoder(mel_spec)
        folder = find_checkpoint(path, lambda: f"bundled vocoders: {bundled_vocoders()}, or griffin_lim")
        config = read_json(folder / CONFIG)
        kind = config.get("kind")
        if kind not in VOCODER_KINDS:
            raise CheckpointError(
                f"{folder / CONFIG}: kind={kind!r} is not a vocoder; known kinds are {sorted(VOCODER_KINDS)}"
            )
        load, keys = VOCODER_KINDS[kind]
        check_top_level(config, keys, folder / CONFIG)
        try:
            spec = MelSpec.from_dict(config["mel"])
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{folder / CONFIG}: bad or missing 'mel' section ({error})") from None
        return load(folder, config, spec)


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


# kind -> (loader(folder, config, mel_spec), the top-level keys its config.json may hold)
VOCODER_KINDS: dict[str, tuple[Callable[[Path, dict, MelSpec], Vocoder], tuple[str, ...]]] = {
    "griffin_lim": (
        lambda folder, config, mel_spec: GriffinLimVocoder(mel_spec, int(config.get("num_iters", 32))),
        ("kind", "mel", "num_iters"),
    ),
}


def check_compatible(model_spec: MelSpec, vocoder: Vocoder, model_name: str = "the diffusion model") -> None:
    """Refuse to join a model and a vocoder whose MelSpecs differ, naming the fields."""
    differences = model_spec.diff(vocoder.mel_spec)
    if differences:
        raise VocoderError(
            f"{model_name} and the vocoder use different mel settings ({'; '.join(differences)}); "
            "use a vocoder trained with the model's MelSpec, or Griffin-Lim"
        )
