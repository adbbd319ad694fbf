"""Sample quality against the number of steps, for every sampler: the Fréchet distance between
generated clips and the real test split, in the evaluation classifier's features, at 4 to 128
steps, with a plot; plus DPM-Solver++(2M) at 10 and 100 steps for the target (10 steps within
10% of the 100-step score).

Every sampler and step count starts from the same noise (seeds per clip), so the curves differ
only by the sampler. The floor: real train clips, as many per label, against the same test clips.
With fewer clips than the classifier's 128 feature dimensions the distances are biased upwards;
read them against the floor (computed from as many clips).

    python -m benchmarks.samplers [--checkpoint C] [--classifier runs/classifier-digits]
        [--reference data/digits] [--per-label 20] [--steps 4,8,16,32,64,128] [--samplers all]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a file: python benchmarks/samplers.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.audio import crop_or_pad, resample, to_channels
from audiodiff.bundled import bundled_path
from audiodiff.diffusion.samplers import SAMPLERS
from audiodiff.metrics import AudioClassifier, feature_statistics, frechet_distance_from_statistics
from audiodiff.metrics.scoring import embed_files as metrics_embed_files
from audiodiff.metrics.sets import ClipSet, floor_subset, load_clips
from audiodiff.pipeline import Pipeline
from benchmarks.machine import RESULTS, command, machine_info, now, sampling_record, write_result

STEPS = (4, 8, 16, 32, 64, 128)
TARGET = ("dpmpp_2m", 10, 100, 0.10)  # sampler, few steps, many steps, allowed relative gap


def default_checkpoint() -> str | None:
    """The bundled digits model when the package ships one."""
    folder = bundled_path("digits")
    return str(folder) if folder is not None else None


def embed(classifier: AudioClassifier, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Classifier features `[n, dim]` of clips `[n, channels, samples]` or `[n, samples]`, cropped
    or zero-padded to the classifier's clip length as `audiodiff eval` does."""
    if audio.dim() == 3:
        audio = to_channels(audio, 1)[:, 0]
    audio = resample(audio.float(), sample_rate, classifier.mel_spec.sample_rate)
    length = classifier.clip_samples or classifier.mel_spec.sample_rate
    return classifier.embed(torch.stack([crop_or_pad(clip, length, random=False) for clip in audio]))


def embed_files(classifier: AudioClassifier, clips: ClipSet) -> torch.Tensor:
    """Classifier features of a clip set's files, prepared as `audiodiff eval` prepares them."""
    return metrics_embed_files(clips.paths, classifier)


def reference_and_floor(
    classifier: AudioClassifier, source: str, split: str, floor_split: str, labels: list, per_label: int
):
    """The real clips to score against (and their feature statistics), a stand-in for the
    generated set (per_label names per label), the floor clips drawn like it and their distance."""
    reference = load_clips(source, split)
    reference_stats = feature_statistics(embed_files(classifier, reference), "reference clips")
    like = ClipSet(
        "generated",
        [Path(f"{label}_{i}") for label in labels for i in range(per_label)],
        [label for label in labels for _ in range(per_label)],
    )
    floor_clips = floor_subset(load_clips(source, floor_split, side="floor"), like)
    floor = frechet_distance_from_statistics(
        *feature_statistics(embed_files(classifier, floor_clips), "floor"), *reference_stats
    )
    return reference, reference_stats, like, floor_clips, floor


class CallCounter:
    """Counts forward calls of the U-Net (network evaluations, with guidance batched into one)."""

    def __init__(self, module: torch.nn.Module):
        self.calls = 0
        module.register_forward_hook(self._hook)

    def _hook(self, *_):
        self.calls += 1


def generate_features(
    pipe: Pipeline, classifier: AudioClassifier, labels: list, per_label: int, sampler: str, steps: int, batch_size: int
) -> tuple[torch.Tensor, dict]:
    """Features of `per_label` clips per label, batched across labels, and what the calls used
    (their `out.settings`); clip k of the list always has seed k, whatever the sampler and steps."""
    jobs = [label for label in labels for _ in range(per_label)]
    features = []
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        out = pipe.generate(
            label=None if chunk[0] is None else chunk, n=len(chunk), steps=steps, sampler=sampler, seed=start
        )
        features.append(embed(classifier, out.audio, out.sample_rate))
    return torch.cat(features), sampling_record(out.settings)


def plot(rows: list[dict], floor: float | None, path: Path, title: str) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter

    figure = Figure(figsize=(6.4, 4.0))
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    for sampler in dict.fromkeys(row["sampler"] for row in rows if row["curve"]):
        points = sorted((row["steps"], row["frechet"]) for row in rows if row["sampler"] == sampler and row["curve"])
        ax.plot(*zip(*points), marker="o", label=sampler)
    if floor is not None:
        ax.axhline(floor, color="gray", linestyle="--", label="floor (real train vs test)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    steps = sorted({row["steps"] for row in rows if row["curve"]})
    ax.set_xticks(steps, [str(step) for step in steps])
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.set_xlabel("sampling steps")
    ax.set_ylabel("Fréchet distance (classifier features)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=default_checkpoint(), help="default: the bundled digits model")
    parser.add_argument("--classifier", default="runs/classifier-digits")
    parser.add_argument("--reference", default="data/digits", help="dataset with the real clips (manifest with splits)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--floor-split", default="train")
    parser.add_argument("--per-label", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--steps", default=",".join(map(str, STEPS)))
    parser.add_argument("--samplers", default="all", help="comma-separated, or all: " + ", ".join(SAMPLERS))
    parser.add_argument(
        "--no-target", action="store_true", help=f"skip {TARGET[0]} at {TARGET[1]} and {TARGET[2]} steps"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "samplers.json")
    args = parser.parse_args()
    if args.checkpoint is None:
        parser.error("no bundled digits model in this install; pass --checkpoint (a checkpoint or run directory)")
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*rank-deficient")  # said once below, with the numbers
    samplers = list(SAMPLERS) if args.samplers == "all" else args.samplers.split(",")
    steps_list = [int(s) for s in args.steps.split(",")]

    pipe = Pipeline.from_pretrained(args.checkpoint)
    classifier = AudioClassifier.load(args.classifier)
    labels = pipe.labels or [None]
    counter = CallCounter(pipe.model)
    reference, reference_stats, like, floor_clips, floor = reference_and_floor(
        classifier, args.reference, args.split, args.floor_split, labels, args.per_label
    )
    print(f"floor (real {args.floor_split} vs {args.split}, {len(floor_clips)} clips): {floor:.3f}", flush=True)
    if len(like) <= classifier.embedding_dim:
        print(
            f"note: {len(like)} clips for {classifier.embedding_dim}-dimensional features: distances are biased "
            "upwards; compare them with the floor, not with other work",
            flush=True,
        )

    cases = [(sampler, steps, True) for sampler in samplers for steps in steps_list]
    if not args.no_target:
        cases += [(TARGET[0], steps, False) for steps in TARGET[1:3] if (TARGET[0], steps, True) not in cases]
    rows = []
    for sampler, steps, curve in cases:
        counter.calls, start = 0, time.perf_counter()
        features, used = generate_features(pipe, classifier, labels, args.per_label, sampler, steps, args.batch_size)
        seconds = time.perf_counter() - start
        score = frechet_distance_from_statistics(
            *feature_statistics(features, f"{sampler} {steps} steps"), *reference_stats
        )
        batches = math.ceil(len(labels) * args.per_label / args.batch_size)
        rows.append(
            {
                "sampler": used["sampler"],
                "steps": used["steps"],
                "curve": curve,
                "frechet": score,
                "network_evaluations": counter.calls // batches,
                "seconds": round(seconds, 1),
            }
        )
        print(
            f"{sampler:>9} {steps:>4} steps: Fréchet {score:8.3f}  ({rows[-1]['network_evaluations']} network "
            f"evaluations per clip batch, {seconds:.0f} s)",
            flush=True,
        )

    target = None
    if not args.no_target:
        sampler, few, many, gap = TARGET
        few_score = next(row["frechet"] for row in rows if row["sampler"] == sampler and row["steps"] == few)
        many_score = next(row["frechet"] for row in rows if row["sampler"] == sampler and row["steps"] == many)
        target = {
            "sampler": sampler,
            "few_steps": few,
            "many_steps": many,
            "few_frechet": few_score,
            "many_frechet": many_score,
            "relative_gap": few_score / many_score - 1,
            "allowed_gap": gap,
            "met": few_score <= (1 + gap) * many_score,
        }
        print(
            f"target: {sampler} at {few} steps {few_score:.3f} vs {many} steps {many_score:.3f} "
            f"({target['relative_gap']:+.1%}; allowed +{gap:.0%}): {'met' if target['met'] else 'MISSED'}"
        )
    training = pipe.info.get("training") or {}
    plot_path = args.out.with_suffix(".png")
    title = (
        f"{Path(pipe.info['path']).name} (step {training.get('step')}), {len(like)} clips, guidance {used['guidance']}"
    )
    plot(rows, floor, plot_path, title)
    result = {
        "benchmark": "samplers",
        "date": now(),
        "command": command(),
        "machine": machine_info(),
        "checkpoint": pipe.info["path"],
        "training_step": training.get("step"),
        "training_steps_planned": training.get("steps"),
        "classifier": args.classifier,
        "reference": reference.description,
        "num_reference_clips": len(reference),
        "per_label": args.per_label,
        "num_clips": len(like),
        "guidance": used["guidance"],  # as the calls used it (the same in every row)
        "settings": used,  # the last row's calls' out.settings
        "vocoder": pipe.config.sampling.vocoder,  # the vocoder the model names (not a sampling setting)
        "floor": {"source": floor_clips.description, "frechet": floor},
        "rows": rows,
        "target": target,
        "plot": plot_path.name,
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
