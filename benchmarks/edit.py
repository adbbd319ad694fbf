"""Editing by inversion against noising, at matched strength: held-out notes of one instrument
family asked to become another (`Pipeline.edit(source={"label": A}, target={"label": B})`), and
the same clips through `vary(strength, label=B)` (noise the input, sample back under B); and the
edit guided away from the source (`away_from_source=True`: the source conditions as the negative).

Scores per method: the share of edits the evaluation classifier hears as the target family; the
onset kept (the first frame within 20 dB of the loudest, in the edit against the clip; share within
20 ms); the F0 kept (share of the clip's voiced frames whose F0 in the edit is within 50 cents).
Targets (issue 43): target family >= 80% with onsets within 20 ms.

    python benchmarks/edit.py --classifier runs/classifier-notes [--count 16] [--strength 0.7]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

if __package__ in (None, ""):  # run as a file: python benchmarks/edit.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.audio import load_audio
from audiodiff.metrics import AudioClassifier
from audiodiff.metrics.signal import estimate_f0
from audiodiff.pipeline import Pipeline
from benchmarks.machine import command, machine_info, now, write_result

PAIRS = {
    "flute": "brass",
    "brass": "flute",
    "keyboard": "organ",
    "organ": "keyboard",
    "string": "reed",
    "reed": "string",
    "guitar": "mallet",
    "mallet": "guitar",
}


def onset(audio: torch.Tensor, rate: int = 16000, threshold_db: float = 20.0) -> float:
    """Seconds to the first 10 ms frame within `threshold_db` of the loudest (channels mixed)."""
    hop = rate // 100
    mono = audio.reshape(-1, audio.shape[-1]).mean(0)
    frames = mono[: mono.numel() // hop * hop].reshape(-1, hop).pow(2).mean(1) + 1e-12
    loud = torch.nonzero(frames >= frames.max() * 10 ** (-threshold_db / 10))
    return float(loud[0]) * hop / rate


def f0_kept(edit: torch.Tensor, clip: torch.Tensor) -> tuple[int, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f0_clip, voiced_clip = estimate_f0(clip.reshape(-1), 16000, fmin=30.0, fmax=2000.0)
        f0_edit, voiced_edit = estimate_f0(edit.reshape(-1), 16000, fmin=30.0, fmax=2000.0)
    frames = min(f0_clip.shape[-1], f0_edit.shape[-1])
    cents = 1200 * torch.log2(f0_edit[..., :frames] / f0_clip[..., :frames]).abs()
    good = voiced_clip[..., :frames] & voiced_edit[..., :frames] & (cents <= 50)
    return int(good.sum()), int(voiced_clip[..., :frames].sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="notes")
    parser.add_argument("--data", default="data/notes")
    parser.add_argument(
        "--classifier", required=True, help="a notes evaluation classifier (audiodiff eval train-classifier)"
    )
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--strength", type=float, default=0.7)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--guidance", type=float, default=2.0)
    parser.add_argument("--methods", default="inversion,inversion_away_from_source,noise")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/edit.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = Pipeline.from_pretrained(args.model, precision="fp32")
    classifier = AudioClassifier.load(args.classifier)
    rows = [json.loads(line) for line in (Path(args.data) / "manifest.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["split"] == "test" and r["label"] in PAIRS and r.get("gesture", "none") == "none"]
    rows = rows[:: max(1, len(rows) // args.count)][: args.count]
    methods = tuple(args.methods.split(","))
    scores = {method: {"target": [], "onset_ms": [], "f0": [0, 0]} for method in methods}
    for index, row in enumerate(tqdm(rows, desc="editing")):
        clip = load_audio(Path(args.data) / row["path"], pipe.sample_rate, 1)[0]
        clip = clip[..., : pipe.space.whole_frames(clip.shape[-1])]
        target = PAIRS[row["label"]]
        kept = {"pitch": row["pitch"], "velocity": row["velocity"]}
        edits = {
            "inversion": lambda: pipe.edit(
                clip, {"label": row["label"], **kept}, {"label": target, **kept}, strength=args.strength,
                steps=args.steps, sample_rate=pipe.sample_rate, guidance=args.guidance, seed=index,
            ),
            "inversion_away_from_source": lambda: pipe.edit(
                clip, {"label": row["label"], **kept}, {"label": target, **kept}, strength=args.strength,
                steps=args.steps, sample_rate=pipe.sample_rate, guidance=args.guidance, seed=index,
                away_from_source=True,
            ),
            "noise": lambda: pipe.vary(
                clip, args.strength, pipe.sample_rate, steps=args.steps, guidance=args.guidance, seed=index,
                label=target, **kept,
            ),
        }  # fmt: skip
        for method in methods:
            out = edits[method]()
            audio = out.audio[0][..., : clip.shape[-1]]
            scores[method]["target"].append(classifier.predict(audio)[0] == target)
            scores[method]["onset_ms"].append(1000 * abs(onset(audio) - onset(clip)))
            good, voiced = f0_kept(audio, clip)
            scores[method]["f0"][0] += good
            scores[method]["f0"][1] += voiced
    result = {
        method: {
            "target_family": round(float(np.mean(s["target"])), 3),
            "onset_within_20ms": round(float(np.mean([ms <= 20 for ms in s["onset_ms"]])), 3),
            "median_onset_shift_ms": round(float(np.median(s["onset_ms"])), 1),
            "f0_within_50_cents": round(s["f0"][0] / max(1, s["f0"][1]), 3),
        }
        for method, s in scores.items()
    }
    print(json.dumps(result, indent=1))
    write_result(
        {
            "benchmark": "edit",
            "date": now(),
            "command": command(),
            "machine": machine_info(),
            "model": args.model,
            "clips": len(rows),
            "strength": args.strength,
            "steps": args.steps,
            "guidance": args.guidance,
            "results": result,
            "targets": "edits heard as the target family >= 80%, onsets within 20 ms (issue 43)",
        },
        args.out,
    )


if __name__ == "__main__":
    main()
