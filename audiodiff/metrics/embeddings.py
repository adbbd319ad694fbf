"""Embeddings for Fréchet distances: a small registry from name to embedding class.

Every embedding maps audio `[batch, samples]` at any `sample_rate` to features `[batch, dim]`
(one vector per clip), resampling to the rate it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F

from audiodiff.audio import resample
from audiodiff.metrics.classifier import AudioClassifier

__all__ = ["EMBEDDINGS", "ClassifierEmbedding", "CrepeEmbedding", "Embedding", "make_embedding"]


class Embedding(Protocol):
    name: str

    def __call__(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """`[batch, samples]` at `sample_rate` -> `[batch, dim]`."""
        ...


class ClassifierEmbedding:
    """Penultimate features of an `AudioClassifier` (the SC09-protocol "FID" embedding)."""

    name = "classifier"

    def __init__(self, classifier: AudioClassifier | None = None, batch_size: int = 64):
        if classifier is None:
            raise ValueError(
                "the 'classifier' embedding needs a trained AudioClassifier: pass classifier=... "
                "(train one with train_classifier or `audiodiff eval train-classifier`)"
            )
        self.classifier = classifier
        self.batch_size = batch_size

    def __call__(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        audio = resample(torch.as_tensor(audio).float(), sample_rate, self.classifier.mel_spec.sample_rate)
        return self.classifier.embed(audio, self.batch_size)


class CrepeEmbedding:
    """CREPE pitch-network features (Kim et al. 2018) from torchcrepe's pretrained weights:
    the fifth conv block's output per 64 ms frame, flattened and averaged over the frames that
    are not silent. `capacity` "tiny" gives 256 dims, "full" 2048 (and is ~20x slower on CPU).

    Weights are read with `torch.load(weights_only=True)`, which loads tensors and nothing else.
    """

    name = "crepe"
    sample_rate = 16000
    window = 1024  # CREPE's frame: 64 ms at 16 kHz

    def __init__(
        self,
        capacity: str = "tiny",
        hop_seconds: float = 0.02,
        silence_db: float = -60.0,
        batch_frames: int = 512,
        device: str | torch.device = "cpu",
    ):
        try:
            import torchcrepe
        except ImportError:
            raise ImportError(
                "the 'crepe' embedding needs the torchcrepe package: pip install torchcrepe "
                "(or pip install 'audiodiff[eval]')"
            ) from None
        if capacity not in ("tiny", "full"):
            raise ValueError(f"capacity={capacity!r}; torchcrepe ships 'tiny' and 'full'")
        weights = Path(torchcrepe.__file__).parent / "assets" / f"{capacity}.pth"
        self.model = torchcrepe.Crepe(capacity)
        self.model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.model.to(device).eval()
        self.device = torch.device(device)
        self.hop_length = max(1, round(hop_seconds * self.sample_rate))
        self.silence = 10 ** (silence_db / 20)
        self.batch_frames = batch_frames

    @torch.inference_mode()
    def __call__(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        audio = resample(torch.as_tensor(audio).float(), sample_rate, self.sample_rate)
        if audio.dim() == 1:
            audio = audio[None]
        half = self.window // 2
        padded = F.pad(audio, (half, half))
        frames = padded.unfold(-1, self.window, self.hop_length)  # [batch, frames, window]
        batch, count, _ = frames.shape
        flat = frames.reshape(-1, self.window)
        rms = flat.pow(2).mean(-1).sqrt().reshape(batch, count)
        flat = flat - flat.mean(-1, keepdim=True)
        flat = flat / flat.std(-1, keepdim=True).clamp_min(1e-10)  # CREPE's per-frame normalisation
        features = torch.cat(
            [self.model.embed(chunk.to(self.device)).flatten(1).cpu() for chunk in flat.split(self.batch_frames)]
        ).reshape(batch, count, -1)
        weight = (rms > self.silence).float()
        weight = torch.where(weight.sum(-1, keepdim=True) > 0, weight, torch.ones_like(weight))  # all silent: use all
        return (features * weight[..., None]).sum(1) / weight.sum(-1, keepdim=True)


EMBEDDINGS: dict[str, type] = {"classifier": ClassifierEmbedding, "crepe": CrepeEmbedding}
"""Name -> embedding class; `make_embedding(name, ...)` builds one."""


def make_embedding(name: str, classifier: AudioClassifier | None = None, **options) -> Embedding:
    """Build the embedding called `name` ("classifier" uses `classifier`; options go to its class)."""
    if name not in EMBEDDINGS:
        raise ValueError(f"unknown embedding {name!r}; choose one of {sorted(EMBEDDINGS)}")
    if name == "classifier":
        return ClassifierEmbedding(classifier, **options)
    return EMBEDDINGS[name](**options)
