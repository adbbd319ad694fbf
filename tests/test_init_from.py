"""Fine-tuning from a pretrained model (`train.init_from`): the run adopts the source's
architecture, carries its weights over, maps labels by name, and refuses what cannot carry over
with a message that names the setting and the fix."""

import pytest
import torch

from audiodiff.pipeline import Pipeline
from audiodiff.train.diffusion import DiffusionTask
from audiodiff.train.init import InitError
from audiodiff.train.trainer import Trainer
from tests.util import tiny_config, tone, write_clip


@pytest.fixture(scope="module")
def source(tmp_path_factory, synth_dir):
    out = tmp_path_factory.mktemp("source") / "run"
    config = tiny_config(synth_dir, out, conditioning={"labels": "auto"})
    Trainer(DiffusionTask(config, verbose=False), config.train, progress=False).fit()
    return out


@pytest.fixture(scope="module")
def one_shots(tmp_path_factory):
    """A folder of the user's own short clips in two label folders: one the source knows, one new."""
    folder = tmp_path_factory.mktemp("own")
    for index in range(3):
        write_clip(folder / "chirp", f"c{index}.wav", tone(500 + 40 * index, seconds=0.1))
        write_clip(folder / "kick", f"k{index}.wav", tone(60 + 5 * index, seconds=0.08, amplitude=0.8))
    return folder


def build(config) -> DiffusionTask:
    task = DiffusionTask(config, verbose=False)
    task.build(torch.device("cpu"), config.train)
    return task


def fine_tune_config(one_shots, tmp_path, source, **train):
    return tiny_config(
        one_shots,
        tmp_path / "tuned",
        data={"label_from_folder": True},
        conditioning={"labels": "auto"},
        model={"channels": 8, "head_channels": 8},  # the run's own architecture gives way to the source's
        train={"init_from": str(source), **train},
    )


def test_fine_tuning_adopts_the_architecture_and_maps_labels_by_name(source, one_shots, tmp_path):
    pretrained = Pipeline.from_pretrained(source, vocoder="griffin_lim")
    task = build(fine_tune_config(one_shots, tmp_path, source))
    assert task.config.model == pretrained.config.model and task.config.mel == pretrained.config.mel
    own, theirs = task.model.state_dict(), pretrained.model.state_dict()
    body = [k for k in own if not k.startswith("conditioner.conditions.")]
    assert body and all(torch.equal(own[k], theirs[k]) for k in body)
    rows, source_rows = (
        own["conditioner.conditions.label.embed.weight"],
        theirs["conditioner.conditions.label.embed.weight"],
    )
    source_labels = pretrained.model.conditioner.conditions["label"].labels
    assert (
        task.config.conditioning.labels == ["chirp", "kick"]
        and "chirp" in source_labels
        and "kick" not in source_labels
    )
    null = source_rows[len(source_labels)]
    assert torch.equal(rows[0], source_rows[source_labels.index("chirp")])
    assert torch.equal(rows[1], null) and torch.equal(rows[2], null)  # a new label starts as "no label"


def test_a_fine_tuned_run_trains_short_clips_and_generates(source, one_shots, tmp_path):
    config = fine_tune_config(one_shots, tmp_path, source, steps=2)
    task = DiffusionTask(config, verbose=False)
    assert len(task.dataset.items) == 6  # 0.08-0.1 s one-shots are padded to the segment, not dropped
    Trainer(task, config.train, progress=False).fit()
    out = Pipeline.from_pretrained(tmp_path / "tuned").generate(label="kick", steps=2, seed=0)
    assert torch.isfinite(out.audio).all()


def test_what_cannot_carry_over_is_a_clear_error(source, one_shots, tmp_path):
    config = tiny_config(
        one_shots,
        tmp_path / "x",
        data={"sample_rate": 22050},
        mel={"sample_rate": 22050},
        train={"init_from": str(source)},
    )
    with pytest.raises(InitError, match="set data.sample_rate=16000"):
        DiffusionTask(config, verbose=False)
    config = tiny_config(one_shots, tmp_path / "y", dims=1, train={"init_from": str(source)})
    with pytest.raises(InitError, match="data.representation=mel"):
        DiffusionTask(config, verbose=False)
    config = tiny_config(one_shots, tmp_path / "z", train={"init_from": str(tmp_path / "nothing-here")})
    with pytest.raises(InitError, match="train.init_from="):
        DiffusionTask(config, verbose=False)


def test_fine_tuning_a_bundled_model_on_an_unlabelled_folder(one_shots, tmp_path):
    config = tiny_config(one_shots, tmp_path / "notes", train={"init_from": "notes"})
    task = build(config)
    assert task.config.model.channels == Pipeline.from_pretrained("notes", vocoder="griffin_lim").config.model.channels
    assert "label" not in task.model.conditioner.conditions
