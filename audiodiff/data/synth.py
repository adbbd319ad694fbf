"""A small synthetic set of clearly different sounds, made in seconds: for the quickstart, for
tests, and for checking that conditioning works (classes differ in a way a spectral centroid sees).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch

from audiodiff.audio import save_audio

__all__ = ["SYNTH_CLASSES", "build_synthetic", "synth_clip"]

SYNTH_CLASSES = ("low", "high", "noise", "chirp")
CAPTIONS = {
    "low": "a low {adj} tone",
    "high": "a high {adj} tone",
    "noise": "a {adj} burst of noise",
    "chirp": "a {adj} rising chirp",
}


def synth_clip(kind: str, sample_rate: int, seconds: float, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
    """One clip `[1, samples]` of class `kind`, and the facts used to make it."""
    n = int(round(seconds * sample_rate))
    t = torch.arange(n, dtype=torch.float64) / sample_rate

    def uniform(low, high):
        return low + (high - low) * float(torch.rand((), generator=generator))

    loud = uniform(0.3, 0.9)
    attack, length = uniform(0.0, 0.1) * seconds, uniform(0.5, 0.85) * seconds
    envelope = ((t - attack) / 0.01).clamp(0, 1) * (1 - ((t - attack - length) / (0.15 * seconds)).clamp(0, 1))
    facts: dict = {"loudness": round(loud, 3)}
    if kind in ("low", "high"):
        f0 = uniform(110, 260) if kind == "low" else uniform(900, 1800)
        wave = sum(math.pow(0.5, h) * torch.sin(2 * math.pi * f0 * (h + 1) * t) for h in range(3))
        facts["pitch"] = round(69 + 12 * math.log2(f0 / 440), 2)
    elif kind == "noise":
        noise = torch.randn(n, generator=generator, dtype=torch.float64)
        wave = torch.nn.functional.avg_pool1d(noise[None, None], 3, 1, 1)[0, 0]
        facts["pitch"] = math.nan
    elif kind == "chirp":
        start, end = uniform(200, 400), uniform(1500, 3000)
        phase = 2 * math.pi * (start * t + (end - start) * t**2 / (2 * seconds))
        wave = torch.sin(phase)
        facts["pitch"] = round(69 + 12 * math.log2(start / 440), 2)
    else:
        raise ValueError(f"unknown synthetic class {kind!r}; choose from {SYNTH_CLASSES}")
    wave = wave / wave.abs().max().clamp_min(1e-9) * loud * envelope
    return wave.float()[None], facts


def build_synthetic(
    out_dir: str | os.PathLike,
    per_class: int = 32,
    classes: tuple[str, ...] = SYNTH_CLASSES,
    sample_rate: int = 16000,
    seconds: float = 1.0,
    seed: int = 0,
) -> Path:
    """Write `per_class` clips of each class and a manifest.jsonl (path, label, text, pitch, split)."""
    out_dir = Path(out_dir)
    (out_dir / "wavs").mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for kind in classes:
        for index in range(per_class):
            audio, facts = synth_clip(kind, sample_rate, seconds, generator)
            path = f"wavs/{kind}_{index:04d}.wav"
            save_audio(out_dir / path, audio, sample_rate)
            adjective = "quiet" if facts["loudness"] < 0.5 else "loud"
            split = "test" if index % 10 == 9 else "train"
            row = {"path": path, "label": kind, "text": CAPTIONS[kind].format(adj=adjective), "split": split}
            if math.isfinite(facts["pitch"]):
                row["pitch"] = facts["pitch"]
            rows.append(row)
    manifest = out_dir / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest
