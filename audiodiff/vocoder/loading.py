"""Loading vocoders by name or directory; a small registry from config `kind` to class."""

from __future__ import annotations

import os
from pathlib import Path

from audiodiff.audio import MelSpec
from audiodiff.checkpoint import CONFIG, CheckpointError, read_json
from audiodiff.vocoder import GriffinLimVocoder, Vocoder, VocoderError

__all__ = ["load_vocoder", "VOCODER_KINDS"]


def _griffin_lim(path: Path | None, config: dict, mel_spec: MelSpec) -> Vocoder:
    return GriffinLimVocoder(mel_spec, int(config.get("num_iters", 32)))


def _gan(path: Path, config: dict, mel_spec: MelSpec) -> Vocoder:
    from audiodiff.vocoder.gan import GANVocoder

    return GANVocoder.from_folder(path, config, mel_spec)


VOCODER_KINDS = {"griffin_lim": _griffin_lim, "gan": _gan}


def load_vocoder(path: str | os.PathLike, mel_spec: MelSpec | None = None) -> Vocoder:
    """"griffin_lim" (needs `mel_spec`), a bundled vocoder name, or a checkpoint directory."""
    if str(path) == "griffin_lim":
        if mel_spec is None:
            raise VocoderError("Griffin-Lim needs the MelSpec of the mels it will invert")
        return GriffinLimVocoder(mel_spec)
    from audiodiff.pipeline import bundled_path

    from audiodiff.checkpoint import resolve_checkpoint

    folder = bundled_path(str(path)) or resolve_checkpoint(path)
    config = read_json(folder / CONFIG)
    kind = config.get("kind")
    if kind not in VOCODER_KINDS:
        raise CheckpointError(f"{folder / CONFIG}: kind={kind!r} is not a vocoder; known kinds are {sorted(VOCODER_KINDS)}")
    try:
        spec = MelSpec.from_dict(config["mel"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{folder / CONFIG}: bad or missing 'mel' section ({error})") from None
    return VOCODER_KINDS[kind](folder, config, spec)
