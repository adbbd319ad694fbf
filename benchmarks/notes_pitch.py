"""Does the notes model play the asked pitch and instrument? For held-out (test-split) notes, generate
a note with the same family, pitch and velocity, then measure: the F0 (pyin, median over voiced
frames) within 50 cents of the asked MIDI pitch, and the instrument family recognised by the
evaluation classifier trained on real notes. The same measures on the real test notes are the floor
(pyin also misses some real notes: drums-like, inharmonic or very low ones).

    python benchmarks/notes_pitch.py --model notes --classifier runs/classifier-notes [--count 80]
    python benchmarks/notes_pitch.py --model runs/notes-curves2 --vocoder vocoder-16k --steps 16 ...  # a run as it would be bundled
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

if __package__ in (None, ""):  # run as a file: python benchmarks/notes_pitch.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.audio import load_audio
from audiodiff.metrics.scoring import load_classifier
from audiodiff.metrics.signal import estimate_f0
from audiodiff.pipeline import Pipeline
from benchmarks.machine import command, machine_info, now, sampling_record, write_result


def midi_hz(pitch: float) -> float:
    return 440.0 * 2 ** ((pitch - 69) / 12)


def cents_off(audio: torch.Tensor, sample_rate: int, pitch: float) -> float:
    """Cents between the median voiced F0 of the note's first 0.6 s and the asked pitch (NaN if unvoiced)."""
    target = midi_hz(pitch)
    f0, voiced = estimate_f0(
        audio[..., : int(0.6 * sample_rate)],
        sample_rate,
        fmin=max(30.0, target / 4),
        fmax=min(sample_rate / 2 - 1, target * 4),
    )
    values = f0.flatten()[voiced.flatten()]
    if values.numel() == 0:
        return math.nan
    return float(1200 * torch.log2(values.median() / target))


def score(clips: list[torch.Tensor], rows: list[dict], sample_rate: int, classifier) -> dict:
    cents = [
        cents_off(clip, sample_rate, row["pitch"]) for clip, row in zip(tqdm(clips, desc="pitch", leave=False), rows)
    ]
    within = [abs(c) <= 50 for c in cents if not math.isnan(c)]
    result = {
        "within_50_cents": round(sum(within) / len(clips), 3),
        "unvoiced": sum(math.isnan(c) for c in cents),
        "median_abs_cents": round(float(torch.tensor([abs(c) for c in cents if not math.isnan(c)]).median()), 1)
        if within
        else None,
    }
    if classifier is not None:
        labels = [row["label"] for row in rows]
        result["family_accuracy"] = family_accuracy(classifier, clips, labels)
        result["family_mistakes"] = family_mistakes(classifier, clips, labels)
    return result


def family_mistakes(classifier, clips: list[torch.Tensor], labels: list[str]) -> dict:
    """{"asked -> heard": count} for the clips the classifier puts in another family, most first."""
    mistakes: dict[str, int] = {}
    for heard, label in zip(classifier.predict(_batch(classifier, clips)), labels):
        if heard != label:
            mistakes[f"{label} -> {heard}"] = mistakes.get(f"{label} -> {heard}", 0) + 1
    return dict(sorted(mistakes.items(), key=lambda item: -item[1]))


def family_accuracy(classifier, clips: list[torch.Tensor], labels: list[str]) -> float:
    """The fraction of clips (`[channels, samples]`, first channel used) the evaluation
    classifier puts in their label, each cut or zero-padded to the classifier's length."""
    return round(
        sum(p == label for p, label in zip(classifier.predict(_batch(classifier, clips)), labels)) / len(labels), 3
    )


def _batch(classifier, clips: list[torch.Tensor]) -> torch.Tensor:
    size = classifier.clip_samples
    return torch.stack([torch.nn.functional.pad(clip[0, :size], (0, max(0, size - clip.shape[-1]))) for clip in clips])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="notes")
    parser.add_argument("--classifier")
    parser.add_argument("--data", default="data/notes")
    parser.add_argument("--count", type=int, default=80)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--guidance", type=float, help="guidance scale (default: the model's)")
    parser.add_argument(
        "--guide",
        nargs="+",
        choices=["label", "pitch", "velocity", "f0"],
        help="guide towards these conditions only (Pipeline guide=): the others are asked in both branches (default: all)",
    )
    parser.add_argument(
        "--rest-guidance",
        type=float,
        help="with --guide: the scale of the other asked conditions (default: the model's)",
    )
    parser.add_argument(
        "--guidance-interval",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="noise levels where guidance applies (with --guide: where it exceeds --rest-guidance; default: the model's)",
    )
    parser.add_argument(
        "--vocoder", help="vocoder (default: the model's; a training run's config often says griffin_lim)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/notes_pitch.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    manifest = Path(args.data) / "manifest.jsonl"
    rows = [
        row
        for row in map(json.loads, manifest.read_text().splitlines())
        if row.get("split") == "test" and row.get("gesture", "none") == "none"
    ]  # held notes: one pitch each
    rows = rows[:: max(1, len(rows) // args.count)][: args.count]
    pipe = Pipeline.from_pretrained(args.model, vocoder=args.vocoder)
    low, high = pipe.config.conditioning.numbers["pitch"]
    rows = [row for row in rows if low <= row["pitch"] <= high and row["label"] in pipe.labels]
    classifier = load_classifier(args.classifier) if args.classifier else None
    generated = []
    for index, row in enumerate(tqdm(rows, desc="generating")):
        out = pipe.generate(
            label=row["label"],
            pitch=row["pitch"],
            velocity=row["velocity"],
            n=1,
            seed=index,
            steps=args.steps,
            guidance=args.guidance,
            guide=args.guide,
            rest_guidance=args.rest_guidance,
            guidance_interval=args.guidance_interval,
            progress=False,
        )
        generated.append(out.audio[0])
    sample_rate = pipe.config.data.sample_rate
    real = [load_audio(manifest.parent / row["path"], sample_rate, 1)[0] for row in rows]
    length = min(min(c.shape[-1] for c in generated), min(c.shape[-1] for c in real))
    generated, real = [c[..., :length] for c in generated], [c[..., :length] for c in real]
    result = {
        "benchmark": "notes_pitch",
        "date": now(),
        "command": command(),
        "notes": len(rows),
        # what the calls used (out.settings), not re-derived from the options
        "sampling": sampling_record(out.settings, vocoder=args.vocoder or pipe.config.sampling.vocoder),
        "targets": "F0 within 50 cents of the asked pitch for at least 90% of clips; family recognised in at least 90% (issue 14)",
        "model": {
            "source": args.model,
            "training_step": pipe.info.get("training", {}).get("step"),
            **score(generated, rows, sample_rate, classifier),
        },
        "real_floor": score(real, rows, sample_rate, classifier),
        "machine": machine_info(),
    }
    write_result(result, args.out)
    print(json.dumps({k: result[k] for k in ("notes", "model", "real_floor")}, indent=1))


if __name__ == "__main__":
    main()
