"""`audiodiff eval` end to end on tiny folders: scores beside the real-vs-real floor, a dataset
split as the reference, sampling from a checkpoint, and clear errors for unusable input."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from audiodiff.audio import resample, save_audio
from audiodiff.cli import main
from audiodiff.data.synth import build_synthetic, synth_clip
from audiodiff.metrics.evaluation import RealSources
from audiodiff.metrics.sets import ClipSet, floor_subset
from audiodiff.train.diffusion import DiffusionTask
from audiodiff.train.trainer import Trainer
from tests.util import tiny_config

CLASSES = ("low", "high", "noise")
RATE = 16000


def write_clips(folder: Path, per_label: int, seed: int, rate: int = RATE, tail_seconds: float = 0.0) -> Path:
    """`folder/LABEL/NNNN.wav`, `per_label` synthetic 0.5 s clips of each class, at `rate`,
    followed by `tail_seconds` of noise (after 50 ms of silence, so resampling does not smear it
    into the clip)."""
    generator = torch.Generator().manual_seed(seed)
    for label in CLASSES:
        for index in range(per_label):
            audio, _ = synth_clip(label, RATE, 0.5, generator)
            if tail_seconds:
                tail = 0.3 * torch.randn(1, round(tail_seconds * RATE))
                audio = torch.cat([audio, torch.zeros(1, RATE // 20), tail], dim=-1)
            save_audio(folder / label / f"{index:04d}.wav", resample(audio, RATE, rate), rate)
    return folder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A dataset with train/test splits (18 + 2 clips per class) and a classifier trained on it."""
    root = tmp_path_factory.mktemp("eval")
    build_synthetic(root / "data", per_class=20, classes=CLASSES, seconds=0.5)
    args = [
        "eval",
        "train-classifier",
        "--data",
        root / "data",
        "--out",
        root / "classifier",
        "--epochs",
        "4",
        "--clip-seconds",
        "0.5",
    ]
    assert main([str(arg) for arg in args]) == 0
    return root


def run_eval(*args) -> int:
    return main(["eval", *map(str, args)])


def test_train_classifier_reports_and_saves_test_accuracy(workspace):
    config = json.loads((workspace / "classifier" / "config.json").read_text())
    assert config["labels"] == sorted(CLASSES)
    assert config["training"]["num_items"] == 54  # the train split only
    assert config["training"]["evaluation"]["test"]["num_items"] == 6


def test_eval_end_to_end_writes_scores_beside_the_floor(workspace, tmp_path):
    generated = write_clips(tmp_path / "generated", 3, seed=1)
    reference = write_clips(tmp_path / "reference", 4, seed=2)
    floor = write_clips(tmp_path / "floor", 5, seed=3)
    out = tmp_path / "out"
    code = run_eval(
        "--generated",
        generated,
        "--reference",
        reference,
        "--classifier",
        workspace / "classifier",
        "--floor-reference",
        floor,
        "--out",
        out,
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    scores = {row["score"]: row for row in metrics["scores"]}
    assert set(scores) >= {"frechet_classifier", "accuracy", "inception_score", "am_score"}
    assert all(scores["frechet_classifier"][key] is not None for key in ("model", "floor"))
    assert metrics["floor"]["num_clips"] == 9  # as many as generated, 3 per label
    assert set(metrics["per_class_accuracy"]["model"]) == set(CLASSES)
    report = (out / "report.md").read_text()
    assert "floor (real vs real)" in report and "Fréchet distance" in report
    for plot in (
        "generated_spectrograms.png",
        "reference_spectrograms.png",
        "floor_spectrograms.png",
        "class_accuracy.png",
    ):
        assert (out / plot).is_file() and f"({plot})" in report


def test_floor_is_scored_exactly_like_generated_clips(workspace, tmp_path):
    floor = write_clips(tmp_path / "floor", 3, seed=3)
    shutil.copytree(floor, tmp_path / "generated")  # the "model" reproduces the floor clips
    reference = write_clips(tmp_path / "reference", 4, seed=2)
    run_eval(
        "--generated",
        tmp_path / "generated",
        "--reference",
        reference,
        "--classifier",
        workspace / "classifier",
        "--floor-reference",
        floor,
        "--out",
        tmp_path / "out",
    )
    for row in json.loads((tmp_path / "out" / "metrics.json").read_text())["scores"]:
        assert row["model"] == pytest.approx(row["floor"]), row["score"]


def test_reference_split_of_a_manifest_and_floor_drawn_from_train(workspace, tmp_path):
    generated = write_clips(tmp_path / "generated", 2, seed=1)
    assert (
        run_eval(
            "--generated",
            generated,
            "--reference",
            workspace / "data",
            "--classifier",
            workspace / "classifier",
            "--out",
            tmp_path / "out",
        )
        == 0
    )
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["reference"]["num_clips"] == 6 and "split test" in metrics["reference"]["source"]
    assert "split train" in metrics["floor"]["source"]
    assert metrics["floor"]["num_clips"] == 6


def test_floor_subset_draws_as_many_clips_per_label_as_generated():
    pool = ClipSet("pool", [Path(f"{i}.wav") for i in range(30)], ["a"] * 10 + ["b"] * 20)
    like = ClipSet("generated", [Path(f"g{i}.wav") for i in range(5)], ["a", "a", "b", "b", "b"])
    floor = floor_subset(pool, like, seed=0)
    assert floor.label_counts() == {"a": 2, "b": 3}
    assert floor.paths != floor_subset(pool, like, seed=1).paths
    assert floor.paths == floor_subset(pool, like, seed=0).paths


def test_real_sources_default_to_test_with_the_floor_and_training_clips_from_train(tmp_path):
    for split in ("train", "test"):
        write_clips(tmp_path / "data" / split, 1, seed=0)
    data = tmp_path / "data"
    defaults = RealSources.resolve(data)
    assert (defaults.split, defaults.floor_split, defaults.training_split) == ("test", "train", "train")
    on_train = RealSources.resolve(data, split="train")
    assert (on_train.split, on_train.floor_split, on_train.training_split) == ("train", None, None)
    whole = RealSources.resolve(data, split="", no_floor=True, training_split="")
    assert (whole.split, whole.floor_split, whole.training_split) == (None, None, None)
    elsewhere = RealSources.resolve(data, floor_reference="floor", training_reference="train")
    assert (elsewhere.floor_split, elsewhere.training_split) == (None, None)


def test_other_sample_rates_and_lengths_are_resampled_and_cropped_alike(workspace, tmp_path):
    reference = write_clips(tmp_path / "reference", 4, seed=2)
    longer = write_clips(tmp_path / "generated", 4, seed=2, rate=22050, tail_seconds=0.3)  # same first 0.5 s
    run_eval(
        "--generated",
        longer,
        "--reference",
        reference,
        "--classifier",
        workspace / "classifier",
        "--floor-reference",
        write_clips(tmp_path / "floor", 4, seed=3),
        "--out",
        tmp_path / "out",
    )
    scores = {row["score"]: row for row in json.loads((tmp_path / "out" / "metrics.json").read_text())["scores"]}
    assert scores["frechet_classifier"]["model"] < 0.05 * scores["frechet_classifier"]["floor"]  # ~0: same audio


def test_eval_samples_from_a_checkpoint(workspace, tmp_path):
    config = tiny_config(
        workspace / "data",
        tmp_path / "run",
        seconds=0.5,
        conditioning={"labels": "auto"},
        train={"steps": 2, "ckpt_every": 2},
    )
    Trainer(DiffusionTask(config, verbose=False), config.train, progress=False).fit()
    out = tmp_path / "out"
    assert (
        run_eval(
            "--checkpoint",
            tmp_path / "run",
            "--per-label",
            2,
            "--steps",
            2,
            "--reference",
            workspace / "data",
            "--classifier",
            workspace / "classifier",
            "--out",
            out,
        )
        == 0
    )
    assert sorted(p.name for p in (out / "generated").iterdir()) == sorted(CLASSES)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["generated"]["num_clips"] == 6
    assert metrics["sampling"]["steps"] == 2 and metrics["sampling"]["training_step"] == 2
    assert (
        run_eval("--checkpoint", tmp_path / "run", "--reference", workspace / "data", "--out", out) == 2
    )  # no overwrite
    assert (
        run_eval(
            "--checkpoint",
            tmp_path / "run",
            "--per-label",
            2,
            "--steps",
            2,
            "--reference",
            workspace / "data",
            "--classifier",
            workspace / "classifier",
            "--likelihood",
            3,
            "--likelihood-steps",
            2,
            "--overwrite",
            "--out",
            out,
        )
        == 0
    )
    likelihood = json.loads((out / "metrics.json").read_text())["likelihood"]
    assert likelihood["clips"] == 3 and likelihood["conditional"]
    assert set(likelihood["sets"]) == {"real held-out clips", "frames shuffled", "Gaussian noise"}
    assert all(math.isfinite(row["mean_bits_per_dim"]) for row in likelihood["sets"].values())
    assert "## Likelihood" in (out / "report.md").read_text()


# --------------------------------------------------------------------------------------------
# Bad input


def test_empty_generated_folder_is_a_clear_error(workspace, tmp_path, capsys):
    (tmp_path / "generated").mkdir()
    assert (
        run_eval("--generated", tmp_path / "generated", "--reference", workspace / "data", "--out", tmp_path / "out")
        == 2
    )
    assert "no audio files" in capsys.readouterr().err


def test_labels_the_classifier_does_not_know_are_a_clear_error(workspace, tmp_path, capsys):
    generated = write_clips(tmp_path / "generated", 2, seed=1)
    (generated / "low").rename(generated / "seven")
    code = run_eval(
        "--generated",
        generated,
        "--reference",
        workspace / "data",
        "--classifier",
        workspace / "classifier",
        "--out",
        tmp_path / "out",
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "['seven']" in err and "not classes of the classifier" in err


def test_too_few_clips_for_a_frechet_distance_says_how_many(workspace, tmp_path, capsys):
    save_audio(tmp_path / "generated" / "low" / "0.wav", torch.zeros(1, RATE // 2), RATE)
    code = run_eval(
        "--generated",
        tmp_path / "generated",
        "--reference",
        workspace / "data",
        "--classifier",
        workspace / "classifier",
        "--out",
        tmp_path / "out",
    )
    assert code == 2
    assert "needs at least 2 clips per set" in capsys.readouterr().err


def test_unknown_split_lists_the_splits_there_are(workspace, tmp_path, capsys):
    generated = write_clips(tmp_path / "generated", 2, seed=1)
    assert (
        run_eval("--generated", generated, "--reference", workspace / "data", "--split", "dev", "--out", tmp_path / "o")
        == 2
    )
    assert "['test', 'train']" in capsys.readouterr().err


def test_missing_reference_is_a_clear_error(tmp_path, capsys):
    assert run_eval("--generated", tmp_path, "--out", tmp_path / "out") == 2
    assert "--reference" in capsys.readouterr().err


@pytest.mark.parametrize("labels, per_label", [(10, 3), (2, 1), (3, 11)])
def test_the_smallest_labelled_sets_train_a_classifier(tmp_path, labels, per_label):
    """30 clips in ten folders for 5 epochs (one batch per epoch, once a ZeroDivisionError in the
    schedule), one clip per label, and 33 clips (a last batch of one)."""
    generator = torch.Generator().manual_seed(0)
    for label in range(labels):
        for index in range(per_label):
            audio, _ = synth_clip(CLASSES[label % len(CLASSES)], RATE, 0.25, generator)
            save_audio(tmp_path / "data" / f"l{label}" / f"{index}.wav", audio, RATE)
    args = [
        "eval",
        "train-classifier",
        "--data",
        tmp_path / "data",
        "--split",
        "",
        "--epochs",
        "5",
        "--out",
        tmp_path / "clf",
    ]
    assert main([str(arg) for arg in args]) == 0
    config = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert config["training"]["num_items"] == labels * per_label and len(config["labels"]) == labels


def test_one_label_is_refused_with_the_fix(tmp_path, capsys):
    save_audio(tmp_path / "data" / "only" / "0.wav", torch.zeros(1, RATE // 4), RATE)
    args = ["eval", "train-classifier", "--data", tmp_path / "data", "--split", "", "--out", tmp_path / "clf"]
    assert main([str(arg) for arg in args]) == 2
    assert "at least 2" in capsys.readouterr().err


def test_eval_help_says_the_scores_need_a_classifier(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "need a classifier" in " ".join(capsys.readouterr().out.split())


def test_a_mode_collapsed_set_has_low_recall_and_coverage_beside_the_floor(workspace, tmp_path):
    reference = write_clips(tmp_path / "reference", 10, seed=2)
    floor = write_clips(tmp_path / "floor", 10, seed=3)
    one = write_clips(tmp_path / "one", 1, seed=1)
    for label in CLASSES:  # each label's one clip, ten times
        (tmp_path / "generated" / label).mkdir(parents=True)
        for index in range(10):
            shutil.copy(one / label / "0000.wav", tmp_path / "generated" / label / f"{index}.wav")
    assert (
        run_eval(
            "--generated",
            tmp_path / "generated",
            "--reference",
            reference,
            "--classifier",
            workspace / "classifier",
            "--floor-reference",
            floor,
            "--out",
            tmp_path / "out",
        )
        == 0
    )
    scores = {row["score"]: row for row in json.loads((tmp_path / "out" / "metrics.json").read_text())["scores"]}
    # three distinct clips: no real clip lies in their (zero-radius) balls; they reach about half
    # the real neighbourhoods (this classifier packs a class tightly), the floor all of them
    assert scores["recall_classifier"]["model"] < 0.2 * scores["recall_classifier"]["floor"]
    assert scores["coverage_classifier"]["model"] < 0.6 * scores["coverage_classifier"]["floor"]
    assert "recall" in (tmp_path / "out" / "report.md").read_text()


def test_memorisation_flags_generated_clips_copied_from_the_training_split(workspace, tmp_path):
    manifest = [json.loads(line) for line in (workspace / "data" / "manifest.jsonl").read_text().splitlines()]
    copied = [row for row in manifest if row["split"] == "train"][::6]
    for index, row in enumerate(copied):
        (tmp_path / "generated" / row["label"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(workspace / "data" / row["path"], tmp_path / "generated" / row["label"] / f"{index}.wav")
    novel = write_clips(tmp_path / "novel", 3, seed=7)
    for generated, out in ((tmp_path / "generated", tmp_path / "copied"), (novel, tmp_path / "fresh")):
        assert (
            run_eval(
                "--generated",
                generated,
                "--reference",
                workspace / "data",
                "--classifier",
                workspace / "classifier",
                "--out",
                out,
            )
            == 0
        )
    copied_share = json.loads((tmp_path / "copied" / "metrics.json").read_text())["memorisation"]["copy_share"]
    fresh_share = json.loads((tmp_path / "fresh" / "metrics.json").read_text())["memorisation"]["copy_share"]
    assert copied_share == 1.0 and fresh_share < 0.5
    page = (tmp_path / "copied" / "memorisation.html").read_text()
    assert page.count("<audio") == 16 and (tmp_path / "copied" / "memorisation_pairs.png").is_file()
    assert "## Memorisation" in (tmp_path / "copied" / "report.md").read_text()
