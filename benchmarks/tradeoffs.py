"""The speed-quality trade-off on one page: the teacher at 1 to 64 steps with each sampler, the
few-step students, and Griffin-Lim against the GAN vocoder; for each, the Fréchet distance,
classifier accuracy, recall and coverage (in the evaluation classifier's features, against the real
test split), and seconds per clip; the teacher's NLL of real held-out clips (probability-flow ODE)
beside shuffled-frame and noise clips. Writes benchmarks/results/tradeoffs.json, tradeoffs.md and
its plots. Every case starts from the same noise (seed per clip); the floor is real train clips,
as many per label, scored the same way.

    python -m benchmarks.tradeoffs [--teacher digits] [--students digits-fast] [--per-label 4]
        [--student-steps 1,2,4]
        [--classifier runs/classifier-digits] [--reference data/digits] [--steps 1,2,4,8,16,32,64]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import torch
from tqdm.auto import tqdm

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.metrics import AudioClassifier, feature_statistics, frechet_distance_from_statistics
from audiodiff.metrics.classifier import evaluate_classifier
from audiodiff.metrics.distribution import coverage_metrics
from audiodiff.metrics.report import likelihood_lines
from audiodiff.metrics.scoring import likelihood_report
from audiodiff.metrics.sets import ClipSet, floor_subset, load_clips
from audiodiff.pipeline import Pipeline
from benchmarks.machine import RESULTS, command, machine_info, now, sampling_record, write_result
from benchmarks.samplers import CallCounter, embed, embed_files

SAMPLERS = ("ddim", "dpmpp_2m", "euler", "heun", "ddpm")
STEPS = (1, 2, 4, 8, 16, 32, 64)
MAX_STEPS = {"heun": 32, "ddpm": 32}  # two network calls per Heun step; DDPM needs many steps to be any good


def scores(
    features: torch.Tensor,
    predicted: list[str],
    intended: list[str],
    reference: torch.Tensor,
    stats,
    like: torch.Tensor,
    k: int = 5,
) -> dict:
    """Fréchet distance against all reference clips; precision/recall/density/coverage against
    `like`, real test clips as many per label as generated (the measures assume sets of one size)."""
    fd = frechet_distance_from_statistics(*feature_statistics(features, "generated"), *stats)
    coverage = coverage_metrics(like, features, k)
    accuracy = sum(p == i for p, i in zip(predicted, intended)) / len(intended)
    return {
        "frechet": round(fd, 3),
        "accuracy": round(accuracy, 3),
        "recall": round(coverage["recall"], 3),
        "coverage": round(coverage["coverage"], 3),
        "precision": round(coverage["precision"], 3),
    }


def run_case(
    pipe: Pipeline, classifier: AudioClassifier, labels: list[str], per_label: int, batch_size: int, **request
) -> tuple:
    """Features, predicted labels, the intended labels, seconds per clip of `per_label` clips per
    label, and what the calls used (their `out.settings`)."""
    jobs = [label for label in labels for _ in range(per_label)]
    features, predicted, seconds = [], [], 0.0
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        began = time.perf_counter()
        out = pipe.generate(label=chunk, n=len(chunk), seed=start, **request)
        seconds += time.perf_counter() - began
        features.append(embed(classifier, out.audio, out.sample_rate))
        probabilities = classifier.predict_proba(out.audio[:, 0] if out.audio.dim() == 3 else out.audio)
        predicted += [classifier.labels[i] for i in probabilities.argmax(-1).tolist()]
    return torch.cat(features), predicted, jobs, seconds / len(jobs), sampling_record(out.settings)


def plot_tradeoff(rows: list[dict], floor: dict, path: Path, title: str) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4))
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    for group in dict.fromkeys(row["case"] for row in rows):  # a line per sampler, a point per student or vocoder
        points = [row for row in rows if row["case"] == group]
        marker = "o-" if len(points) > 1 else "s"
        left.plot([p["seconds_per_clip"] for p in points], [p["frechet"] for p in points], marker, label=group)
        right.plot([p["seconds_per_clip"] for p in points], [p["recall"] for p in points], marker, label=group)
    left.axhline(floor["frechet"], color="gray", linestyle="--", label="floor (real train vs test)")
    right.axhline(floor["recall"], color="gray", linestyle="--", label="floor")
    for ax, name in ((left, "Fréchet distance (lower is better)"), (right, "recall (higher is better)")):
        ax.set_xscale("log")
        ax.set_xlabel("seconds per clip (this CPU)")
        ax.set_ylabel(name)
    left.set_yscale("log")
    left.legend(fontsize=7)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def write_page(result: dict, path: Path) -> Path:
    rows, floor = result["rows"], result["floor"]
    lines = [
        "# Speed and quality: samplers, steps, students, vocoders",
        "",
        f"_{result['machine']['cpu_model']}, {result['machine']['threads']} threads; {result['date']}; `{result['command']}`_",
        "",
        f"{result['num_clips']} clips per case ({result['per_label']} per label, the same seeds in every case), "
        f"scored in the evaluation classifier's features ({result['classifier']}) against {result['reference']} "
        "(Fréchet distance: all of it; precision, recall, density and coverage: as many clips per label as generated). "
        "With fewer clips than the 128 feature dimensions the Fréchet distance is biased upwards: read it against the "
        "floor, real train clips as many per label, scored the same way. "
        f"Recall and coverage use k = {result.get('k', 5)} neighbours.",
        "",
        f"![trade-off]({result['plot']})",
        "",
        "| case | steps | network calls | seconds/clip | Fréchet | accuracy | recall | coverage | precision |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| real train clips (floor) | – | – | – | {floor['frechet']:.2f} | {floor['accuracy']:.3f} | {floor['recall']:.3f} | "
        f"{floor['coverage']:.3f} | {floor['precision']:.3f} |",
    ]
    for row in rows:
        lines.append(
            f"| {row['case']} | {row['steps']} | {row['network_calls']} | {row['seconds_per_clip']:.3f} | {row['frechet']:.2f} | "
            f"{row['accuracy']:.3f} | {row['recall']:.3f} | {row['coverage']:.3f} | {row['precision']:.3f} |"
        )
    if result.get("likelihood"):
        lines += ["", *likelihood_lines(result["likelihood"], "## Likelihood of the teacher")]
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="digits")
    parser.add_argument("--students", default="digits-fast", help="comma-separated ('' for none)")
    parser.add_argument(
        "--student-steps",
        default="",
        help="comma-separated step counts for every student (e.g. 1,2,4: the cost of sharpness in recall); "
        "default: each at its own",
    )
    parser.add_argument("--classifier", default="runs/classifier-digits")
    parser.add_argument("--reference", default="data/digits")
    parser.add_argument(
        "--per-label",
        type=int,
        default=8,
        help="clips per label and case; keep it above k + 1, or each clip's k-th neighbour lies in another label",
    )
    parser.add_argument(
        "--k", type=int, default=5, help="nearest neighbours for precision, recall, density and coverage"
    )
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--steps", default=",".join(map(str, STEPS)))
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--likelihood-clips", type=int, default=8, help="0 skips the NLL")
    parser.add_argument("--likelihood-steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "tradeoffs.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*rank-deficient")
    began = time.perf_counter()
    classifier = AudioClassifier.load(args.classifier)
    teacher = Pipeline.from_pretrained(args.teacher)
    labels = teacher.labels
    reference = load_clips(args.reference, "test")
    print(f"embedding {len(reference)} reference clips", file=sys.stderr)
    reference_features = embed_files(classifier, reference)
    stats = feature_statistics(reference_features, "reference")
    like = ClipSet(
        "generated",
        [Path(f"{label}_{i}") for label in labels for i in range(args.per_label)],
        [label for label in labels for _ in range(args.per_label)],
    )
    floor_clips = floor_subset(load_clips(args.reference, "train", side="floor"), like)
    floor_features = embed_files(classifier, floor_clips)
    matched = embed_files(classifier, floor_subset(reference, like, seed=1))  # real test clips, as many per label
    if args.per_label <= args.k + 1:
        print(
            f"note: {args.per_label} clips per label with k={args.k}: every k-th neighbour lies in another label, so "
            "recall and coverage read near 1 whatever the model; use --per-label above k + 1",
            file=sys.stderr,
        )
    floor = scores(floor_features, floor_clips.labels, floor_clips.labels, reference_features, stats, matched, args.k)
    floor["accuracy"] = round(evaluate_classifier(classifier, floor_clips.pairs())["accuracy"], 3)

    cases = []
    for sampler in args.samplers.split(","):
        for steps in (int(s) for s in args.steps.split(",")):
            if steps <= MAX_STEPS.get(sampler, 10**6):
                cases.append(
                    (f"{args.teacher}, {sampler}", teacher, {"sampler": sampler, "steps": steps, "vocoder_name": None})
                )
    default_sampler = teacher.resolve().sampler  # the teacher's own, as a call without options resolves it
    cases.append((f"{args.teacher}, {default_sampler}, Griffin-Lim", teacher, {"vocoder_name": "griffin_lim"}))
    for name in filter(None, args.students.split(",")):
        student = Pipeline.from_pretrained(name)
        if not args.student_steps:
            cases.append((f"{name} (student)", student, {"vocoder_name": None}))  # at its own sampler and steps
        for steps in (int(s) for s in filter(None, args.student_steps.split(","))):
            cases.append((f"{name} (student)", student, {"steps": steps, "vocoder_name": None}))
    rows = []
    griffin_lim = Pipeline.from_pretrained(args.teacher, vocoder="griffin_lim")
    warm: set[int] = set()
    for case, pipe, settings in tqdm(cases, desc="cases", unit="case"):
        vocoder_name = settings.pop("vocoder_name")
        target = griffin_lim if vocoder_name == "griffin_lim" else pipe
        if id(target) not in warm:  # the first call of a shape builds oneDNN primitives: not part of any case's time
            run_case(
                target,
                classifier,
                labels[:1],
                min(args.batch_size, args.per_label * len(labels)),
                args.batch_size,
                steps=1,
            )
            warm.add(id(target))
        counter = CallCounter(target.model)
        features, predicted, intended, seconds, used = run_case(
            target, classifier, labels, args.per_label, args.batch_size, **settings
        )
        if pipe is teacher:
            guidance = used["guidance"]
        batches = math.ceil(len(intended) / args.batch_size)
        row = {
            "case": case,
            "steps": used["steps"],
            "sampler": used["sampler"],
            "guidance": used["guidance"],
            "vocoder": vocoder_name or pipe.config.sampling.vocoder,
            "network_calls": counter.calls // batches,
            "seconds_per_clip": round(seconds, 4),
            **scores(features, predicted, intended, reference_features, stats, matched, args.k),
        }
        rows.append(row)
        tqdm.write(
            f"{case:<40} {row['steps']:>3} steps  FD {row['frechet']:8.2f}  acc {row['accuracy']:.3f}  "
            f"recall {row['recall']:.3f}  coverage {row['coverage']:.3f}  {seconds:.3f} s/clip"
        )
    likelihood = None
    if args.likelihood_clips:
        likelihood = likelihood_report(teacher, reference, args.likelihood_clips, args.likelihood_steps)
    plot_path = args.out.with_suffix(".png")
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    plot_tradeoff(rows, floor, plot_path, f"{args.teacher}: {len(like)} clips per case, guidance {guidance}")
    result = {
        "benchmark": "tradeoffs",
        "date": now(),
        "command": command(),
        "machine": machine_info(),
        "teacher": args.teacher,
        "classifier": args.classifier,
        "reference": reference.description,
        "per_label": args.per_label,
        "num_clips": len(like),
        "guidance": guidance,  # the teacher's, as its calls used it
        "floor": {"source": floor_clips.description, **floor},
        "k": args.k,
        "rows": rows,
        "likelihood": likelihood,
        "plot": plot_path.name,
        "seconds": round(time.perf_counter() - began, 1),
    }
    write_result(result, args.out)
    write_page(result, args.out.with_suffix(".md"))
    print(f"wrote {args.out.with_suffix('.md')} in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
