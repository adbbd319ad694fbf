"""`GANVocoder`: a trained generator (HiFi-GAN or ISTFT) behind the `Vocoder` interface.

A checkpoint directory holds `config.json` ({"kind": "gan", "generator": name,
"generator_config": {...}, "mel": {...}, "folded": bool}) and `model.safetensors`. Weights are
saved in training form (weight norm) unless `folded`; loading folds them for inference.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from audiodiff.audio import MelSpec, match_mel
from audiodiff.checkpoint import (
    CONFIG,
    INFO_KEYS,
    WEIGHTS,
    CheckpointError,
    load_state_dict,
    write_model,
)
from audiodiff.vocoder.base import VOCODER_KINDS, Vocoder
from audiodiff.vocoder.generators import GENERATORS, Generator, build_generator

__all__ = ["GANVocoder"]

MAX_GENERATOR_PARAMETERS = 500_000_000


class GANVocoder(Vocoder):
    """A trained generator. Long mels are vocoded in chunks of `chunk_frames` with
    `context_frames` of mel on each side that are vocoded and thrown away: the generator reaches
    about 14 frames each way (measured on vocoder-16k), so with 32 the chunks join seamlessly
    (equal to the whole within float rounding) and memory stays bounded whatever the length."""

    kind = "gan"
    chunk_frames = 1024
    context_frames = 32
    MAX_MATCH_MEL = 64

    def __init__(self, generator: Generator, info: dict | None = None, match_mel: int = 0):
        super().__init__(generator.mel_spec)
        self.generator = generator.eval()
        self.info = info or {}
        self.folded = False
        if not (isinstance(match_mel, int) and 0 <= match_mel <= self.MAX_MATCH_MEL):
            raise ValueError(
                f"match_mel={match_mel!r}: passes of mel matching, a whole number from 0 to {self.MAX_MATCH_MEL}"
            )
        self.match_mel = match_mel  # passes of `audio.match_mel` after the generator (0 = none)

    def generate(self, mel: torch.Tensor) -> torch.Tensor:
        mel = mel.to(next(self.generator.parameters()).device)
        audio = self._generate(mel)
        return match_mel(audio, mel, self.mel_spec, self.match_mel) if self.match_mel else audio

    def _generate(self, mel: torch.Tensor) -> torch.Tensor:
        frames, chunk, context = mel.shape[-1], self.chunk_frames, self.context_frames
        if frames <= chunk + 2 * context:
            return self.generator(mel)
        hop = self.mel_spec.hop_length
        carries_phase = getattr(self.generator, "carries_phase", False)
        state = None  # a phase-carrying generator's phase at `start` (see its `render_chunk`)
        pieces = []
        for start in range(0, frames, chunk):
            end = min(frames, start + chunk)
            low, high = max(0, start - context), min(frames, end + context)
            if carries_phase:  # this chunk's phase continues the last one's at `start`
                audio, state = self.generator.render_chunk(mel[..., low:high], start - low, end - low, state)
            else:
                audio = self.generator(mel[..., low:high])
            pieces.append(audio[..., (start - low) * hop : (end - low) * hop])
        return torch.cat(pieces, dim=-1)

    def fold(self) -> GANVocoder:
        """Fold weight norm into the weights (faster inference; cannot be trained further)."""
        if not self.folded:
            self.generator.remove_weight_norm()
            self.folded = True
        return self

    def config(self) -> dict:
        """The checkpoint's config.json: the one writer of it (save_pretrained, the training task)."""
        return super().config() | {
            "generator": self.generator.name,
            "generator_config": self.generator.config,
            "folded": self.folded,
            "match_mel": self.match_mel,
            **{k: v for k, v in self.info.items() if k not in ("path",)},
        }

    def save_pretrained(self, path: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
        """config.json + model.safetensors; `dtype=torch.float16` halves the file (loads as float32)."""
        return write_model(path, self.config(), self.generator.state_dict(), dtype)

    @classmethod
    def from_folder(cls, folder: Path, config: dict, mel_spec: MelSpec) -> GANVocoder:
        name = config.get("generator")
        if name not in GENERATORS:
            raise CheckpointError(f"{folder / CONFIG}: generator={name!r}; known generators are {sorted(GENERATORS)}")
        options = config.get("generator_config") or {}
        if not isinstance(options, dict):
            raise CheckpointError(f"{folder / CONFIG}: generator_config must be an object")
        try:
            with torch.device("meta"):
                probe = build_generator(name, mel_spec, **options)
            size = sum(p.numel() for p in probe.parameters())
            if size > MAX_GENERATOR_PARAMETERS:
                raise CheckpointError(
                    f"{folder / CONFIG}: a generator of {size / 1e9:.1f}B parameters is absurd; the config is corrupt"
                )
            generator = build_generator(name, mel_spec, **options)
        except (TypeError, ValueError, RuntimeError, OverflowError) as error:
            raise CheckpointError(f"{folder / CONFIG}: cannot build the generator ({error})") from None
        folded = bool(config.get("folded", False))
        if folded:
            generator.remove_weight_norm()
        load_state_dict(folder / WEIGHTS, generator)
        info = {
            k: v
            for k, v in config.items()
            if k not in ("kind", "generator", "generator_config", "mel", "folded", "match_mel")
        }
        info["path"] = str(folder)
        try:
            vocoder = cls(generator, info, match_mel=config.get("match_mel", 0))
        except ValueError as error:
            raise CheckpointError(f"{folder / CONFIG}: {error}") from None
        vocoder.folded = folded
        return vocoder.fold()


VOCODER_KINDS["gan"] = (
    GANVocoder.from_folder,
    ("kind", "mel", "generator", "generator_config", "folded", "match_mel", *INFO_KEYS),
)
