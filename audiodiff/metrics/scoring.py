"""Scoring: the figures of generated clips against reference clips, as JSON-able dicts.

`evaluate_folders` loads both sets the same way (mono, one sample rate, start-aligned crop or
zero-pad to one clip length) before any metric sees them. `score_rows` lays a model's figures
beside the floor's (the same scoring of real clips); `memorisation_scores` and `likelihood_report`
are the two figures beyond fidelity. Sets are `sets.ClipSet`s or anything `ClipSet.of` reads.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

import audiodiff.metrics.signal as signal
from audiodiff.audio import MelSpec, audio_info, crop_or_pad, load_audio, resample
from audiodiff.metrics.classifier import AudioClassifier, accuracy_report
from audiodiff.metrics.distribution import (
    COVERAGE_K,
    MIN_FRECHET_CLIPS,
    TooFewSamplesError,
    am_score,
    coverage_metrics,
    feature_statistics,
    frechet_distance_from_statistics,
    inception_score,
    memorisation,
    modified_inception_score,
)
from audiodiff.metrics.embeddings import make_embedding
from audiodiff.metrics.plots import default_mel_spec
from audiodiff.metrics.sets import ClipSet, EvaluationError, Source, check_labels

__all__ = [
    "COVERAGE_SCORES",
    "SCORES",
    "check_sets",
    "classifier_score",
    "embed_files",
    "evaluate_folders",
    "likelihood_report",
    "load_classifier",
    "memorisation_scores",
    "score_rows",
]


def load_classifier(classifier: AudioClassifier | str | os.PathLike | None) -> AudioClassifier | None:
    """An `AudioClassifier` from its directory (None and loaded classifiers pass through)."""
    if classifier is None or isinstance(classifier, AudioClassifier):
        return classifier
    try:
        return AudioClassifier.load(classifier)
    except (FileNotFoundError, ValueError) as error:
        raise EvaluationError(f"--classifier {classifier}: {error}") from None


def check_sets(sets: dict[str, ClipSet], classifier: AudioClassifier | None, frechet: bool) -> None:
    """Fail before any audio is loaded: labels the classifier does not know, or (with `frechet`)
    too few clips for a Fréchet distance."""
    for side, clips in sets.items():
        check_labels(clips.labels, classifier, f"{side} {clips.description}")
    for side, clips in sets.items():
        if frechet and len(clips) < MIN_FRECHET_CLIPS:
            raise TooFewSamplesError(
                f"{side} {clips.description}: {len(clips)} clip(s); a Fréchet distance needs at least "
                f"{MIN_FRECHET_CLIPS} clips per set, and more than the embedding dimension (128 for the default "
                "classifier) for a number worth reporting; add clips (--per-label), or pass embeddings=[]"
            )


def _load_all(paths: Sequence[Path], sample_rate: int, progress: bool, name: str) -> list[torch.Tensor]:
    bar = tqdm(paths, desc=f"loading {name}", disable=not progress, unit="file")
    return [load_audio(path, sample_rate=sample_rate, channels=1)[0][0] for path in bar]


def embed_files(
    paths: Sequence[Path],
    classifier: AudioClassifier | None,
    embedding: str = "classifier",
    clip_seconds: float | None = None,
    progress: bool = False,
    name: str = "clips",
) -> torch.Tensor:
    """Features `[clips, dim]` of audio files in one embedding, each clip mono, at the classifier's
    rate, cropped or zero-padded to its training clip (or `clip_seconds`) as `evaluate_folders` does."""
    sample_rate = classifier.mel_spec.sample_rate if classifier else 16000
    if clip_seconds is not None:
        samples = max(1, round(clip_seconds * sample_rate))
    else:
        samples = classifier.clip_samples if classifier and classifier.clip_samples else sample_rate
    clips = torch.stack(
        [crop_or_pad(clip, samples, random=False) for clip in _load_all(paths, sample_rate, progress, name)]
    )
    return make_embedding(embedding, classifier=classifier)(clips, sample_rate)


def _clean(value):
    """JSON-able copy: NaN/Inf -> None, numpy/torch scalars -> float."""
    if isinstance(value, dict):
        return {str(key): _clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item) for item in value]
    if isinstance(value, (torch.Tensor, np.generic)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --------------------------------------------------------------------------------------------
# Two sets compared


def evaluate_folders(
    generated: Source | ClipSet,
    reference: Source | ClipSet,
    classifier: AudioClassifier | str | os.PathLike | None = None,
    sample_rate: int | None = None,
    clip_seconds: float | None = None,
    embeddings: Sequence[str] | None = None,
    paired: bool | None = None,
    f0: bool = True,
    fmin: float = signal.DEFAULT_FMIN,
    fmax: float = signal.DEFAULT_FMAX,
    mel_spec: MelSpec | None = None,
    plot_dir: str | os.PathLike | None = None,
    folder_labels: bool = True,
    progress: bool = False,
) -> dict:
    """Compare generated audio with reference audio (folders, lists of files or clip sets).

    Needs at least one of: a `classifier` (train one with `audiodiff eval train-classifier` or
    `audiodiff.metrics.train_classifier`), torchcrepe installed (the "crepe" embedding), or files
    that pair by name (signal metrics); with none it refuses and says so.

    - Distribution metrics (always): Fréchet distance in each of `embeddings` (default:
      "classifier" when a classifier is given, else "crepe" when torchcrepe is installed), and,
      with a classifier, IS / mIS / AM score for both sets (AM's p*: the classifier's mean
      prediction on the reference clips) plus accuracy and per-class accuracy for sets with
      label subfolders.
    - Coverage (always, beside each Fréchet distance, in the same features): precision, recall,
      density and coverage overall and per label, for sets of more than 5 clips
      (`distribution.coverage_metrics`).
    - Signal metrics (means over pairs), when every generated file has a reference file of the
      same relative name (`paired=None`); `paired=True` demands it, `False` skips them. Each
      pair is cropped to the shorter of the two; `f0=False` skips the (slow) pYIN metrics.

    `sample_rate` defaults to the classifier's, else the first reference file's; `clip_seconds`
    to the classifier's training clip, else the longest reference clip. `plot_dir` writes
    spectrogram grids and a per-class accuracy chart there. `folder_labels=False` ignores label
    subfolders. Returns a JSON-able dict (undefined values are None).
    """
    from audiodiff.metrics.report import plot_sets

    classifier = load_classifier(classifier)
    sets = {
        "generated": ClipSet.of(generated, "generated", folder_labels),
        "reference": ClipSet.of(reference, "reference", folder_labels),
    }
    if embeddings is None:
        embeddings = ["classifier"] if classifier is not None else (["crepe"] if _have_torchcrepe() else [])
    check_sets(sets, classifier, frechet=bool(embeddings))
    if sample_rate is None:
        sample_rate = classifier.mel_spec.sample_rate if classifier else audio_info(sets["reference"].paths[0])[0]
    pairing = _pairing(sets["generated"], sets["reference"], paired)
    if not embeddings and classifier is None and pairing is None:
        raise EvaluationError(
            "evaluate_folders: nothing to compute; pass classifier= (train one with `audiodiff eval "
            "train-classifier`), install torchcrepe for the 'crepe' embedding (pip install 'audiodiff[eval]'), "
            "or give files that pair by name for the signal metrics"
        )

    audio = {side: _load_all(clips.paths, sample_rate, progress, side) for side, clips in sets.items()}
    if clip_seconds is not None:
        clip_samples = max(1, round(clip_seconds * sample_rate))
    elif classifier is not None and classifier.clip_samples:
        clip_samples = round(classifier.clip_samples * sample_rate / classifier.mel_spec.sample_rate)
    else:
        clip_samples = max(clip.shape[-1] for clip in audio["reference"])
    generated_clips, reference_clips = (
        torch.stack([crop_or_pad(clip, clip_samples, random=False) for clip in audio[side]])
        for side in ("generated", "reference")
    )

    result: dict = {
        "sample_rate": sample_rate,
        "clip_seconds": clip_samples / sample_rate,
        "generated": sets["generated"].summary(),
        "reference": sets["reference"].summary(),
        "frechet": {},
        "classifier": None,
        "signal": None,
        "plots": [],
    }
    result["coverage"] = {}
    labels = [clips.labels if clips.labelled else None for clips in sets.values()]
    for name in embeddings:
        embedding = make_embedding(name, classifier=classifier)
        generated_features = embedding(generated_clips, sample_rate)
        reference_features = embedding(reference_clips, sample_rate)
        result["frechet"][name] = frechet_distance_from_statistics(
            *feature_statistics(generated_features, f"generated clips ({name} embedding)"),
            *feature_statistics(reference_features, f"reference clips ({name} embedding)"),
        )
        result["coverage"][name] = _coverage(generated_features, reference_features, *labels)
    if classifier is not None:
        result["classifier"] = _classifier_section(classifier, sets, generated_clips, reference_clips, sample_rate)
    if pairing is not None:
        mel_spec = mel_spec or default_mel_spec(sample_rate)
        if mel_spec.sample_rate != sample_rate:
            raise ValueError(
                f"mel_spec.sample_rate={mel_spec.sample_rate} but the audio is compared at {sample_rate} Hz; "
                "pass a MelSpec at that rate or sample_rate=mel_spec.sample_rate"
            )
        reference_audio = [audio["reference"][i] for i in pairing]
        result["signal"] = _signal_metrics(
            audio["generated"], reference_audio, sample_rate, mel_spec, f0, fmin, fmax, progress
        )

    if plot_dir is not None:
        accuracy = classifier_score(result, "generated", "per_class_accuracy")
        plots = plot_sets(
            sets, plot_dir, sample_rate, result["clip_seconds"], accuracy, None, "generated_class_accuracy"
        )
        result["plots"] = [str(path) for path in plots]
    return _clean(result)


def _pairing(generated: ClipSet, reference: ClipSet, paired: bool | None) -> list[int] | None:
    """Index into `reference` for each generated file when the two sets pair by name, else None."""
    if paired is False:
        return None
    generated_keys, reference_keys = generated.keys(), reference.keys()
    position = {key: i for i, key in enumerate(reference_keys)}
    if len(generated_keys) == len(reference_keys) and all(key in position for key in generated_keys):
        return [position[key] for key in generated_keys]
    if paired:
        unmatched = [key for key in generated_keys if key not in position][:5]
        extra = len(reference_keys) - len(generated_keys)
        raise ValueError(
            f"paired=True but the sets do not pair by name: generated {unmatched} have no reference "
            f"counterpart (reference has {extra:+d} files more); name files alike, ignoring the extension"
        )
    return None


def _signal_metrics(
    generated: list[torch.Tensor],
    reference: list[torch.Tensor],
    sample_rate: int,
    mel_spec: MelSpec,
    f0: bool,
    fmin: float,
    fmax: float,
    progress: bool,
) -> dict:
    """Means over pairs of every signal metric; each pair is cropped to its shorter side, and
    pairs of equal length are computed as one batch."""
    groups: dict[int, list[int]] = {}
    for index, (estimate, target) in enumerate(zip(generated, reference)):
        groups.setdefault(min(estimate.shape[-1], target.shape[-1]), []).append(index)
    per_metric: dict[str, list[torch.Tensor]] = {}
    for length, indices in tqdm(groups.items(), desc="signal metrics", disable=not progress, unit="batch"):
        estimate = torch.stack([generated[i][:length] for i in indices])
        target = torch.stack([reference[i][:length] for i in indices])
        values = {
            "mr_stft": signal.multi_resolution_stft_distance(estimate, target),
            "mel_l1": signal.mel_l1(estimate, target, mel_spec),
            "mcd_db": signal.mel_cepstral_distortion(estimate, target, mel_spec),
            "lsd_db": signal.log_spectral_distance(estimate, target),
        }
        if f0:
            values.update(signal.f0_metrics(estimate, target, sample_rate, fmin, fmax))
        for key, value in values.items():
            per_metric.setdefault(key, []).append(value)
    out: dict = {}
    for key, chunks in per_metric.items():
        values = torch.cat(chunks)
        out[key] = float(values.nanmean()) if not values.isnan().all() else None
    out["num_pairs"] = len(generated)
    if f0:
        out["f0_num_pairs"] = int(torch.cat(per_metric["f0_rmse_cents"]).isfinite().sum())
    return out


def _evenly(count: int, keep: int) -> list[int]:
    """`keep` indices spread evenly over `range(count)` (all of them when keep >= count)."""
    if keep >= count:
        return list(range(count))
    return [round(i * (count - 1) / max(1, keep - 1)) for i in range(keep)]


def _coverage(generated, reference, generated_labels, reference_labels, k: int = COVERAGE_K) -> dict:
    """Precision, recall, density and coverage overall and per label (where both sides of a label
    have more than k clips); None where a set is too small. A larger reference set is thinned
    evenly to the generated set's size first: the measures assume sets of one size (Naeem et al.
    use equal sizes), and 1000 real clips against 50 generated would read as poor coverage."""

    def scores(fake, real):
        real = real[_evenly(len(real), len(fake))]  # as many real as generated: the balls compare like for like
        return coverage_metrics(real, fake, k) if min(len(fake), len(real)) > k else None

    per_label = {}
    if generated_labels is not None and reference_labels is not None:
        for label in sorted(set(generated_labels) & set(reference_labels)):
            fake = generated[[i for i, item in enumerate(generated_labels) if item == label]]
            real = reference[[i for i, item in enumerate(reference_labels) if item == label]]
            per_label[label] = scores(fake, real)
    return {"k": k, "overall": scores(generated, reference), "per_label": per_label or None}


def _classifier_section(
    classifier: AudioClassifier,
    sets: dict[str, ClipSet],
    generated: torch.Tensor,
    reference: torch.Tensor,
    sample_rate: int,
) -> dict:
    """IS / mIS / AM score (and accuracy for labelled sets) of both sets `[clips, samples]`."""
    rate = classifier.mel_spec.sample_rate
    probs = {
        "generated": classifier.predict_proba(resample(generated, sample_rate, rate)),
        "reference": classifier.predict_proba(resample(reference, sample_rate, rate)),
    }
    target = probs["reference"].mean(0)  # p* of the AM score: the classifier's view of real data
    section: dict = {"labels": classifier.labels}
    for side, side_probs in probs.items():
        scores = {
            "inception_score": inception_score(side_probs),
            "modified_inception_score": modified_inception_score(side_probs) if len(side_probs) > 1 else None,
            "am_score": am_score(side_probs, target),
        }
        if sets[side].labelled:
            predicted = [classifier.labels[i] for i in side_probs.argmax(-1).tolist()]
            report = accuracy_report(classifier.labels, sets[side].labels, predicted)
            scores.update(accuracy=report["accuracy"], per_class_accuracy=report["per_class_accuracy"])
        section[side] = scores
    return section


def _have_torchcrepe() -> bool:
    return importlib.util.find_spec("torchcrepe") is not None


# --------------------------------------------------------------------------------------------
# The model beside the floor


def classifier_score(result: dict | None, side: str, key: str):
    """One classifier score of an `evaluate_folders` result's side (None where there is none)."""
    if result is None:
        return None
    return ((result.get("classifier") or {}).get(side) or {}).get(key)


def _score(key: str) -> Callable[[dict | None, str], float | None]:
    return lambda result, side: classifier_score(result, side, key)


SCORES: dict[str, tuple[str, str, Callable[[dict | None, str], float | None]]] = {
    "accuracy": ("classifier accuracy on the intended labels", "higher", _score("accuracy")),
    "inception_score": ("Inception Score", "higher", _score("inception_score")),
    "modified_inception_score": ("modified Inception Score", "higher", _score("modified_inception_score")),
    "am_score": ("AM score", "lower", _score("am_score")),
}
"""Score name -> (title, which way is better, (evaluate_folders result, side) -> value).
Fréchet distances, one per embedding, are added in front by `score_rows`."""

COVERAGE_SCORES = {  # distribution.coverage_metrics, in the Fréchet distance's features
    "precision": ("precision: generated clips on the real manifold", "higher"),
    "recall": ("recall: real clips the generated ones reach", "higher"),
    "density": ("density: real neighbourhoods per generated clip / k", "near the floor"),
    "coverage": ("coverage: real neighbourhoods holding a generated clip", "higher"),
}


def _coverage_score(result: dict | None, embedding: str, metric: str) -> float | None:
    overall = (((result or {}).get("coverage") or {}).get(embedding) or {}).get("overall")
    return overall[metric] if overall else None


def score_rows(model: dict, floor: dict | None) -> list[dict]:
    """One row per score of two `evaluate_folders` results: the model's value, the floor's, and
    the reference clips' own."""
    rows = []
    for name, value in model["frechet"].items():
        floor_value = floor["frechet"].get(name) if floor else None
        title = f"Fréchet distance ({name} embedding)"
        rows.append(_row(f"frechet_{name}", title, "lower", value, floor_value))
    for name in model.get("coverage") or {}:
        for metric, (title, better) in COVERAGE_SCORES.items():
            value = _coverage_score(model, name, metric)
            if value is not None:
                floor_value = _coverage_score(floor, name, metric)
                rows.append(_row(f"{metric}_{name}", f"{title} ({name} embedding)", better, value, floor_value))
    for name, (title, better, read) in SCORES.items():
        value = read(model, "generated")
        if value is None and read(model, "reference") is None:
            continue
        rows.append(_row(name, title, better, value, read(floor, "generated"), read(model, "reference")))
    return rows


def _row(score: str, title: str, better: str, model, floor, reference=None) -> dict:
    return {"score": score, "title": title, "better": better, "model": model, "floor": floor, "reference": reference}


# --------------------------------------------------------------------------------------------
# Beyond fidelity: memorisation and likelihood


def memorisation_scores(
    generated: ClipSet, training: ClipSet, heldout: ClipSet, classifier: AudioClassifier, progress: bool = False
) -> dict:
    """`distribution.memorisation` in the classifier's features: each generated clip's nearest
    training clip against the held-out clips' own; the closest pairs by path."""
    features = [
        embed_files(clips.paths, classifier, progress=progress, name=side)
        for side, clips in (("generated", generated), ("training", training), ("held-out", heldout))
    ]
    found = memorisation(*features)
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
