"""`evaluate_folders`: generated audio against reference audio, as one JSON-able dict.

Both sides are loaded the same way (mono, one sample rate, start-aligned crop or zero-pad to one
clip length) before any metric sees them. Labels come from folder layout: when every file of a
folder lies in a first-level subfolder (`root/seven/001.wav`), the subfolder name is its label.
A side can also be a list of `(path, label)` pairs (e.g. one split of a dataset manifest).
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Union

import numpy as np
import torch
from tqdm.auto import tqdm

import audiodiff.metrics.signal as signal
from audiodiff.audio import AUDIO_EXTENSIONS, MelSpec, audio_info, crop_or_pad, load_audio, resample
from audiodiff.metrics.classifier import AudioClassifier, accuracy_report
from audiodiff.metrics.distribution import (
    TooFewSamplesError,
    am_score,
    coverage_metrics,
    feature_statistics,
    frechet_distance_from_statistics,
    inception_score,
    modified_inception_score,
)
from audiodiff.metrics.embeddings import make_embedding
from audiodiff.metrics.plots import default_mel_spec, plot_class_accuracy, plot_spectrogram_grid

__all__ = ["embed_files", "evaluate_folders", "find_audio", "labelled_files"]

Source = Union[str, os.PathLike, Sequence[str | os.PathLike], Sequence[tuple[str | os.PathLike, str | None]]]
"""A folder (searched recursively), a list of audio files, or a list of `(path, label)` pairs."""

COVERAGE_K = 5  # nearest neighbours for precision/recall/density/coverage (Naeem et al. 2020's choice)


class _AudioSet:
    """The files of one side of an evaluation: paths, pairing keys and (maybe) labels."""

    def __init__(self, source: Source, name: str, folder_labels: bool = True):
        self.name = name
        if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
            root = Path(source)
            self.description = str(root)
            self.paths = find_audio(root)
            if not self.paths:
                raise FileNotFoundError(
                    f"{name} folder {root}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) found; check the path"
                )
            relative = [path.relative_to(root) for path in self.paths]
            self.keys = [str(path.with_suffix("")) for path in relative]
            labelled = folder_labels and all(len(path.parts) >= 2 for path in relative)
            self.labels = [path.parts[0] for path in relative] if labelled else None
        else:
            paths = [source] if isinstance(source, (str, os.PathLike)) else list(source)
            if not paths:
                raise FileNotFoundError(f"{name}: empty list of files; pass a folder or at least one audio file")
            pairs, labels = [path for path in paths if isinstance(path, tuple)], None
            if pairs and len(pairs) != len(paths):
                raise ValueError(f"{name}: mix of (path, label) pairs and plain paths; pass one kind")
            if pairs:
                paths = [path for path, _ in pairs]
                labels = [None if label is None else str(label) for _, label in pairs]
            self.paths = [Path(path) for path in paths]
            missing = [str(path) for path in self.paths if not path.is_file()]
            if missing:
                raise FileNotFoundError(f"{name}: no such file(s) {missing[:5]}")
            self.description = f"{len(self.paths)} files"
            self.keys = [path.stem for path in self.paths]
            self.labels = labels if labels is not None and folder_labels and None not in labels else None

    def summary(self) -> dict:
        counts = None
        if self.labels is not None:
            counts = {label: self.labels.count(label) for label in sorted(set(self.labels))}
        return {"source": self.description, "num_clips": len(self.paths), "label_counts": counts}


def find_audio(root: str | os.PathLike) -> list[Path]:
    """Audio files under `root`, recursively, sorted."""
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())


def labelled_files(root: str | os.PathLike, labels: Sequence[str] | None = None) -> list[tuple[Path, str]]:
    """`(path, label)` pairs from a `root/LABEL/....wav` layout (SC09 / Speech Commands style),
    for `train_classifier`; `labels` keeps only those classes. Files directly in `root` are skipped."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder; expected ROOT/LABEL/clip.wav")
    wanted = set(labels) if labels is not None else None
    items = []
    for path in find_audio(root):
        parts = path.relative_to(root).parts
        if len(parts) >= 2 and (wanted is None or parts[0] in wanted):
            items.append((path, parts[0]))
    if not items:
        which = f" for labels {sorted(wanted)}" if wanted is not None else ""
        raise FileNotFoundError(f"{root}: no audio files in label subfolders{which}; expected ROOT/LABEL/clip.wav")
    return items


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


def _check_labels(audio_set: _AudioSet, classifier: AudioClassifier) -> None:
    if audio_set.labels is None:
        return
    unknown = sorted(set(audio_set.labels) - set(classifier.labels))
    if unknown:
        raise ValueError(
            f"{audio_set.name} {audio_set.description}: labels {unknown} are not classes of the classifier "
            f"({classifier.labels}); rename the label subfolders, train a classifier on these labels, "
            "or pass folder_labels=False if the labels are not classes"
        )


def _classifier_scores(probs: torch.Tensor, audio_set: _AudioSet, classifier: AudioClassifier, target) -> dict:
    scores = {
        "inception_score": inception_score(probs),
        "modified_inception_score": modified_inception_score(probs) if len(probs) > 1 else None,
        "am_score": am_score(probs, target),
    }
    if audio_set.labels is not None:
        predicted = [classifier.labels[i] for i in probs.argmax(-1).tolist()]
        report = accuracy_report(classifier.labels, audio_set.labels, predicted)
        scores.update(accuracy=report["accuracy"], per_class_accuracy=report["per_class_accuracy"])
    return scores


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


def _pairing(generated: _AudioSet, reference: _AudioSet, paired: bool | None) -> list[int] | None:
    """Index into `reference` for each generated file when the two sets pair by name, else None."""
    if paired is False:
        return None
    position = {key: i for i, key in enumerate(reference.keys)}
    matches = len(generated.keys) == len(reference.keys) and all(key in position for key in generated.keys)
    if matches:
        return [position[key] for key in generated.keys]
    if paired:
        unmatched = [key for key in generated.keys if key not in position][:5]
        extra = len(reference.keys) - len(generated.keys)
        raise ValueError(
            f"paired=True but the sets do not pair by name: generated {unmatched} have no reference "
            f"counterpart (reference has {extra:+d} files more); name files alike, ignoring the extension"
        )
    return None


def evaluate_folders(
    generated: Source,
    reference: Source,
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
    """Compare generated audio with reference audio (folders, or lists of files).

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
    if isinstance(classifier, (str, os.PathLike)):
        classifier = AudioClassifier.load(classifier)
    generated_set = _AudioSet(generated, "generated", folder_labels)
    reference_set = _AudioSet(reference, "reference", folder_labels)
    if classifier is not None:
        _check_labels(generated_set, classifier)
        _check_labels(reference_set, classifier)
    if sample_rate is None:
        sample_rate = classifier.mel_spec.sample_rate if classifier else audio_info(reference_set.paths[0])[0]
    if embeddings is None:
        embeddings = ["classifier"] if classifier is not None else (["crepe"] if _have_torchcrepe() else [])
    pairing = _pairing(generated_set, reference_set, paired)
    for audio_set in (generated_set, reference_set):
        if embeddings and len(audio_set.paths) < 2:
            raise TooFewSamplesError(
                f"{audio_set.name} {audio_set.description}: {len(audio_set.paths)} clip; a Fréchet distance "
                "needs at least 2 clips per set, and ideally more than the embedding dimension "
                "(128 for the default classifier); add clips or pass embeddings=[]"
            )
    if not embeddings and classifier is None and pairing is None:
        raise ValueError(
            "evaluate_folders: nothing to compute; pass classifier= (train one with `audiodiff eval "
            "train-classifier`), install torchcrepe for the 'crepe' embedding (pip install 'audiodiff[eval]'), "
            "or give files that pair by name for the signal metrics"
        )

    generated_audio = _load_all(generated_set.paths, sample_rate, progress, "generated")
    reference_audio = _load_all(reference_set.paths, sample_rate, progress, "reference")
    if clip_seconds is not None:
        clip_samples = max(1, round(clip_seconds * sample_rate))
    elif classifier is not None and classifier.clip_samples:
        clip_samples = round(classifier.clip_samples * sample_rate / classifier.mel_spec.sample_rate)
    else:
        clip_samples = max(clip.shape[-1] for clip in reference_audio)
    generated_clips = torch.stack([crop_or_pad(clip, clip_samples, random=False) for clip in generated_audio])
    reference_clips = torch.stack([crop_or_pad(clip, clip_samples, random=False) for clip in reference_audio])

    result: dict = {
        "sample_rate": sample_rate,
        "clip_seconds": clip_samples / sample_rate,
        "generated": generated_set.summary(),
        "reference": reference_set.summary(),
        "frechet": {},
        "classifier": None,
        "signal": None,
        "plots": [],
    }
    result["coverage"] = {}
    for name in embeddings:
        generated_features, reference_features = _features(
            name, classifier, generated_clips, reference_clips, sample_rate
        )
        result["frechet"][name] = frechet_distance_from_statistics(
            *feature_statistics(generated_features, f"generated clips ({name} embedding)"),
            *feature_statistics(reference_features, f"reference clips ({name} embedding)"),
        )
        result["coverage"][name] = _coverage(
            generated_features, reference_features, generated_set.labels, reference_set.labels
        )
    if classifier is not None:
        result["classifier"] = _classifier_section(
            classifier, generated_set, reference_set, generated_clips, reference_clips, sample_rate
        )
    if pairing is not None:
        mel_spec = mel_spec or default_mel_spec(sample_rate)
        if mel_spec.sample_rate != sample_rate:
            raise ValueError(
                f"mel_spec.sample_rate={mel_spec.sample_rate} but the audio is compared at {sample_rate} Hz; "
                "pass a MelSpec at that rate or sample_rate=mel_spec.sample_rate"
            )
        result["signal"] = _signal_metrics(
            generated_audio, [reference_audio[i] for i in pairing], sample_rate, mel_spec, f0, fmin, fmax, progress
        )

    if plot_dir is not None:
        paths = _plots(
            result, (generated_set, reference_set), (generated_clips, reference_clips), sample_rate, plot_dir
        )
        result["plots"] = [str(path) for path in paths]
    return _clean(result)


def _evenly(count: int, keep: int) -> list[int]:
    """`keep` indices spread evenly over `range(count)` (all of them when keep >= count)."""
    if keep >= count:
        return list(range(count))
    return [round(i * (count - 1) / max(1, keep - 1)) for i in range(keep)]


def _features(
    name: str, classifier: AudioClassifier | None, generated: torch.Tensor, reference: torch.Tensor, sample_rate: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sets `[clips, samples]` in embedding `name`: `[clips, dim]` each."""
    embedding = make_embedding(name, classifier=classifier)
    return embedding(generated, sample_rate), embedding(reference, sample_rate)


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
    generated_set: _AudioSet,
    reference_set: _AudioSet,
    generated: torch.Tensor,
    reference: torch.Tensor,
    sample_rate: int,
) -> dict:
    """IS / mIS / AM score (and accuracy for labelled sets) of both sets `[clips, samples]`."""
    rate = classifier.mel_spec.sample_rate
    generated_probs = classifier.predict_proba(resample(generated, sample_rate, rate))
    reference_probs = classifier.predict_proba(resample(reference, sample_rate, rate))
    target = reference_probs.mean(0)  # p* of the AM score: the classifier's view of real data
    return {
        "labels": classifier.labels,
        "generated": _classifier_scores(generated_probs, generated_set, classifier, target),
        "reference": _classifier_scores(reference_probs, reference_set, classifier, target),
    }


def _have_torchcrepe() -> bool:
    return importlib.util.find_spec("torchcrepe") is not None


def _plots(
    result: dict, audio_sets: tuple[_AudioSet, ...], clips: tuple[torch.Tensor, ...], sample_rate: int, plot_dir
) -> list[Path]:
    """Spectrogram grids of the first 8 clips of each set, and the generated per-class accuracy."""
    plot_dir, paths = Path(plot_dir), []
    for audio_set, audio in zip(audio_sets, clips):
        count = min(8, len(audio))
        path = plot_dir / f"{audio_set.name}_spectrograms.png"
        paths.append(plot_spectrogram_grid(audio[:count], path, sample_rate, titles=audio_set.keys[:count]))
    scores = (result["classifier"] or {}).get("generated", {})
    if scores.get("per_class_accuracy"):
        path = plot_dir / "generated_class_accuracy.png"
        paths.append(plot_class_accuracy(scores["per_class_accuracy"], path, "Generated clips: per-class accuracy"))
    return paths
