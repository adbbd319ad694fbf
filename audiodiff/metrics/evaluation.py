"""`audiodiff eval`, over `evaluate_folders` (`metrics.evaluate`): generated clips (or a checkpoint
to sample them from) against real clips, beside the floor that real clips reach; and its classifier.

The floor is the same evaluation with real clips of another split (e.g. train) in the generated
clips' place, as many per label as were generated, against the same reference. Real audio is as
good as a model can get, and a Fréchet distance depends on how many clips it sees, so both
columns are computed the same way and read side by side.

    audiodiff eval train-classifier --data data/digits --out runs/classifier-digits
    audiodiff eval --checkpoint runs/digits-mel --per-label 32 --reference data/digits --split test \\
        --classifier runs/classifier-digits --floor-split train --out runs/eval-digits

Sources are folders of audio (labels from first-level subfolders, `ROOT/LABEL/clip.wav`) or
dataset manifests (`.jsonl`/`.csv`, or a folder holding `manifest.jsonl`) with `label` and
`split` columns, as the digits and notes builders write them.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import functools
import json
import os
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from audiodiff.audio import AUDIO_EXTENSIONS, audio_info, crop_or_pad, load_audio, save_audio
from audiodiff.config import DataConfig
from audiodiff.data.dataset import DatasetError, scan_items
from audiodiff.data.layouts import manifest_file
from audiodiff.errors import UserError
from audiodiff.metrics.classifier import AudioClassifier, evaluate_classifier, train_classifier
from audiodiff.metrics.distribution import memorisation
from audiodiff.metrics.embeddings import EMBEDDINGS
from audiodiff.metrics.evaluate import COVERAGE_K, embed_files, evaluate_folders, find_audio
from audiodiff.metrics.plots import default_mel_spec, plot_class_accuracy, plot_spectrogram_grid

__all__ = [
    "SCORES",
    "ClipSet",
    "EvaluationError",
    "available_splits",
    "check_labels",
    "evaluate",
    "floor_subset",
    "load_classifier",
    "load_clips",
    "sample_checkpoint",
    "train_evaluation_classifier",
    "write_report",
]

FOLDER_SPLITS = ("train", "valid", "validation", "test")  # subfolder names read as splits
MIN_FRECHET_CLIPS = 2  # per set; a number worth reporting needs more clips than embedding dimensions


class EvaluationError(UserError, ValueError):
    """Input an evaluation cannot use; the message names the value and the fix."""


# --------------------------------------------------------------------------------------------
# Clip sets


@dataclasses.dataclass
class ClipSet:
    """One side of an evaluation: audio files and their labels (None where unknown)."""

    description: str
    paths: list[Path]
    labels: list[str | None]

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def labelled(self) -> bool:
        return bool(self.labels) and None not in self.labels

    def label_counts(self) -> dict[str, int]:
        """Clips per label (sorted by label); empty for an unlabelled set."""
        if not self.labelled:
            return {}
        return dict(sorted(collections.Counter(self.labels).items()))

    def every(self, stride: int) -> ClipSet:
        """Every `stride`-th clip (a smaller set drawn evenly over the whole)."""
        if stride <= 1:
            return self
        return ClipSet(f"{self.description}, one clip in {stride}", self.paths[::stride], self.labels[::stride])

    def pairs(self) -> list[tuple[Path, str | None]]:
        """`(path, label)` pairs, as `evaluate_folders` and `train_classifier` take them."""
        return list(zip(self.paths, self.labels))


@functools.lru_cache(maxsize=4)
def _manifest_items(path: str) -> tuple:
    """The usable items of a manifest (checked once per process; unreadable files are skipped)."""
    try:
        items, _ = scan_items(DataConfig(path=path, layout="manifest", split=None), progress=False)
    except DatasetError as error:
        raise EvaluationError(str(error)) from None
    return tuple(items)


def available_splits(source: str | os.PathLike) -> list[str]:
    """The splits a source offers: a manifest's `split` values, or a folder's split subfolders."""
    path = Path(source).expanduser()
    manifest = manifest_file(path)
    if manifest is not None:
        return sorted({item.split for item in _manifest_items(str(path)) if item.split})
    if path.is_dir():
        return [name for name in FOLDER_SPLITS if (path / name).is_dir()]
    return []


def load_clips(source: str | os.PathLike, split: str | None = None, side: str = "reference") -> ClipSet:
    """The clips of `source` (of `split`, when given): a manifest, a folder holding one, or a
    folder of audio whose first-level subfolders name the labels (a split picks `source/split`)."""
    path = Path(source).expanduser()
    if not path.exists():
        raise EvaluationError(
            f"{side} {path}: no such file or folder; pass a folder of audio (ROOT/LABEL/clip.wav) or a dataset manifest"
        )
    if manifest_file(path) is not None:
        return _manifest_clips(path, split, side)
    if path.is_file():
        raise EvaluationError(f"{side} {path}: not a folder nor a .jsonl/.csv manifest")
    if split is not None:
        if not (path / split).is_dir():
            found = available_splits(path)
            raise EvaluationError(
                f"{side} {path}: no {split!r} split (no manifest.jsonl and no {split}/ subfolder; "
                f"split subfolders found: {found or 'none'}); pick another split, or none for the whole folder"
            )
        path = path / split
    files = find_audio(path)
    if not files:
        raise EvaluationError(
            f"{side} folder {path}: no audio files ({', '.join(AUDIO_EXTENSIONS)}); check the path, "
            "or sample clips first (--checkpoint)"
        )
    relative = [file.relative_to(path) for file in files]
    labelled = all(len(parts.parts) >= 2 for parts in relative)
    labels = [parts.parts[0] if labelled else None for parts in relative]
    return ClipSet(str(path), files, labels)


def _manifest_clips(path: Path, split: str | None, side: str) -> ClipSet:
    items = list(_manifest_items(str(path)))
    if split is not None:
        splits = sorted({item.split for item in items if item.split})
        items = [item for item in items if item.split == split]
        if not items:
            have = f"its splits are {splits}" if splits else "it has no split column"
            raise EvaluationError(f"{side} {path}: no clips of split {split!r}; {have}; pick one of those or none")
    description = f"{path} (split {split})" if split else str(path)
    return ClipSet(description, [Path(item.path) for item in items], [item.label for item in items])


def floor_subset(pool: ClipSet, like: ClipSet, seed: int = 0) -> ClipSet:
    """Real clips to stand in for `like` (the generated clips): as many per label, drawn at
    random from `pool` with `seed` (as many in total when either side is unlabelled)."""
    rng = random.Random(seed)
    if like.labelled and pool.labelled:
        by_label: dict[str, list[int]] = collections.defaultdict(list)
        for index, label in enumerate(pool.labels):
            by_label[label].append(index)
        chosen = []
        for label, count in like.label_counts().items():
            if len(by_label[label]) < count:
                raise EvaluationError(
                    f"floor {pool.description}: {len(by_label[label])} clips labelled {label!r}, fewer than the "
                    f"{count} generated ones; use a larger split for the floor or fewer clips per label"
                )
            chosen += rng.sample(by_label[label], count)
    else:
        if len(pool) < len(like):
            raise EvaluationError(
                f"floor {pool.description}: {len(pool)} clips, fewer than the {len(like)} generated ones; "
                "use a larger split for the floor or fewer generated clips"
            )
        chosen = rng.sample(range(len(pool)), len(like))
    chosen.sort()
    return ClipSet(
        f"{pool.description}, {len(chosen)} drawn at random (seed {seed})",
        [pool.paths[i] for i in chosen],
        [pool.labels[i] for i in chosen],
    )


# --------------------------------------------------------------------------------------------
# Sampling from a checkpoint


def sample_checkpoint(
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    per_label: int,
    labels: Sequence[str] | None = None,
    steps: int | None = None,
    sampler: str | None = None,
    guidance: float | None = None,
    seed: int = 0,
    batch_size: int = 16,
    vocoder: str | None = None,
    overwrite: bool = False,
    classifier: AudioClassifier | None = None,
    progress: bool = True,
    device: str = "cpu",
    adapters: dict | None = None,
) -> tuple[ClipSet, dict]:
    """Sample `per_label` clips of each label (default: all the model's labels; `per_label` in
    total for an unconditional model) into `out_dir/LABEL/`. Returns the clips and the settings.
    With `classifier`, labels it does not know are an error before anything is sampled."""
    from audiodiff.pipeline import Pipeline

    if per_label < 1 or batch_size < 1:
        raise EvaluationError(f"--per-label {per_label} and --batch-size {batch_size} must be at least 1")
    pipe = Pipeline.from_pretrained(checkpoint, vocoder=vocoder, device=device, adapters=adapters or None)
    wanted: list[str | None] = list(labels) if labels else (pipe.labels or [None])
    unknown = sorted(set(wanted) - set(pipe.labels)) if labels else []
    if unknown:
        raise EvaluationError(f"labels {unknown} are not labels of {checkpoint} ({pipe.labels})")
    check_labels(wanted, classifier, f"checkpoint {checkpoint}")
    if per_label * len(wanted) < MIN_FRECHET_CLIPS:
        raise EvaluationError(
            f"--per-label {per_label} with {len(wanted)} label(s) makes {per_label * len(wanted)} clip; a Fréchet "
            f"distance needs at least {MIN_FRECHET_CLIPS} (and more than the embedding dimension for a reportable number)"
        )
    out_dir = Path(out_dir)
    existing = find_audio(out_dir) if out_dir.is_dir() else []
    if existing and not overwrite:
        raise EvaluationError(
            f"{out_dir}: already holds {len(existing)} clips; pass --overwrite to sample anew, "
            f"or --generated {out_dir} to evaluate those"
        )
    for path in existing:
        path.unlink()
    jobs = [(label, index) for label in wanted for index in range(per_label)]  # clip k has seed `seed + k`
    bar = tqdm(total=len(jobs), desc="generating", unit="clip", disable=not progress)
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        labels_in_chunk = [label for label, _ in chunk]
        out = pipe.generate(
            label=None if labels_in_chunk[0] is None else labels_in_chunk,
            n=len(chunk),
            steps=steps,
            sampler=sampler,
            guidance=guidance,
            seed=seed + start,
            progress=progress,
        )
        for (label, index), clip in zip(chunk, out.audio):
            folder = out_dir / label if label is not None else out_dir
            save_audio(folder / f"{label or 'clip'}_{index:04d}.wav", clip, out.sample_rate)
        bar.update(len(chunk))
    bar.close()
    used = out.settings.to_dict()  # what the calls used, resolved once (the same for every batch but seeds)
    settings = {
        "checkpoint": pipe.info.get("path", str(checkpoint)),
        "training_step": (pipe.info.get("training") or {}).get("step"),
        "per_label": per_label,
        **{key: used[key] for key in ("steps", "sampler", "guidance", "guide", "rest_guidance", "guidance_interval")},
        "vocoder": vocoder or pipe.config.sampling.vocoder,
        "adapters": pipe.info.get("adapters", []),
        "seed": seed,
    }
    return load_clips(out_dir, side="generated"), settings


# --------------------------------------------------------------------------------------------
# Evaluation


def _side_scores(result: dict | None, side: str, key: str):
    if result is None:
        return None
    return ((result.get("classifier") or {}).get(side) or {}).get(key)


def _score(key: str) -> Callable[[dict | None, str], float | None]:
    return lambda result, side: _side_scores(result, side, key)


SCORES: dict[str, tuple[str, str, Callable[[dict | None, str], float | None]]] = {
    "accuracy": ("classifier accuracy on the intended labels", "higher", _score("accuracy")),
    "inception_score": ("Inception Score", "higher", _score("inception_score")),
    "modified_inception_score": ("modified Inception Score", "higher", _score("modified_inception_score")),
    "am_score": ("AM score", "lower", _score("am_score")),
}
"""Score name -> (title, which way is better, (evaluate_folders result, side) -> value).
Fréchet distances, one per embedding, are added in front by `_score_rows`."""

COVERAGE_SCORES = {  # distribution.coverage_metrics, in the Fréchet distance's features
    "precision": ("precision: generated clips on the real manifold", "higher"),
    "recall": ("recall: real clips the generated ones reach", "higher"),
    "density": ("density: real neighbourhoods per generated clip / k", "near the floor"),
    "coverage": ("coverage: real neighbourhoods holding a generated clip", "higher"),
}


def _coverage_score(result: dict | None, embedding: str, metric: str) -> float | None:
    overall = (((result or {}).get("coverage") or {}).get(embedding) or {}).get("overall")
    return overall[metric] if overall else None


def _score_rows(model: dict, floor: dict | None) -> list[dict]:
    """One row per score: the model's value, the floor's, and the reference clips' own."""
    rows = []
    for name, value in model["frechet"].items():
        floor_value = floor["frechet"].get(name) if floor else None
        rows.append(
            {
                "score": f"frechet_{name}",
                "title": f"Fréchet distance ({name} embedding)",
                "better": "lower",
                "model": value,
                "floor": floor_value,
                "reference": None,
            }
        )
    for name in model.get("coverage") or {}:
        for metric, (title, better) in COVERAGE_SCORES.items():
            value = _coverage_score(model, name, metric)
            if value is not None:
                rows.append(
                    {
                        "score": f"{metric}_{name}",
                        "title": f"{title} ({name} embedding)",
                        "better": better,
                        "model": value,
                        "floor": _coverage_score(floor, name, metric),
                        "reference": None,
                    }
                )
    for name, (title, better, read) in SCORES.items():
        value = read(model, "generated")
        if value is None and read(model, "reference") is None:
            continue
        rows.append(
            {
                "score": name,
                "title": title,
                "better": better,
                "model": value,
                "floor": read(floor, "generated"),
                "reference": read(model, "reference"),
            }
        )
    return rows


def check_labels(labels: Sequence[str | None], classifier: AudioClassifier | None, where: str) -> None:
    """Fail early (before sampling or loading audio) when `labels` are not classes of `classifier`."""
    unknown = sorted({label for label in labels if label is not None} - set(classifier.labels)) if classifier else []
    if unknown:
        raise EvaluationError(
            f"{where}: labels {unknown} are not classes of the classifier {classifier.labels}; train one on "
            "these labels (audiodiff eval train-classifier --data ...) or pass the matching --classifier"
        )


def _check_sets(sets: dict[str, ClipSet], classifier: AudioClassifier | None, frechet: bool) -> None:
    """Fail before any audio is loaded: unknown labels, or too few clips for a Fréchet distance."""
    for side, clips in sets.items():
        check_labels(clips.labels, classifier, f"{side} {clips.description}")
        if frechet and len(clips) < MIN_FRECHET_CLIPS:
            raise EvaluationError(
                f"{side} {clips.description}: {len(clips)} clip(s); a Fréchet distance needs at least "
                f"{MIN_FRECHET_CLIPS} clips per set, and more than the embedding dimension (128 for the default "
                "classifier) for a number worth reporting; add clips (--per-label)"
            )


def load_classifier(classifier: AudioClassifier | str | os.PathLike | None) -> AudioClassifier | None:
    """An `AudioClassifier` from its directory (None and loaded classifiers pass through)."""
    if classifier is None or isinstance(classifier, AudioClassifier):
        return classifier
    try:
        return AudioClassifier.load(classifier)
    except (FileNotFoundError, ValueError) as error:
        raise EvaluationError(f"--classifier {classifier}: {error}") from None


def evaluate(
    generated: ClipSet,
    reference: ClipSet,
    out_dir: str | os.PathLike,
    classifier: AudioClassifier | str | os.PathLike | None = None,
    floor: ClipSet | None = None,
    embeddings: Sequence[str] | None = None,
    info: dict | None = None,
    progress: bool = False,
    training: ClipSet | None = None,
) -> dict:
    """Score `generated` against `reference` (and `floor` against `reference`, when given) and
    write `out_dir/metrics.json`, `out_dir/report.md` and its PNGs. Returns what metrics.json holds.

    With `training` (the model's training clips) and a classifier, also memorisation: each
    generated clip's nearest training clip against the held-out reference clips' own, and a
    listening page of the closest pairs (`memorisation.html`)."""
    classifier = load_classifier(classifier)
    if embeddings is None:
        embeddings = ["classifier"] if classifier is not None else None  # None: evaluate_folders picks
    unknown = sorted(set(embeddings or ()) - set(EMBEDDINGS))
    if unknown:
        raise EvaluationError(f"embeddings {unknown} unknown; choose from {sorted(EMBEDDINGS)}")
    sets = {"generated": generated, "reference": reference, **({"floor": floor} if floor is not None else {})}
    _check_sets(sets, classifier, frechet=embeddings != [])
    overlap = set(floor.paths) & set(reference.paths) if floor is not None else set()
    if overlap:
        raise EvaluationError(
            f"floor {floor.description}: {len(overlap)} clips are also reference clips (e.g. {sorted(overlap)[0]}); "
            "draw the floor from another split (--floor-split train)"
        )
    options = dict(classifier=classifier, embeddings=embeddings, paired=False, progress=progress)
    model = evaluate_folders(generated.pairs(), reference.pairs(), **options)
    floor_result = evaluate_folders(floor.pairs(), reference.pairs(), **options) if floor is not None else None

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **(info or {}),
        "generated": {
            "source": generated.description,
            "num_clips": len(generated),
            "label_counts": generated.label_counts(),
        },
        "reference": {
            "source": reference.description,
            "num_clips": len(reference),
            "label_counts": reference.label_counts(),
        },
        "floor": None if floor is None else {"source": floor.description, "num_clips": len(floor)},
        "classifier": None
        if classifier is None
        else {
            "path": classifier.source,
            "labels": classifier.labels,
            "evaluation": classifier.training_info.get("evaluation"),
        },
        "embedding_dim": classifier.embedding_dim if classifier is not None else None,
        "sample_rate": model["sample_rate"],
        "clip_seconds": model["clip_seconds"],
        "scores": _score_rows(model, floor_result),
        "per_class_accuracy": {
            "model": _side_scores(model, "generated", "per_class_accuracy"),
            "floor": _side_scores(floor_result, "generated", "per_class_accuracy"),
        },
        "model_metrics": model,
        "floor_metrics": floor_result,
    }
    if training is not None and classifier is not None:
        result["memorisation"] = _memorisation(generated, training, reference, classifier, out_dir, progress)
    result["plots"] = [str(path.relative_to(out_dir)) for path in _plots(result, sets, out_dir)]
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    write_report(result, out_dir / "report.md")
    return result


def _memorisation(
    generated: ClipSet, training: ClipSet, heldout: ClipSet, classifier: AudioClassifier, out_dir: Path, progress: bool
) -> dict:
    """`distribution.memorisation` in the classifier's features, a histogram of both sets' nearest
    training distances, and `memorisation.html`: the closest pairs, players and spectrograms side by side."""
    from audiodiff.plots import plot_histograms, plot_spectrograms

    features = [
        embed_files(clips.paths, classifier, progress=progress, name=side)
        for side, clips in (("generated", generated), ("training", training), ("held-out", heldout))
    ]
    found = memorisation(*features)
    page = out_dir / "memorisation"
    page.mkdir(parents=True, exist_ok=True)
    rate = classifier.mel_spec.sample_rate
    rows, clips, titles = [], [], []
    for rank, (g, t, distance) in enumerate(found["closest_pairs"]):
        pair = []
        for side, path in (("generated", generated.paths[g]), ("training", training.paths[t])):
            audio = load_audio(path, sample_rate=rate, channels=1)[0]
            name = f"{rank:02d}_{side}.wav"
            save_audio(page / name, audio, rate)
            clips.append(audio[0])
            titles.append(f"{rank}: {side} {path.name}")
            pair.append(f'<td>{side}: {path.name}<br><audio controls src="memorisation/{name}"></audio></td>')
        rows.append(f"<tr><td>{rank}</td><td>{distance:.3f}</td>{''.join(pair)}</tr>")
    if clips:
        plot_spectrograms(clips, rate, out_dir / "memorisation_pairs.png", titles, columns=2)
    plot_histograms(
        {
            f"held-out real ({len(heldout)})": found["heldout_distances"],
            f"generated ({len(generated)})": found["generated_distances"],
        },
        out_dir / "memorisation.png",
        "distance to the nearest training clip (classifier features)",
        (found["threshold"], f"{found['percentile']:g}th percentile of held-out"),
    )
    (out_dir / "memorisation.html").write_text(
        "<!doctype html><meta charset='utf-8'><title>Closest generated-training pairs</title>"
        f"<h1>Generated clips nearest to training clips</h1><p>{found['copy_share']:.1%} of {len(generated)} generated clips "
        f"lie nearer a training clip than {found['percentile']:g}% of held-out real clips do (threshold {found['threshold']:.3f}; "
        f"{training.description}, {len(training)} clips).</p><img src='memorisation.png'><table border=1 cellpadding=4>"
        "<tr><th>rank</th><th>distance</th><th>generated</th><th>nearest training clip</th></tr>"
        + "".join(rows)
        + "</table><img src='memorisation_pairs.png' style='max-width:100%'>\n"
    )
    found["closest_pairs"] = [
        {"generated": str(generated.paths[g]), "training": str(training.paths[t]), "distance": d}
        for g, t, d in found["closest_pairs"]
    ]
    found["training_source"] = training.description
    return found


def likelihood_report(
    checkpoint, reference: ClipSet, count: int, steps: int = 12, seed: int = 0, device: str = "cpu"
) -> dict:
    """NLL (bits/dim, `Pipeline.log_likelihood`) under `checkpoint` (a name or path, or a loaded
    Pipeline) of `count` reference clips (evenly drawn, each
    conditioned on its label where the model has labels), of the same clips with their frames
    shuffled (blocks of one hop, so every frame's content stays and its order goes) and of
    Gaussian noise at the clips' RMS: real audio should score best."""
    import torch

    from audiodiff.pipeline import Pipeline

    pipe = (
        checkpoint
        if isinstance(checkpoint, Pipeline)
        else Pipeline.from_pretrained(checkpoint, vocoder="griffin_lim", device=device)
    )
    clips = reference.every(max(1, len(reference) // count))
    clips = ClipSet(clips.description, clips.paths[:count], clips.labels[:count])
    rate = pipe.sample_rate
    window = round(pipe.default_duration() * rate)
    audio = torch.stack(
        [crop_or_pad(load_audio(path, sample_rate=rate, channels=1)[0], window, random=False) for path in clips.paths]
    )
    generator = torch.Generator().manual_seed(seed)
    hop = pipe.mel_spec.hop_length if pipe.mel_spec else 256
    blocks = audio[..., : window // hop * hop].reshape(len(audio), 1, -1, hop)
    shuffled = blocks[:, :, torch.randperm(blocks.shape[2], generator=generator)].reshape(len(audio), 1, -1)
    rms = audio.pow(2).mean(dim=(1, 2), keepdim=True).sqrt()
    noise = torch.randn(audio.shape, generator=generator) * rms
    conditions = (
        {"label": list(clips.labels)}
        if pipe.labels and clips.labelled and set(clips.labels) <= set(pipe.labels)
        else {}
    )
    sets = {}
    for name, batch in (("real held-out clips", audio), ("frames shuffled", shuffled), ("Gaussian noise", noise)):
        print(f"likelihood: {name} ({len(batch)} clips, {steps} steps)", file=sys.stderr)
        result = pipe.log_likelihood(batch, sample_rate=rate, steps=steps, seed=seed, progress=True, **conditions)
        sets[name] = {key: result[key] for key in ("mean_bits_per_dim", "standard_error", "nll_bits_per_dim")}
    name = Path(pipe.info.get("path", "")).name if isinstance(checkpoint, Pipeline) else str(checkpoint)
    return {
        "checkpoint": name,
        "clips": len(audio),
        "conditional": bool(conditions),
        "space": result["space"],
        "dims": result["dims"],
        "steps": steps,
        "t_min": result["t_min"],
        "sets": sets,
    }


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


def _examples(clips: ClipSet, limit: int = 10) -> tuple[list[Path], list[str]]:
    """The first clip of each label (up to `limit`), or the first `limit` clips when unlabelled."""
    if not clips.labelled:
        return clips.paths[:limit], [path.stem for path in clips.paths[:limit]]
    first: dict[str, Path] = {}
    for path, label in zip(clips.paths, clips.labels):
        first.setdefault(label, path)
    labels = sorted(first)[:limit]
    return [first[label] for label in labels], labels


def _plots(result: dict, sets: dict[str, ClipSet], out_dir: Path) -> list[Path]:
    """A spectrogram grid per side (one clip per label) and the per-class accuracy chart."""
    rate, samples = result["sample_rate"], round(result["clip_seconds"] * result["sample_rate"])
    paths = []
    for side, clips in sets.items():
        files, titles = _examples(clips)
        audio = [
            crop_or_pad(load_audio(path, sample_rate=rate, channels=1)[0][0], samples, random=False) for path in files
        ]
        paths.append(plot_spectrogram_grid(audio, out_dir / f"{side}_spectrograms.png", rate, titles=titles, columns=5))
    accuracy = result["per_class_accuracy"]
    if accuracy["model"]:
        paths.append(
            plot_class_accuracy(
                accuracy["model"],
                out_dir / "class_accuracy.png",
                "Per-class accuracy",
                compare=accuracy["floor"],
                names=("generated", "real (floor)"),
            )
        )
    return paths


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


# --------------------------------------------------------------------------------------------
# The evaluation classifier


def _default_split(source: str | os.PathLike, split: str | None, preferred: str) -> str | None:
    """`split` if given, else `preferred` where the source has it, else None (everything)."""
    if split is not None:
        return split or None  # "" asks for the whole source
    return preferred if preferred in available_splits(source) else None


def train_evaluation_classifier(
    data: str | os.PathLike,
    out: str | os.PathLike,
    split: str | None = None,
    valid_split: str | None = None,
    test_split: str | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    clip_seconds: float = 1.0,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Train an `AudioClassifier` on the labelled clips of `data` (split default: "train" where
    there is one), save it to `out`, and return its accuracy on the valid and test splits (default:
    "valid" and "test" where there are such). The accuracies are saved in its config.json too."""
    split = _default_split(data, split, "train")
    train = load_clips(data, split, side="training data")
    if not train.labelled:
        raise EvaluationError(
            f"training data {train.description}: clips without labels; the classifier needs label subfolders "
            "(ROOT/LABEL/clip.wav) or a manifest with a label column"
        )
    if len(train.label_counts()) < 2:
        raise EvaluationError(
            f"training data {train.description}: one label {list(train.label_counts())}; need at least 2"
        )
    sample_rate = audio_info(train.paths[0])[0]
    classifier = train_classifier(
        train.pairs(),
        mel_spec=default_mel_spec(sample_rate),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        clip_seconds=clip_seconds,
        seed=seed,
        progress=progress,
    )
    evaluation = {}
    for name, chosen in (("valid", valid_split), ("test", test_split)):
        chosen = _default_split(data, chosen, name)
        if chosen is None or chosen == split:
            continue
        clips = load_clips(data, chosen, side=f"{name} data")
        unknown = sorted(set(clips.label_counts()) - set(classifier.labels))
        if not clips.labelled or unknown:
            raise EvaluationError(
                f"{name} data {clips.description}: labels {unknown or 'missing'} are not among the training labels "
                f"{classifier.labels}; use a split with the same label set"
            )
        report = evaluate_classifier(classifier, clips.pairs())
        evaluation[chosen] = {key: report[key] for key in ("accuracy", "per_class_accuracy", "num_items")}
    classifier.training_info.update(data=train.description, evaluation=evaluation)
    classifier.save(out)
    return {"path": str(out), "training": classifier.training_info}
