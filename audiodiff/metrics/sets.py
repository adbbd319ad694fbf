"""Clip sets: one side of an evaluation (audio files and their labels), and where sets come from.

A set is read from a folder of audio (labels from first-level subfolders, `ROOT/LABEL/clip.wav`),
from a dataset manifest (`.jsonl`/`.csv`, or a folder holding `manifest.jsonl`) and one of its
splits, from a list of files or `(path, label)` pairs, or sampled from a checkpoint. The floor's
real clips are drawn here too (`floor_subset`), and labels are checked against the classifier
before any audio is loaded.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Union

from tqdm.auto import tqdm

from audiodiff.audio import AUDIO_EXTENSIONS, save_audio
from audiodiff.config import DataConfig
from audiodiff.data.dataset import DatasetError, scan_items
from audiodiff.data.layouts import manifest_file
from audiodiff.errors import UserError
from audiodiff.metrics.classifier import AudioClassifier
from audiodiff.metrics.distribution import MIN_FRECHET_CLIPS

__all__ = [
    "ClipSet",
    "EvaluationError",
    "NoAudioError",
    "Source",
    "available_splits",
    "check_labels",
    "find_audio",
    "floor_subset",
    "labelled_files",
    "load_clips",
    "sample_checkpoint",
]

FOLDER_SPLITS = ("train", "valid", "validation", "test")  # subfolder names read as splits

Source = Union[str, os.PathLike, Sequence[str | os.PathLike], Sequence[tuple[str | os.PathLike, str | None]]]
"""A folder (searched recursively), a list of audio files, or a list of `(path, label)` pairs."""


class EvaluationError(UserError, ValueError):
    """Input an evaluation cannot use; the message names the value and the fix."""


class NoAudioError(EvaluationError, FileNotFoundError):
    """A folder or list of files without the audio an evaluation needs."""


@dataclasses.dataclass
class ClipSet:
    """One side of an evaluation: audio files and their labels (None where unknown). `root` is
    the folder a set was read from; clips pair across sets by their path under it (`keys`)."""

    description: str
    paths: list[Path]
    labels: list[str | None]
    root: Path | None = None

    @classmethod
    def of(cls, source: Source | ClipSet, side: str, folder_labels: bool = True) -> ClipSet:
        """A set from a folder, a list of files or a list of `(path, label)` pairs (a ClipSet
        passes through); `folder_labels=False` drops the labels. `side` names it in errors."""
        if isinstance(source, ClipSet):
            clips = source
        elif isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
            clips = read_folder(source, side)
        else:
            clips = _listed(source, side)
        return clips if folder_labels else dataclasses.replace(clips, labels=[None] * len(clips))

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

    def summary(self) -> dict:
        """The set as `evaluate_folders` reports it (`label_counts` None when unlabelled)."""
        return {"source": self.description, "num_clips": len(self), "label_counts": self.label_counts() or None}

    def keys(self) -> list[str]:
        """Names that pair clips across sets: the path under `root` without its extension, else the stem."""
        if self.root is None:
            return [path.stem for path in self.paths]
        return [str(path.relative_to(self.root).with_suffix("")) for path in self.paths]

    def every(self, stride: int) -> ClipSet:
        """Every `stride`-th clip (a smaller set drawn evenly over the whole)."""
        if stride <= 1:
            return self
        description = f"{self.description}, one clip in {stride}"
        return ClipSet(description, self.paths[::stride], self.labels[::stride], self.root)

    def pairs(self) -> list[tuple[Path, str | None]]:
        """`(path, label)` pairs, as `evaluate_folders` and `train_classifier` take them."""
        return list(zip(self.paths, self.labels))


# --------------------------------------------------------------------------------------------
# Folders and lists of files


def find_audio(root: str | os.PathLike) -> list[Path]:
    """Audio files under `root`, recursively, sorted."""
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())


def _folder_files(root: Path) -> tuple[list[Path], list[str | None]]:
    """The audio files under `root` and each one's label subfolder (None for a file directly in it)."""
    files = find_audio(root)
    parts = [path.relative_to(root).parts for path in files]
    return files, [part[0] if len(part) >= 2 else None for part in parts]


def read_folder(root: str | os.PathLike, side: str) -> ClipSet:
    """The audio of a folder, labelled by first-level subfolder when every file lies in one."""
    root = Path(root)
    files, labels = _folder_files(root)
    if not files:
        raise NoAudioError(
            f"{side} folder {root}: no audio files ({', '.join(AUDIO_EXTENSIONS)}); check the path, "
            "or sample clips first (--checkpoint)"
        )
    if None in labels:
        labels = [None] * len(files)
    return ClipSet(str(root), files, labels, root)


def labelled_files(root: str | os.PathLike, labels: Sequence[str] | None = None) -> list[tuple[Path, str]]:
    """`(path, label)` pairs from a `root/LABEL/....wav` layout (SC09 / Speech Commands style),
    for `train_classifier`; `labels` keeps only those classes. Files directly in `root` are skipped."""
    root = Path(root)
    if not root.is_dir():
        raise NoAudioError(f"{root}: not a folder; expected ROOT/LABEL/clip.wav")
    wanted = set(labels) if labels is not None else None
    items = [
        (path, label)
        for path, label in zip(*_folder_files(root))
        if label is not None and (wanted is None or label in wanted)
    ]
    if not items:
        which = f" for labels {sorted(wanted)}" if wanted is not None else ""
        raise NoAudioError(f"{root}: no audio files in label subfolders{which}; expected ROOT/LABEL/clip.wav")
    return items


def _listed(source: Source, side: str) -> ClipSet:
    """A set from one file, a list of files, or a list of `(path, label)` pairs."""
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not items:
        raise NoAudioError(f"{side}: empty list of files; pass a folder or at least one audio file")
    pairs = [item for item in items if isinstance(item, tuple)]
    if pairs and len(pairs) != len(items):
        raise EvaluationError(f"{side}: mix of (path, label) pairs and plain paths; pass one kind")
    paths = [Path(item[0] if pairs else item) for item in items]
    labels = [None if label is None else str(label) for _, label in pairs] if pairs else [None] * len(paths)
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise NoAudioError(f"{side}: no such file(s) {missing[:5]}")
    return ClipSet(f"{len(paths)} files", paths, labels)


# --------------------------------------------------------------------------------------------
# Dataset manifests and splits


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
    return read_folder(path, side)


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


# --------------------------------------------------------------------------------------------
# The floor's draw and the classifier's labels


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
        pool.root,
    )


def check_labels(labels: Sequence[str | None], classifier: AudioClassifier | None, where: str) -> None:
    """Fail early (before sampling or loading audio) when `labels` are not classes of `classifier`."""
    unknown = sorted({label for label in labels if label is not None} - set(classifier.labels)) if classifier else []
    if unknown:
        raise EvaluationError(
            f"{where}: labels {unknown} are not classes of the classifier {classifier.labels}; train one on "
            "these labels (audiodiff eval train-classifier --data ...) or pass the matching --classifier"
        )


# --------------------------------------------------------------------------------------------
# Generated clips, sampled from a checkpoint


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
