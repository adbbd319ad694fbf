"""Vocoders on generated mels: the digits teacher's mels (dpmpp_2m, 16 steps, guidance as bundled,
the same seeds) through each vocoder, with and without mel matching, scored by the Fréchet distance
in the evaluation classifier's features against the real test split. Round trips of real clips
(vocoder_fidelity.py) cannot show what a vocoder does with a model's imperfect mels.

    python benchmarks/vocoder_generated.py --vocoder vocoder-16k [--vocoder DIR] [--match-mel 8] \\
        [--classifier runs/classifier-digits] [--per-label 8]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.metrics import AudioClassifier, feature_statistics, frechet_distance_from_statistics
from audiodiff.metrics.sets import load_clips
from audiodiff.pipeline import PEAK_GUARD, Pipeline
from audiodiff.vocoder import Vocoder
from benchmarks.machine import command, machine_info, now, write_result
from benchmarks.samplers import embed, embed_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocoder", action="append", required=True)
    parser.add_argument("--match-mel", type=int, action="append", default=[])
    parser.add_argument("--model", default="digits")
    parser.add_argument("--classifier", default="runs/classifier-digits")
    parser.add_argument("--reference", default="data/digits")
    parser.add_argument("--per-label", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/vocoder_generated.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*rank-deficient")
    classifier = AudioClassifier.load(args.classifier)
    stats = feature_statistics(embed_files(classifier, load_clips(args.reference, "test")), "reference")
    pipe = Pipeline.from_pretrained(args.model, vocoder="griffin_lim")
    labels = [label for label in pipe.labels for _ in range(args.per_label)]
    mels = [
        pipe.generate(label=labels[s : s + 20], n=len(labels[s : s + 20]), seed=s, steps=16, sampler="dpmpp_2m").mel
        for s in range(0, len(labels), 20)
    ]
    mel = torch.cat(mels).clamp(-1.0, 1.5)
    rows = []
    for name in args.vocoder:
        for passes in [0, *args.match_mel]:
            vocoder = Vocoder.from_pretrained(name)
            vocoder.match_mel = passes
            audio = vocoder(mel, clamp=False)
            peak = audio.abs().amax(dim=(-2, -1), keepdim=True)
            audio = torch.where(peak > 1.0, audio * (PEAK_GUARD / peak.clamp_min(1.0)), audio)  # as Pipeline.decode
            fd = frechet_distance_from_statistics(
                *feature_statistics(embed(classifier, audio, pipe.sample_rate), name), *stats
            )
            rows.append({"vocoder": name, "match_mel": passes, "frechet": round(fd, 3)})
            print(f"{name:<40} match_mel {passes}: Fréchet {fd:.2f}", flush=True)
    write_result(
        {
            "benchmark": "vocoder_generated",
            "date": now(),
            "command": command(),
            "machine": machine_info(),
            "model": args.model,
            "clips": len(labels),
            "rows": rows,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
