"""audiodiff: audio generation with diffusion models, on a laptop CPU or many GPUs.

The public names load on first use, so that `import audiodiff.train...` does not import the
inference pipeline (and the command line starts quickly)."""

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "GenerateOutput": "audiodiff.request",
    "GenerationRequest": "audiodiff.request",
    "GriffinLimVocoder": "audiodiff.vocoder",
    "MelSpec": "audiodiff.audio",
    "Pipeline": "audiodiff.pipeline",
    "Resolved": "audiodiff.request",
    "Vocoder": "audiodiff.vocoder",
    "load_audio": "audiodiff.audio",
    "save_audio": "audiodiff.audio",
}

__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'audiodiff' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
