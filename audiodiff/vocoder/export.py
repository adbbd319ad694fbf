"""Export a GAN vocoder for deployment (ONNX or TorchScript) and run the exported file.

The exported graph maps mel `[batch, n_mels, frames]` to audio for HiFi-GAN generators, and to
the real and imaginary parts of the spectrum for the ISTFT generator, whose inverse STFT then
runs outside the graph (`audiodiff.audio.istft`, a few lines of irfft + overlap-add). For the
source-filter generator the graph gives every per-frame prediction (`SourceFilterParts`), and the
pulse train, its filtering and the inverse STFT run outside (`render_source_filter`). A JSON
sidecar holds the MelSpec and the STFT and pitch settings. Parity with PyTorch is checked on export.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
import torch.nn as nn

from audiodiff.audio import MelSpec, istft, match_mel
from audiodiff.vocoder.base import Vocoder
from audiodiff.vocoder.generators import IstftGenerator, SourceFilterGenerator, SourceFilterParts, render_source_filter
from audiodiff.vocoder.source import PitchGrid

__all__ = ["ExportedVocoder", "export_vocoder", "PARITY_TOLERANCE"]

PARITY_TOLERANCE = 1e-4  # max |exported - pytorch| on audio in [-1, 1]


class _Graph(nn.Module):
    """What goes into the exported file: the generator up to (not including) the inverse STFT."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator
        self.spectral = isinstance(generator, IstftGenerator)
        self.source_filter = isinstance(generator, SourceFilterGenerator)

    def forward(self, mel: torch.Tensor):
        if self.source_filter:
            return self.generator.parts(mel).astuple()
        if self.spectral:
            return self.generator.head.spectrum(self.generator.features(mel))
        return self.generator(mel)


def _export_file(graph: _Graph, mel: torch.Tensor, path: Path, fmt: str) -> None:
    if fmt == "torchscript":
        traced = torch.jit.trace(graph, (mel,), check_trace=False)
        traced.save(str(path))
        return
    outputs = (
        [field.name for field in dataclasses.fields(SourceFilterParts)]
        if graph.source_filter
        else ["real", "imag"]
        if graph.spectral
        else ["audio"]
    )
    axes = {"mel": {0: "batch", 2: "frames"}, **{name: {0: "batch", 2: "time"} for name in outputs}}
    if graph.source_filter:  # per-frame outputs with the frames on axis 1
        axes |= {"pitch_logits": {0: "batch", 1: "time"}, "voicing_logit": {0: "batch", 1: "time"}}
    torch.onnx.export(
        graph,
        (mel,),
        str(path),
        input_names=["mel"],
        output_names=outputs,
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )


def export_vocoder(vocoder: Vocoder, path: str | os.PathLike, fmt: str = "onnx", frames: int = 48) -> tuple[Path, str]:
    """Write the exported vocoder (+ `<path>.json`), reload it and check parity on another length."""
    if fmt not in ("onnx", "torchscript"):
        raise ValueError(f"format {fmt!r}: choose onnx or torchscript")
    generator = getattr(vocoder, "generator", None)
    if generator is None:
        raise ValueError(f"a {vocoder.kind} vocoder has no network to export; export a trained GAN vocoder")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = _Graph(generator).eval()
    mel_spec = vocoder.mel_spec
    example = torch.rand(1, mel_spec.n_mels, frames) * 2 - 1
    with torch.no_grad():
        _export_file(graph, example, path, fmt)
    sidecar = {
        "format": fmt,
        "spectral": graph.spectral,
        "n_fft": generator.head.n_fft if graph.spectral else None,
        "hop_length": mel_spec.hop_length,
        "pitch_grid": {key: generator.config[key] for key in ("f0_min", "f0_max", "cents")}
        if graph.source_filter
        else None,
        "mel": mel_spec.to_dict(),
        "match_mel": getattr(vocoder, "match_mel", 0),  # passes of audio.match_mel, run here after the graph
    }
    Path(f"{path}.json").write_text(json.dumps(sidecar, indent=2))
    check = torch.rand(2, mel_spec.n_mels, frames + 17, generator=torch.Generator().manual_seed(0)) * 2 - 1
    error = (ExportedVocoder(path)(check) - vocoder(check)).abs().max().item()
    if not error <= PARITY_TOLERANCE:
        raise RuntimeError(f"{path}: exported vocoder differs from PyTorch by {error:.2e} (> {PARITY_TOLERANCE:g})")
    return path, f"{fmt}, parity max |diff| {error:.1e} on a {frames + 17}-frame mel (tolerance {PARITY_TOLERANCE:g})"


class ExportedVocoder:
    """Runs an exported vocoder: mel `[batch, n_mels, frames]` -> audio `[batch, 1, frames * hop]`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        meta = json.loads(Path(f"{self.path}.json").read_text())
        self.format, self.spectral = meta["format"], meta["spectral"]
        self.n_fft, self.hop_length = meta["n_fft"], meta["hop_length"]
        self.mel_spec = MelSpec.from_dict(meta["mel"])
        self.match_mel = int(meta.get("match_mel", 0))
        self.grid = PitchGrid(**meta["pitch_grid"]) if meta.get("pitch_grid") else None
        if self.format == "onnx":
            try:
                import onnxruntime
            except ImportError:
                raise ImportError("running an ONNX vocoder needs onnxruntime: pip install 'audiodiff[onnx]'") from None
            self.session = onnxruntime.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        else:
            self.module = torch.jit.load(str(self.path))

    def _run(self, mel: torch.Tensor) -> list[torch.Tensor]:
        if self.format == "onnx":
            return [torch.from_numpy(out) for out in self.session.run(None, {"mel": mel.float().numpy()})]
        with torch.no_grad():
            out = self.module(mel.float())
        return list(out) if isinstance(out, (tuple, list)) else [out]

    def __call__(self, mel: torch.Tensor) -> torch.Tensor:
        mel = self.mel_spec.check_mel(mel, name="exported vocoder input")
        outputs = self._run(mel)
        if self.grid is not None:
            parts = SourceFilterParts(*outputs)
            f0, voicing = self.grid.decode(parts.pitch_logits), torch.sigmoid(parts.voicing_logit)
            audio = render_source_filter(parts, f0, voicing, self.n_fft, self.hop_length, self.mel_spec.sample_rate)
        elif self.spectral:
            audio = istft(torch.complex(outputs[0], outputs[1]), self.n_fft, self.hop_length)[:, None]
        else:
            audio = outputs[0]
        if self.match_mel:
            audio = match_mel(audio, mel, self.mel_spec, self.match_mel)
        return audio.clamp(-1.0, 1.0)
