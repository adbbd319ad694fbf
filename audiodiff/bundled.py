"""The models shipped inside the package (`audiodiff/weights/NAME/`), found by name."""

from __future__ import annotations

from pathlib import Path

from audiodiff.checkpoint import CONFIG, CheckpointError, read_json

__all__ = ["BUNDLED_DIR", "bundled_names", "bundled_path", "bundled_vocoders", "check_vocoder_name"]

BUNDLED_DIR = Path(__file__).parent / "weights"


def bundled_path(name: str) -> Path | None:
    """The directory of a model shipped inside the package, if `name` is one."""
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    folder = BUNDLED_DIR / name
    return folder if (folder / CONFIG).is_file() else None


def check_vocoder_name(name: str, where: Path) -> None:
    """A checkpoint may name "griffin_lim", a bundled vocoder or a sub-folder of its own, nothing
    elsewhere on the disk (a hostile config must not make the loader read other folders)."""
    if name == "griffin_lim" or bundled_path(name) is not None:
        return
    if "/" in name or "\\" in name or name.startswith(".") or not (where.parent / name / CONFIG).is_file():
        raise CheckpointError(
            f"{where}: sampling.vocoder={name!r} is neither griffin_lim, a bundled vocoder ({bundled_vocoders()}) "
            "nor a sub-folder of the checkpoint; pass vocoder= to from_pretrained (--vocoder on the command line) to use another"
        )


def _bundled(diffusion: bool) -> list[str]:
    if not BUNDLED_DIR.is_dir():
        return []
    found = [p for p in BUNDLED_DIR.iterdir() if (p / CONFIG).is_file()]
    return sorted(p.name for p in found if (read_json(p / CONFIG).get("kind") == "diffusion") == diffusion)


def bundled_vocoders() -> list[str]:
    return _bundled(diffusion=False)


def bundled_names() -> list[str]:
    """The bundled diffusion models."""
    return _bundled(diffusion=True)
