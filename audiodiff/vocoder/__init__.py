"""Vocoders: normalised log-mel `[batch, n_mels, frames]` -> audio `[batch, 1, frames * hop]`.

`Vocoder` is the one interface; `GriffinLimVocoder` needs no training and is the baseline;
`GANVocoder` wraps a trained generator (see `generators`). Both load with
`Vocoder.from_pretrained(dir)` and carry their `mel_spec`, so a diffusion model and a vocoder can
be checked for compatibility before they are joined.
"""

from audiodiff.vocoder.base import GriffinLimVocoder, Vocoder, VocoderError, check_compatible
from audiodiff.vocoder.gan import GANVocoder

__all__ = ["Vocoder", "GANVocoder", "GriffinLimVocoder", "VocoderError", "check_compatible"]
