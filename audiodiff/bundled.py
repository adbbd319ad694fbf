"""The models shipped inside the package (`audiodiff/weights/NAME/`), found by name."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from audiodiff.checkpoint import CONFIG, CheckpointError, read_json, resolve_checkpoint

__all__ = [
    "BUNDLED_DIR",
    "bundled_autoencoders",
    "bundled_names",
    "bundled_path",
    "bundled_upsamplers",
    "bundled_vocoders",
    "check_part_name",
    "check_vocoder_name",
    "find_checkpoint",
]

BUNDLED_DIR = Path(__file__).parent / "weights"


def bundled_path(name: str) -> Path | None:
    """The directory of a model shipped inside the package, if `name` is one."""
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    folder = BUNDLED_DIR / name
    return folder if (folder / CONFIG).is_file() else None


def find_checkpoint(name_or_path: str | os.PathLike, listing: Callable[[], str]) -> Path:
    """A bundled checkpoint by name, else a checkpoint or run directory; when neither, the error
    ends with `listing()` (what is bundled, e.g. "bundled vocoders: [...]"; read only then)."""
    folder = bundled_path(str(name_or_path))
    if folder is not None:
        return folder
    try:
        return resolve_checkpoint(name_or_path)
    except CheckpointError as error:
        hint = listing()
        raise CheckpointError(f"{error}; {hint}" if hint else str(error)) from None


def check_part_name(setting: str, name: str, where: Path, bundled: Callable[[], list[str]], fix: str) -> None:
    """A checkpoint may name a bundled part (vocoder, autoencoder) or a sub-folder of its own,
    nothing elsewhere on the disk (a hostile config must not make the loader read other folders).
    `bundled()` lists the bundled ones for the error (read only then)."""
    if bundled_path(name) is not None:
        return
    if "/" in name or "\\" in name or name.startswith(".") or not (where.parent / name / CONFIG).is_file():
        raise CheckpointError(
            f"{where}: {setting}={name!r} is neither a bundled one ({bundled()}) nor a sub-folder of the checkpoint; {fix}"
        )


def check_vocoder_name(name: str, where: Path) -> None:
    """ "griffin_lim", a bundled vocoder or a sub-folder of the checkpoint (`check_part_name`)."""
    if name != "griffin_lim":
        check_part_name(
            "sampling.vocoder",
            name,
            where,
            lambda: ["griffin_lim", *bundled_vocoders()],
            "pass vocoder= to from_pretrained (--vocoder on the command line) to use another",
        )


OWN_KINDS = ("diffusion", "autoencoder", "upsampler")  # checkpoint kinds listed apart from the vocoders'


def _bundled(kind: str) -> list[str]:
    """Bundled checkpoints of one kind: diffusion, autoencoder, upsampler, or vocoder (every other kind: gan, ...)."""
    if not BUNDLED_DIR.is_dir():
        return []
    found = [p for p in BUNDLED_DIR.iterdir() if (p / CONFIG).is_file()]
    kinds = {p.name: read_json(p / CONFIG).get("kind") for p in found}
    return sorted(name for name, k in kinds.items() if (k if k in OWN_KINDS else "vocoder") == kind)


def bundled_vocoders() -> list[str]:
    return _bundled("vocoder")


def bundled_upsamplers() -> list[str]:
    return _bundled("upsampler")


def bundled_autoencoders() -> list[str]:
    return _bundled("autoencoder")


def bundled_names() -> list[str]:
    """The bundled diffusion models."""
    return _bundled("diffusion")
