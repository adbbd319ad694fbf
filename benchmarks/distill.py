"""Few-step students against their teacher at equal network calls per clip.

For each budget of U-Net calls per clip (default 1, 2, 4, 8) the teacher runs with its best
sampler at that budget (guided: budget / 2 steps, two calls each; unguided: budget steps) beside
every student whose steps fit the budget; the teacher at its own defaults is the reference row.
Each row: Fréchet distance to the real test split in the evaluation classifier's features,
classifier accuracy on the asked digit, calls per clip (counted on the U-Net), seconds per clip;
the floor is real train clips against the same test clips. A plot of quality against calls and
the distillation's training time beside the teacher's complete the JSON.

    python -m benchmarks.distill --student runs/digits-fast/guidance --student runs/digits-fast/steps-1 ...
        [--teacher digits] [--classifier runs/classifier-digits] [--per-label 10] [--budgets 1,2,4,8]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiodiff.metrics import AudioClassifier, accuracy_report, feature_statistics, frechet_distance_from_statistics
from audiodiff.pipeline import Pipeline
from benchmarks.machine import RESULTS, command, machine_info, now, sampling_record, write_result
from benchmarks.samplers import embed, reference_and_floor

TEACHER_SAMPLERS = ("dpmpp_2m", "ddim", "euler", "heun")  # heun takes two calls per step


class RowCounter:
    """Network evaluations: U-Net rows processed (a guided call on 2n rows counts 2 per clip)."""

    def __init__(self, module: torch.nn.Module):
        self.rows = 0
        module.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.rows += inputs[0].shape[0]


def score(pipe: Pipeline, classifier, reference_stats, labels, per_label, batch_size, **options) -> dict:
    """Sample per_label clips per label (clip k has seed k) and score them; "settings": what the
    calls used (their `out.settings`)."""
    counter = RowCounter(pipe.model) if not hasattr(pipe, "_counter") else pipe._counter
    pipe._counter = counter
    counter.rows, started = 0, time.perf_counter()
    jobs = [label for label in labels for _ in range(per_label)]
    features, predicted = [], []
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        out = pipe.generate(label=chunk, n=len(chunk), seed=start, **options)
        features.append(embed(classifier, out.audio, out.sample_rate))
        predicted += classifier.predict(out.audio[:, 0])
    seconds = time.perf_counter() - started
    frechet = frechet_distance_from_statistics(*feature_statistics(torch.cat(features), "generated"), *reference_stats)
    return {
        "frechet": frechet,
        "accuracy": accuracy_report(classifier.labels, jobs, predicted)["accuracy"],
        "calls_per_clip": counter.rows // len(jobs),
        "seconds_per_clip": round(seconds / len(jobs), 4),
        "settings": sampling_record(out.settings),
    }


def calls_of(pipe: Pipeline, sampler: str, steps: int, guidance: float) -> int:
    """Network evaluations per clip (Heun's last step is an Euler step)."""
    guided = guidance != 1.0 and "guidance_scale" not in pipe.model.conditioner.conditions
    return (2 * steps - 1 if sampler == "heun" else steps) * (2 if guided else 1)


def training_hours(pipe: Pipeline) -> float | None:
    seconds = (pipe.info.get("training") or {}).get("wall_seconds")
    return None if seconds is None else round(seconds / 3600, 3)


def plot(rows: list[dict], floor: float, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0))
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    for name in dict.fromkeys(row["model"] for row in rows):
        points = sorted((row["calls_per_clip"], row["frechet"]) for row in rows if row["model"] == name)
        ax.plot(*zip(*points), marker="o", label=name)
    ax.axhline(floor, color="gray", linestyle="--", label="floor (real train vs test)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("U-Net calls per clip")
    ax.set_ylabel("Fréchet distance (classifier features)")
    ax.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def targets(rows: list[dict], reference: dict, students: list[dict], teacher_hours: float | None) -> list[dict]:
    """The issue's targets: the 2-call student within 1.1x the teacher's Fréchet distance at its
    defaults (accuracy within 1 point), the 1-call student within 1.3x; distilling the 2-call
    student at most 25% of the teacher's training time."""
    out = []
    for calls, factor in ((2, 1.1), (1, 1.3)):
        found = [row for row in rows if row["model"] != "teacher (best sampler)" and row["calls_per_clip"] == calls]
        if not found:
            continue
        best = min(found, key=lambda row: row["frechet"])
        ratio = best["frechet"] / reference["frechet"]
        accuracy_gap = reference["accuracy"] - best["accuracy"]
        out.append(
            {
                "what": f"{calls}-call student vs teacher at its defaults",
                "model": best["model"],
                "frechet_ratio": ratio,
                "allowed_ratio": factor,
                "accuracy_gap": accuracy_gap,
                "met": ratio <= factor and accuracy_gap <= 0.01,
            }
        )
    chain = [s for s in students if s["method"] == "guidance" or (s["method"] == "progressive" and s["steps"] >= 2)]
    if teacher_hours and any(s["method"] == "progressive" and s["steps"] == 2 for s in chain):
        spent = sum(s["training_hours"] or 0 for s in chain)
        out.append(
            {
                "what": "distillation hours to the 2-call student vs the teacher's training hours",
                "distill_hours": round(spent, 3),
                "teacher_hours": teacher_hours,
                "ratio": spent / teacher_hours,
                "allowed_ratio": 0.25,
                "met": spent <= 0.25 * teacher_hours,
                "stages": [s["name"] for s in chain],
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="digits")
    parser.add_argument(
        "--student", action="append", default=[], help="a student checkpoint or run directory (repeatable)"
    )
    parser.add_argument("--classifier", default="runs/classifier-digits")
    parser.add_argument("--reference", default="data/digits")
    parser.add_argument("--split", default="test")
    parser.add_argument("--floor-split", default="train")
    parser.add_argument("--per-label", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--budgets", default="1,2,4,8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "distill.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*rank-deficient")
    budgets = [int(b) for b in args.budgets.split(",")]

    classifier = AudioClassifier.load(args.classifier)
    teacher = Pipeline.from_pretrained(args.teacher)
    labels = teacher.labels
    _, reference_stats, like, floor_clips, floor = reference_and_floor(
        classifier, args.reference, args.split, args.floor_split, labels, args.per_label
    )
    print(f"floor: {floor:.3f} ({len(floor_clips)} real {args.floor_split} clips)", flush=True)

    def run(name, pipe, **options):
        """One row: `options` (sampler, steps, guidance; left out: the model's own) as the calls used them."""
        scored = score(pipe, classifier, reference_stats, labels, args.per_label, args.batch_size, **options)
        used = scored["settings"]
        row = {
            "model": name,
            "sampler": used["sampler"],
            "steps": used["steps"],
            "guidance": used["guidance"],
            **scored,
        }
        print(
            f"{name:>28} {row['sampler']:>9} {row['steps']:>3} steps g={row['guidance']:<4} "
            f"calls {row['calls_per_clip']:>3}  "
            f"Fréchet {row['frechet']:8.3f}  accuracy {row['accuracy']:.3f}  {row['seconds_per_clip']:.3f} s/clip",
            flush=True,
        )
        return row

    reference_row = run("teacher (defaults)", teacher)
    rows = []
    for budget in budgets:
        best = None
        for sampler in TEACHER_SAMPLERS:
            for guidance in (reference_row["guidance"], 1.0):
                steps = next(
                    (n for n in range(budget, 0, -1) if calls_of(teacher, sampler, n, guidance) == budget), None
                )
                if steps is None:
                    continue
                row = run(f"teacher ({budget} calls)", teacher, sampler=sampler, steps=steps, guidance=guidance)
                row["budget"] = budget
                best = row if best is None or row["frechet"] < best["frechet"] else best
        if best is not None:
            rows.append({**best, "model": "teacher (best sampler)"})
    students = []
    for path in args.student:
        pipe = Pipeline.from_pretrained(path)
        student = pipe.config.student
        name = f"{student.method} student ({student.steps} steps)" if student else str(path)
        students.append(
            {
                "path": str(path),
                "name": name,
                "training_hours": training_hours(pipe),
                "steps": student.steps if student else None,
                "teacher": student.teacher if student else None,
                "method": student.method if student else None,
            }
        )
        for budget in budgets:  # at its own sampler and guidance (a student with guidance baked in: one call)
            if student and student.method == "progressive" and budget != student.steps:
                continue
            row = run(name, pipe, steps=budget)
            rows.append({**row, "budget": budget})
    plot_path = plot(rows + [{**reference_row, "model": "teacher (defaults)"}], floor, args.out.with_suffix(".png"))
    result = {
        "benchmark": "distill",
        "date": now(),
        "command": command(),
        "machine": machine_info(),
        "teacher": {"name": args.teacher, "training_hours": training_hours(teacher)},
        "students": students,
        "classifier": args.classifier,
        "num_clips": len(like),
        "floor": floor,
        "reference_row": reference_row,
        "rows": rows,
        "targets": targets(rows, reference_row, students, training_hours(teacher)),
        "plot": plot_path.name,
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
