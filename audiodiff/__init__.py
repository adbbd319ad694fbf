"""audiodiff: audio generation with diffusion models, on a laptop CPU or many GPUs."""

from audiodiff.audio import MelSpec, load_audio, save_audio
from audiodiff.pipeline import GenerateOutput, GenerationRequest, Pipeline
from audiodiff.vocoder import GriffinLimVocoder, Vocoder

__version__ = "0.1.0"

__all__ = [
    "GenerateOutput",
    "GenerationRequest",
    "GriffinLimVocoder",
    "MelSpec",
    "Pipeline",
    "Vocoder",
    "load_audio",
    "save_audio",
    "__version__",
]
