"""`audiodiff eval`: its rules and its run. Generated clips (or a checkpoint to sample them from)
against real clips, beside the floor that real clips reach; and its classifier. The parts:
`sets` (clip sets and where they come from), `scoring` (the figures), `report` (what is written).

The floor is the same evaluation with real clips of another split (e.g. train) in the generated
clips' place, as many per label as were generated, against the same reference. Real audio is as
good as a model can get, and a Fréchet distance depends on how many clips it sees, so both
columns are computed the same way and read side by side.

    audiodiff eval train-classifier --data data/digits --out runs/classifier-digits
    audiodiff eval --checkpoint runs/digits-mel --per-label 32 --reference data/digits --split test \\
        --classifier runs/classifier-digits --floor-split train --out runs/eval-digits

Sources are folders of audio (labels from first-level subfolders, `ROOT/LABEL/clip.wav`) or
dataset manifests (`.jsonl`/`.csv`, or a folder holding `manifest.jsonl`) with `label` and
`split` columns, as the digits and notes builders write them. The splits default to what a
dataset is made of: the reference is its test split, the floor and the model's training clips
(memorisation) its train split, each where the source has one.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Sequence
from pathlib import Path

from audiodiff.audio import audio_info
from audiodiff.metrics.classifier import AudioClassifier, evaluate_classifier, train_classifier
from audiodiff.metrics.embeddings import EMBEDDINGS
from audiodiff.metrics.plots import default_mel_spec
from audiodiff.metrics.report import plot_sets, write_json, write_memorisation_page, write_report
from audiodiff.metrics.scoring import (
    check_sets,
    classifier_score,
    evaluate_folders,
    load_classifier,
    memorisation_scores,
    score_rows,
)
from audiodiff.metrics.sets import ClipSet, EvaluationError, available_splits, check_labels, floor_subset, load_clips

__all__ = ["RealSources", "default_split", "evaluate", "train_evaluation_classifier"]


def default_split(
    source: str | os.PathLike, split: str | None, preferred: str, besides: str | None = None
) -> str | None:
    """The split to read: `split` when given ("" for none), else `preferred` where `source` has
    it and it is not `besides` (the split already read as the reference), else None."""
    if split is not None:
        return split or None
    return preferred if preferred != besides and preferred in available_splits(source) else None


@dataclasses.dataclass(frozen=True)
class RealSources:
    """Where an evaluation's real clips come from, defaults applied (`resolve`): the reference
    (None split: the whole source), the floor (another source, or a split of the reference; none
    without either) and the model's training clips for memorisation (likewise)."""

    reference: str
    split: str | None = None
    floor_reference: str | None = None
    floor_split: str | None = None
    training_reference: str | None = None
    training_split: str | None = None
    training_clips: int = 2000  # at most, evenly drawn

    @classmethod
    def resolve(
        cls,
        reference: str | os.PathLike,
        split: str | None = None,
        floor_reference: str | None = None,
        floor_split: str | None = None,
        no_floor: bool = False,
        training_reference: str | None = None,
        training_split: str | None = None,
        training_clips: int = 2000,
    ) -> RealSources:
        """The sources with the defaults of a dataset: the reference's test split, the floor and
        the training clips from its train split (each where there is one and it is not the
        reference split). "" asks for the whole reference, or for no floor / no training clips."""
        chosen = default_split(reference, split, "test")
        return cls(
            reference=str(reference),
            split=chosen,
            floor_reference=floor_reference,
            floor_split=None if no_floor or floor_reference else default_split(reference, floor_split, "train", chosen),
            training_reference=training_reference,
            training_split=None if training_reference else default_split(reference, training_split, "train", chosen),
            training_clips=training_clips,
        )

    def load_reference(self, classifier: AudioClassifier | None = None) -> ClipSet:
        """The reference clips, their labels checked against `classifier`."""
        reference = load_clips(self.reference, self.split, side="reference")
        check_labels(reference.labels, classifier, f"reference {reference.description}")
        return reference

    def load_floor(self, generated: ClipSet, seed: int = 0) -> ClipSet | None:
        """Real clips standing in for `generated`, as many per label (`floor_subset`); None without a floor."""
        if self.floor_reference:
            pool = load_clips(self.floor_reference, side="floor")
        elif self.floor_split:
            pool = load_clips(self.reference, self.floor_split, side="floor")
        else:
            return None
        return floor_subset(pool, generated, seed)

    def load_training(self, classifier: AudioClassifier | None) -> ClipSet | None:
        """The model's training clips (at most `training_clips`, evenly drawn); None without them
        or without a classifier, in whose features memorisation is measured."""
        if classifier is None or not (self.training_reference or self.training_split):
            return None
        if self.training_reference:
            training = load_clips(self.training_reference, side="training")
        else:
            training = load_clips(self.reference, self.training_split, side="training")
        return training.every(max(1, -(-len(training) // self.training_clips)))


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
    check_sets(sets, classifier, frechet=embeddings != [])
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
        "scores": score_rows(model, floor_result),
        "per_class_accuracy": {
            "model": classifier_score(model, "generated", "per_class_accuracy"),
            "floor": classifier_score(floor_result, "generated", "per_class_accuracy"),
        },
        "model_metrics": model,
        "floor_metrics": floor_result,
    }
    if training is not None and classifier is not None:
        result["memorisation"] = memorisation_scores(generated, training, reference, classifier, progress)
        write_memorisation_page(result["memorisation"], len(training), out_dir, classifier.mel_spec.sample_rate)
    accuracy = result["per_class_accuracy"]
    plots = plot_sets(
        sets, out_dir, result["sample_rate"], result["clip_seconds"], accuracy["model"], accuracy["floor"]
    )
    result["plots"] = [str(path.relative_to(out_dir)) for path in plots]
    write_json(result, out_dir / "metrics.json")
    write_report(result, out_dir / "report.md")
    return result


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
    split = default_split(data, split, "train")
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
        chosen = default_split(data, chosen, name)
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
