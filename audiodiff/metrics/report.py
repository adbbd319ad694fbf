"""The report of an evaluation: `metrics.json`, `report.md`, its plots and the memorisation page,
and the lines `audiodiff eval` prints. Everything here reads a result; nothing is computed anew.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from audiodiff.audio import crop_or_pad, load_audio, save_audio
from audiodiff.metrics.distribution import COVERAGE_K
from audiodiff.metrics.plots import plot_class_accuracy, plot_spectrogram_grid
from audiodiff.metrics.sets import ClipSet

__all__ = [
    "likelihood_lines",
    "plot_sets",
    "summary_lines",
    "write_json",
    "write_memorisation_page",
    "write_report",
]


def write_json(result: dict, path: str | os.PathLike) -> Path:
    """`result` as indented JSON at `path`."""
    path = Path(path)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def _number(value) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"


def write_report(result: dict, path: str | os.PathLike) -> Path:
    """A short markdown report of an `evaluate` result: scores beside the floor, per-class
    accuracy, the plots and where every side came from."""
    lines = ["# Evaluation", ""]
    lines += [f"- generated: {result['generated']['source']} ({result['generated']['num_clips']} clips)"]
    if result.get("sampling"):
        settings = result["sampling"]
        lines += [
            f"  - sampled from {settings['checkpoint']} (training step {settings['training_step']}): "
            f"{settings['sampler']}, {settings['steps']} steps, guidance {settings['guidance']}, "
            f"vocoder {settings['vocoder']}, seed {settings['seed']}"
        ]
    lines += [f"- reference: {result['reference']['source']} ({result['reference']['num_clips']} clips)"]
    if result["floor"]:
        lines += [f"- floor: {result['floor']['source']}, scored against the same reference"]
    else:
        lines += ["- floor: none (pass --floor-split or --floor-reference for real-vs-real numbers)"]
    if result["classifier"]:
        evaluation = result["classifier"].get("evaluation") or {}
        known = ", ".join(f"{split} accuracy {scores['accuracy']:.3f}" for split, scores in evaluation.items())
        lines += [
            f"- classifier: {result['classifier']['path'] or 'given in Python'}" + (f" ({known})" if known else "")
        ]
    lines += [
        f"- clips compared at {result['sample_rate']} Hz, {result['clip_seconds']:g} s (cropped or zero-padded)",
        f"- date: {result['date']}",
    ]
    dims = result.get("embedding_dim")
    fewest = min(result["generated"]["num_clips"], result["reference"]["num_clips"])
    if dims and fewest <= dims:
        lines += [
            f"- note: {fewest} clips for {dims}-dimensional classifier features: the Fréchet distance is biased "
            "upwards; compare it with the floor (computed from as many clips), not with other papers"
        ]
    counts = result["generated"].get("label_counts") or {}
    if counts and min(counts.values()) <= COVERAGE_K + 1:
        lines += [
            f"- note: {min(counts.values())} generated clips per label with k = {COVERAGE_K} neighbours: each clip's "
            "k-th neighbour lies in another label, so recall and coverage read high whatever the model; "
            f"generate more than {COVERAGE_K + 1} per label (--per-label) for numbers that separate models"
        ]
    lines += [""]
    lines += ["| score | better | model | floor (real vs real) | reference clips |", "|---|---|---|---|---|"]
    for row in result["scores"]:
        lines.append(
            f"| {row['title']} | {row['better']} | {_number(row['model'])} | {_number(row['floor'])} | "
            f"{_number(row['reference'])} |"
        )
    accuracy = result["per_class_accuracy"]
    if accuracy["model"]:
        lines += ["", "## Per-class accuracy", "", "| label | model | floor |", "|---|---|---|"]
        for label, value in accuracy["model"].items():
            lines.append(f"| {label} | {_number(value)} | {_number((accuracy['floor'] or {}).get(label))} |")
        lines += ["", "![per-class accuracy](class_accuracy.png)"]
    if result.get("likelihood"):
        lines += ["", *likelihood_lines(result["likelihood"])]
    found = result.get("memorisation")
    if found:
        lines += [
            "",
            "## Memorisation",
            "",
            f"Nearest training clip ({found['training_source']}) of each generated clip, in the classifier's features: "
            f"{found['copy_share']:.1%} of generated clips are nearer one than the nearest {found['percentile']:g}% of "
            f"held-out real clips are ({found['threshold']:.3f}; about {found['percentile']:g}% for a model that does not copy). "
            f"Median nearest distance: generated {found['generated_median_distance']:.3f}, held-out "
            f"{found['heldout_median_distance']:.3f}. Closest pairs: [memorisation.html](memorisation.html).",
            "",
            "![nearest training distances](memorisation.png)",
        ]
    lines += ["", "## Spectrograms (first clip of each label)", ""]
    for plot in result["plots"]:
        if plot.endswith("_spectrograms.png"):
            lines += [f"![{plot[: -len('_spectrograms.png')]}]({plot})", ""]
    path = Path(path)
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path


def likelihood_lines(likelihood: dict, heading: str = "## Likelihood") -> list[str]:
    """Markdown for a `likelihood_report`: what was measured and a table of the three sets."""
    lines = [
        heading,
        "",
        f"Negative log-likelihood from the probability-flow ODE ({likelihood['steps']} Runge-Kutta steps, one "
        f"Hutchinson probe) of {likelihood['clips']} reference clips, in bits per dimension of the model's space "
        f"({likelihood['space']}, {likelihood['dims']} dimensions; continuous, so below zero is possible); "
        f"{'conditioned on their labels' if likelihood['conditional'] else 'unconditional'}. Lower is more probable.",
        "",
        "| clips | NLL (bits/dim) | standard error |",
        "|---|---|---|",
    ]
    return lines + [
        f"| {name} | {row['mean_bits_per_dim']:.3f} | {row['standard_error']:.3f} |"
        for name, row in likelihood["sets"].items()
    ]


def summary_lines(result: dict, out_dir: str | os.PathLike) -> list[str]:
    """What `audiodiff eval` prints: each score beside the floor, the likelihood, memorisation."""
    lines = [f"{'score':<54} {'model':>10} {'floor':>10}"]
    for row in result["scores"]:
        model, floor_value = (f"{row[key]:.4g}" if row[key] is not None else "-" for key in ("model", "floor"))
        lines.append(f"{row['title'] + ' (' + row['better'] + ' is better)':<54} {model:>10} {floor_value:>10}")
    for name, row in (result.get("likelihood") or {}).get("sets", {}).items():
        lines.append(f"NLL {name:<36} {row['mean_bits_per_dim']:>10.3f} ± {row['standard_error']:.3f} bits/dim")
    if result.get("memorisation"):
        found = result["memorisation"]
        lines.append(
            f"memorisation: {found['copy_share']:.1%} of generated clips nearer a training clip than {found['percentile']:g}% "
            f"of held-out clips; closest pairs in {Path(out_dir) / 'memorisation.html'}"
        )
    lines.append(f"wrote {Path(out_dir) / 'metrics.json'} and {Path(out_dir) / 'report.md'}")
    return lines


# --------------------------------------------------------------------------------------------
# Plots


def _examples(clips: ClipSet, limit: int = 10) -> tuple[list[Path], list[str]]:
    """The first clip of each label (up to `limit`), or the first `limit` clips when unlabelled."""
    if not clips.labelled:
        return clips.paths[:limit], [path.stem for path in clips.paths[:limit]]
    first: dict[str, Path] = {}
    for path, label in zip(clips.paths, clips.labels):
        first.setdefault(label, path)
    labels = sorted(first)[:limit]
    return [first[label] for label in labels], labels


def plot_sets(
    sets: dict[str, ClipSet],
    out_dir: str | os.PathLike,
    sample_rate: int,
    clip_seconds: float,
    accuracy: dict | None = None,
    floor_accuracy: dict | None = None,
    accuracy_name: str = "class_accuracy",
) -> list[Path]:
    """`SIDE_spectrograms.png` per set (the first clip of each label, cropped or zero-padded to
    `clip_seconds`) and, given per-class `accuracy`, `ACCURACY_NAME.png` beside the floor's."""
    out_dir, samples = Path(out_dir), round(clip_seconds * sample_rate)
    paths = []
    for side, clips in sets.items():
        files, titles = _examples(clips)
        audio = [
            crop_or_pad(load_audio(path, sample_rate=sample_rate, channels=1)[0][0], samples, random=False)
            for path in files
        ]
        grid = out_dir / f"{side}_spectrograms.png"
        paths.append(plot_spectrogram_grid(audio, grid, sample_rate, titles=titles, columns=5))
    if accuracy:
        chart = out_dir / f"{accuracy_name}.png"
        names = ("generated", "real (floor)")
        paths.append(plot_class_accuracy(accuracy, chart, "Per-class accuracy", compare=floor_accuracy, names=names))
    return paths


def write_memorisation_page(found: dict, training_clips: int, out_dir: str | os.PathLike, sample_rate: int) -> Path:
    """For a `memorisation_scores` result: a histogram of both sets' nearest training distances
    (`memorisation.png`) and `memorisation.html`, the closest pairs with players and spectrograms."""
    from audiodiff.plots import plot_histograms, plot_spectrograms

    out_dir = Path(out_dir)
    page = out_dir / "memorisation"
    page.mkdir(parents=True, exist_ok=True)
    generated, heldout = len(found["generated_distances"]), len(found["heldout_distances"])
    rows, clips, titles = [], [], []
    for rank, pair in enumerate(found["closest_pairs"]):
        cells = []
        for side in ("generated", "training"):
            path = Path(pair[side])
            audio = load_audio(path, sample_rate=sample_rate, channels=1)[0]
            name = f"{rank:02d}_{side}.wav"
            save_audio(page / name, audio, sample_rate)
            clips.append(audio[0])
            titles.append(f"{rank}: {side} {path.name}")
            cells.append(f'<td>{side}: {path.name}<br><audio controls src="memorisation/{name}"></audio></td>')
        rows.append(f"<tr><td>{rank}</td><td>{pair['distance']:.3f}</td>{''.join(cells)}</tr>")
    if clips:
        plot_spectrograms(clips, sample_rate, out_dir / "memorisation_pairs.png", titles, columns=2)
    plot_histograms(
        {
            f"held-out real ({heldout})": found["heldout_distances"],
            f"generated ({generated})": found["generated_distances"],
        },
        out_dir / "memorisation.png",
        "distance to the nearest training clip (classifier features)",
        (found["threshold"], f"{found['percentile']:g}th percentile of held-out"),
    )
    path = out_dir / "memorisation.html"
    path.write_text(
        "<!doctype html><meta charset='utf-8'><title>Closest generated-training pairs</title>"
        f"<h1>Generated clips nearest to training clips</h1><p>{found['copy_share']:.1%} of {generated} generated clips "
        f"lie nearer a training clip than {found['percentile']:g}% of held-out real clips do (threshold {found['threshold']:.3f}; "
        f"{found['training_source']}, {training_clips} clips).</p><img src='memorisation.png'><table border=1 cellpadding=4>"
        "<tr><th>rank</th><th>distance</th><th>generated</th><th>nearest training clip</th></tr>"
        + "".join(rows)
        + "</table><img src='memorisation_pairs.png' style='max-width:100%'>\n"
    )
    return path
