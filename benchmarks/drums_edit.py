"""A drum hit made brighter or darker (or longer or shorter) by editing, on held-out kits.

Each held-out hit (the drums set's test split: kits never trained on) is edited from its own
request (class, velocity, decay, brightness as the builder measured them) to the same request with
one descriptor moved by `--delta` (towards the middle of its range, so the ask stays inside the
training range): by inversion (`Pipeline.edit(source, target, strength)`, and with `away_from_source=True`: the
source conditions as guidance's negative, so guidance pushes along the change), by noising
(`vary(strength, **target)`), and by inversion with nothing changed (`edit(source, source)`: the
round trip, the control). Each result is measured with the builder's own descriptors
(`audiodiff.data.builders.real.describe`).

Scores per method: the mean change of the descriptor in the asked direction (against the clip, and
against the round trip), the share of edits that moved it at least half the asked amount, the
share whose onset (first 10 ms frame within 20 dB of the loudest) stays within 20 ms of the clip's,
and with `--classifier` the share still heard as the clip's class.

    python benchmarks/drums_edit.py [--attribute brightness] [--delta 0.15] [--count 24]
                                    [--strength 0.6] [--classifier DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

if __package__ in (None, ""):  # run as a file: python benchmarks/drums_edit.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.audio import load_audio, resample
from audiodiff.data.builders.real import describe
from audiodiff.pipeline import Pipeline
from benchmarks.drums import asked, held_out
from benchmarks.edit import onset
from benchmarks.machine import command, machine_info, now, write_result

METHODS = ("inversion", "inversion_away_from_source", "noise", "round_trip")


def moved_target(request: dict, name: str, delta: float, span: tuple[float, float]) -> dict:
    """The request with `name` moved by `delta` towards the middle of `span`."""
    low, high = span
    sign = 1.0 if request[name] < (low + high) / 2 else -1.0
    return {**request, name: float(np.clip(request[name] + sign * delta, low, high))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="drums")
    parser.add_argument("--data", default="data/drums")
    parser.add_argument("--attribute", default="brightness", choices=("brightness", "decay"))
    parser.add_argument("--delta", type=float, default=0.15, help="how far to move it (brightness 0-1; decay seconds)")
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--strength", type=float, default=0.6)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--guidance", type=float, help="guidance scale (default: the model's)")
    parser.add_argument("--classifier", help="a drums evaluation classifier (class kept)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/drums_edit.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = Pipeline.from_pretrained(args.model)
    rate, name = pipe.sample_rate, args.attribute
    span = tuple(pipe.config.conditioning.numbers[name])
    classifier = None
    if args.classifier:
        from audiodiff.metrics import AudioClassifier

        classifier = AudioClassifier.load(args.classifier)
    rows = held_out(Path(args.data), args.count, pipe.labels)
    window = pipe.config.data.segment_seconds  # the model's own length: longer hits are cut there
    scores = {
        method: {"change": [], "change_vs_round_trip": [], "onset_ms": [], "class_kept": []} for method in METHODS
    }
    for index, row in enumerate(tqdm(rows, desc=f"editing {name}")):
        clip = load_audio(Path(args.data) / row["path"], rate, pipe.config.data.channels)[0]
        clip = clip[..., : pipe.space.whole_frames(min(clip.shape[-1], int(rate * window)))]
        source = asked(pipe, row)
        target = moved_target(source, name, args.delta, span)
        sign = np.sign(target[name] - source[name]) or 1.0
        common = {"steps": args.steps, "sample_rate": rate, "seed": index, "guidance": args.guidance}
        results = {
            "inversion": pipe.edit(clip, source, target, strength=args.strength, **common),
            "inversion_away_from_source": pipe.edit(
                clip, source, target, strength=args.strength, away_from_source=True, **common
            ),
            "noise": pipe.vary(clip, args.strength, **common, **target),
            "round_trip": pipe.edit(clip, source, source, strength=args.strength, **common),
        }
        audio = {method: out.audio[0][..., : clip.shape[-1]] for method, out in results.items()}
        measured = {method: describe(a.numpy(), rate)[name] for method, a in audio.items()}
        original = describe(clip.numpy(), rate)[name]
        for method in METHODS:
            s = scores[method]
            s["change"].append(sign * (measured[method] - original))
            s["change_vs_round_trip"].append(sign * (measured[method] - measured["round_trip"]))
            s["onset_ms"].append(1000 * abs(onset(audio[method], rate) - onset(clip, rate)))
            if classifier is not None:
                mono = resample(audio[method].mean(0, keepdim=True), rate, classifier.mel_spec.sample_rate)
                s["class_kept"].append(classifier.predict(mono)[0] == row["label"])
    result = {
        method: {
            "mean_change_in_asked_direction": round(float(np.mean(s["change"])), 4),
            "mean_change_vs_round_trip": round(float(np.mean(s["change_vs_round_trip"])), 4),
            "moved_half_the_ask": round(float(np.mean([c >= args.delta / 2 for c in s["change"]])), 3),
            "onset_within_20ms": round(float(np.mean([ms <= 20 for ms in s["onset_ms"]])), 3),
            "median_onset_shift_ms": round(float(np.median(s["onset_ms"])), 1),
            **({"class_kept": round(float(np.mean(s["class_kept"])), 3)} if s["class_kept"] else {}),
        }
        for method, s in scores.items()
    }
    print(json.dumps(result, indent=1))
    write_result(
        {
            "benchmark": "drums_edit",
            "date": now(),
            "command": command(),
            "machine": machine_info(),
            "model": args.model,
            "attribute": name,
            "asked_change": args.delta,
            "clips": len(rows),
            "strength": args.strength,
            "steps": args.steps,
            "guidance": args.guidance,
            "results": result,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
