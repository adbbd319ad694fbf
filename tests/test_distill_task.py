"""Distillation as a training kind: students are checkpoints like any other, sample with their
own defaults, take guidance as an input, refuse what they were not distilled for, and resume."""

import json

import pytest
import torch
from safetensors.torch import load_file

from audiodiff.checkpoint import list_checkpoints
from audiodiff.config import DistillRunConfig, from_dict
from audiodiff.diffusion.distill import GUIDANCE
from audiodiff.models.condition_base import ConditionError
from audiodiff.pipeline import Pipeline
from audiodiff.train.diffusion import DiffusionTask
from audiodiff.train.distill import DistillTask, student_config
from audiodiff.train.errors import TrainingError
from audiodiff.train.trainer import Trainer
from tests.util import tiny_config

TRAIN = {
    "steps": 4,
    "batch_size": 3,
    "ckpt_every": 2,
    "preview_every": 0,
    "log_every": 1,
    "precision": "fp32",
    "warmup_steps": 1,
}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, synth_dir):
    out = tmp_path_factory.mktemp("teacher") / "run"
    config = tiny_config(synth_dir, out, conditioning={"labels": "auto"}, train={"steps": 4, "batch_size": 3})
    Trainer(DiffusionTask(config, verbose=False), config.train, progress=False).fit()
    return out


def distill_config(teacher, out, synth_dir, method="guidance", train=None, **distill_options) -> DistillRunConfig:
    return from_dict(
        DistillRunConfig,
        {
            "distill": {"teacher": str(teacher), "method": method, **distill_options},
            "data": {"path": str(synth_dir)},
            "train": {**TRAIN, "out_dir": str(out), **(train or {})},
        },
    )


def distill(teacher, out, synth_dir, method="guidance", stop_at=None, resume=False, train=None, **distill_options):
    config = distill_config(teacher, out, synth_dir, method, train, **distill_options)
    trainer = Trainer(DistillTask(config, verbose=False), config.train, resume=resume, progress=False)
    return trainer.fit(stop_at=stop_at)


@pytest.fixture(scope="module")
def guidance_student(teacher, synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("student") / "guidance"
    distill(teacher, out, synth_dir, guidance_range=[1.0, 4.0])
    return out


def test_a_student_checkpoint_records_its_teacher_method_and_steps(guidance_student, teacher):
    config = json.loads((list_checkpoints(guidance_student)[-1] / "config.json").read_text())
    assert config["kind"] == "diffusion"
    assert config["student"] == {
        "teacher": str(teacher),
        "base": str(teacher),
        "method": "guidance",
        "steps": 10,
        "guidance_range": [1.0, 4.0],
    }
    assert config["source"]["distill"]["method"] == "guidance"


def test_guidance_student_takes_one_call_per_step_and_guidance_changes_it(guidance_student):
    pipe = Pipeline.from_pretrained(guidance_student)
    calls = []
    forward = pipe.model.forward
    pipe.model.forward = lambda x, t, cond=None: calls.append(x.shape[0]) or forward(x, t, cond)
    low = pipe.generate(label="low", n=2, steps=3, guidance=1.0, seed=0)
    assert calls == [2, 2, 2]  # no second, unconditional batch
    high = pipe.generate(label="low", n=2, steps=3, guidance=4.0, seed=0)
    assert not torch.allclose(low.audio, high.audio)
    assert "guidance_scale" not in pipe.conditions


def test_guidance_student_refuses_negatives_and_names_its_teacher(guidance_student, teacher):
    pipe = Pipeline.from_pretrained(guidance_student)
    with pytest.raises(ConditionError, match="use its teacher"):
        pipe.generate(label="low", negative_label="high", steps=2)
    with pytest.raises(ConditionError, match="far outside the trained range"):
        pipe.generate(label="low", guidance=40.0, steps=2)


def test_progressive_student_of_a_guidance_student_samples_with_its_own_steps(guidance_student, synth_dir, tmp_path):
    out = distill(guidance_student, tmp_path / "progressive", synth_dir, method="progressive", student_steps=2)
    pipe = Pipeline.from_pretrained(out)
    assert (pipe.config.sampling.sampler, pipe.config.sampling.steps) == ("ddim", 2)
    assert pipe.config.student.guidance_range == [1.0, 4.0]  # still an input
    assert pipe.config.student.base != pipe.config.student.teacher  # the teacher is the guidance student
    seen = []
    pipe.generate(label="high", callback=lambda info: seen.append(info["step"]))
    assert seen == [0, 1]


def test_a_student_does_not_inherit_its_teachers_guide_or_guidance_interval(teacher, guidance_student):
    """A teacher whose defaults guide the label harder at high noise: its student learnt plain guidance."""
    config = Pipeline.from_pretrained(teacher).config
    config.sampling.guide, config.sampling.rest_guidance, config.sampling.guidance_interval = ["label"], 2.5, (0.5, 1.0)
    run = from_dict(
        DistillRunConfig, {"distill": {"teacher": str(teacher), "method": "guidance"}, "data": {"path": "x"}}
    )
    sampling = student_config(config, run).sampling
    assert (sampling.guide, sampling.rest_guidance, tuple(sampling.guidance_interval)) == ([], 1.0, (0.0, 1.0))
    assert Pipeline.from_pretrained(guidance_student).generate(label="high", guidance=3.0, steps=2).audio.shape[0] == 1


def test_progressive_student_of_a_plain_teacher_bakes_in_its_guidance(teacher, synth_dir, tmp_path):
    out = distill(teacher, tmp_path / "plain", synth_dir, method="progressive", student_steps=4, guidance=2.5)
    pipe = Pipeline.from_pretrained(out)
    assert pipe.config.student.guidance_range is None and "guidance_scale" not in pipe.model.conditioner.conditions
    assert pipe.config.sampling.guidance == 1.0  # its conditional prediction is the guided one: no second pass
    calls = []
    forward = pipe.model.forward
    pipe.model.forward = lambda x, t, cond=None: calls.append(x.shape[0]) or forward(x, t, cond)
    pipe.generate(label="high", n=2)
    assert calls == [2] * 4


def test_consistency_student_of_a_guidance_student_samples_in_one_call(guidance_student, synth_dir, tmp_path):
    out = distill(
        guidance_student, tmp_path / "consistency", synth_dir, method="consistency", student_steps=1, intervals=4
    )
    pipe = Pipeline.from_pretrained(out)
    assert (pipe.config.sampling.sampler, pipe.config.sampling.steps) == ("consistency", 1)
    assert pipe.config.student.method == "consistency" and pipe.config.student.guidance_range == [1.0, 4.0]
    calls = []
    forward = pipe.model.forward
    pipe.model.forward = lambda x, t, cond=None: calls.append(x.shape[0]) or forward(x, t, cond)
    one = pipe.generate(label="high", n=2, seed=0)
    assert calls == [2] and torch.isfinite(one.audio).all()
    two = pipe.generate(label="high", n=2, seed=0, steps=2)  # multistep consistency sampling: fresh noise at the middle
    assert len(calls) == 3 and not torch.allclose(one.audio, two.audio)


def test_a_consistency_grid_of_zero_intervals_is_refused(teacher, synth_dir, tmp_path):
    with pytest.raises(TrainingError, match="distill.intervals=0"):
        distill(teacher, tmp_path / "bad", synth_dir, method="consistency", student_steps=1, intervals=0)


def test_a_killed_distillation_resumes_to_the_same_weights(teacher, synth_dir, tmp_path):
    full = distill(teacher, tmp_path / "full", synth_dir)
    distill(teacher, tmp_path / "split", synth_dir, stop_at=2)
    resumed = distill(teacher, tmp_path / "split", synth_dir, resume=True)
    for name in ("model.safetensors", "training_state.safetensors"):
        a, b = load_file(full / name), load_file(resumed / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_init_from_teacher_with_another_architecture_is_a_clear_error(teacher, synth_dir, tmp_path):
    config = from_dict(
        DistillRunConfig,
        {
            "distill": {"teacher": str(teacher)},
            "data": {"path": str(synth_dir)},
            "model": {"channels": 8, "head_channels": 8},
            "train": {**TRAIN, "out_dir": str(tmp_path / "small")},
        },
    )
    with pytest.raises(TrainingError, match="init_from_teacher=false"):
        Trainer(DistillTask(config, verbose=False), config.train, progress=False).fit()


def test_a_student_varies_audio_like_any_model(guidance_student):
    pipe = Pipeline.from_pretrained(guidance_student)
    audio = torch.sin(torch.linspace(0, 300, 8000))[None] * 0.3
    out = pipe.vary(audio, strength=0.5, sample_rate=16000, steps=2, label="low")
    assert out.audio.shape[-1] == pytest.approx(8000, abs=256) and torch.isfinite(out.audio).all()


def test_distill_drop_prob_sets_every_condition_but_the_guidance_scale(teacher, synth_dir, tmp_path):
    distill(teacher, tmp_path / "drop", synth_dir, guidance_range=[1.0, 4.0], drop_prob=0.5)
    conditioning = json.loads((list_checkpoints(tmp_path / "drop")[-1] / "config.json").read_text())["conditioning"]
    assert conditioning["drop_prob"] == 0.5 and conditioning["drop"] == {GUIDANCE: 0.0}
    with pytest.raises(TrainingError, match="distill.drop_prob=1.5"):
        distill(teacher, tmp_path / "bad", synth_dir, drop_prob=1.5)


def test_an_adversarial_student_trains_a_critic_resumes_and_samples_in_its_steps(teacher, synth_dir, tmp_path):
    out = tmp_path / "adversarial"
    distill(teacher, out, synth_dir, method="adversarial", student_steps=1, stop_at=2)
    state = load_file(str(list_checkpoints(out)[-1] / "training_state.safetensors"))
    assert any(key.startswith("module.discriminator.") for key in state)  # the critic resumes with the student
    distill(teacher, out, synth_dir, method="adversarial", student_steps=1, resume=True)
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert {"loss", "discriminator"} <= set(records[-1]) and records[-1]["step"] == TRAIN["steps"]
    pipe = Pipeline.from_pretrained(out)
    assert pipe.config.student.method == "adversarial" and pipe.config.sampling.steps == 1
    assert torch.isfinite(pipe.generate(label="chirp").audio).all()


def test_an_adversarial_run_logs_its_students_recall_beside_the_teachers(teacher, synth_dir, tmp_path):
    out = tmp_path / "watched"
    distill(teacher, out, synth_dir, method="adversarial", student_steps=1, train={"preview_every": 2})
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    watched = [r for r in records if "watch_recall" in r and "warning" not in r]  # warnings repeat the figures
    assert [r["step"] for r in watched] == [1, 2, 3, 4]  # every preview (a 4-step run previews each step)
    assert all(0 <= r["watch_recall"] <= 1 and 0 <= r["teacher_recall"] <= 1 for r in watched)
    health = json.loads((list_checkpoints(out)[-1] / "config.json").read_text())["source"]["health"]
    assert health["watch"]["step"] == 3  # the last checkpoint is written before the final preview (in the log)


class Constant(torch.nn.Module):
    """A collapsed one-step student: v = -clip, so every sample is `clip` whatever the noise."""

    def __init__(self, clip):
        super().__init__()
        self.clip = clip

    def forward(self, x, theta, cond=None):
        return -self.clip.expand_as(x)


class Replay(torch.nn.Module):
    """A one-step student whose samples are real clips (other crops of the data): no collapse."""

    def __init__(self, clips):
        super().__init__()
        self.clips = clips

    def forward(self, x, theta, cond=None):
        return -self.clips[: x.shape[0]]


def test_a_collapsing_student_is_warned_in_the_log_and_the_checkpoint(teacher, synth_dir, tmp_path):
    from types import SimpleNamespace

    from audiodiff.train.distill import CRITIC_PATIENCE, space_features

    config = distill_config(teacher, tmp_path / "x", synth_dir, method="adversarial", student_steps=1)
    task = DistillTask(config, verbose=False)
    task.build(torch.device("cpu"), config.train)
    real, _ = task._watch_set()
    task.teacher_features = space_features(
        real + 0.01 * torch.randn(real.shape, generator=torch.Generator().manual_seed(0))
    )
    healthy = task.watch_collapse(Replay(real.flip(-1)), step=2)
    assert healthy["teacher_recall"] > 0.9 and healthy["watch_recall"] > 0.5 and not task.warnings
    assert healthy["watch_spread"] > 0.5
    collapsed = task.watch_collapse(Constant(real[:1]), step=4)
    assert collapsed["watch_recall"] < 0.1 and collapsed["watch_spread"] == 0
    assert "collapsing" in task.warnings[-1]["warning"] and task.warnings[-1]["step"] == 4
    assert [e for e in task.events if "warning" in e]  # the trainer writes these to log.jsonl and prints them
    assert "collapsing" in task.export_config()["source"]["health"]["warnings"][-1]["warning"]
    for step in range(CRITIC_PATIENCE):
        task._watch_critic(0.001, SimpleNamespace(step=step))
    assert "won outright for 200 steps" in task.warnings[-1]["warning"]


def test_within_spread_compares_only_clips_asked_the_same_thing():
    import numpy as np

    from audiodiff.metrics.distribution import within_spread

    features = np.array([[0.0, 0.0], [3.0, 4.0], [100.0, 0.0], [100.0, 0.0]])
    assert within_spread(features, ["a", "a", "b", "b"]) == 2.5  # (5 + 0) / 2: the 100 apart never counts
    assert within_spread(features, ["a", "b", "c", "d"]) == 0.0


def test_space_features_summarise_mel_and_waveform_clips():
    from audiodiff.train.distill import space_features

    mel, wave = torch.randn(3, 1, 80, 40), torch.randn(3, 2, 4000)
    assert space_features(mel).shape == (3, 2 * 1 * 16)
    assert space_features(wave).shape == (3, 2 * 2 * 16)
    louder = space_features(torch.cat([wave[:1], 10 * wave[:1]]))
    assert not torch.allclose(louder[0], louder[1])


def test_an_unknown_method_lists_the_methods(teacher, synth_dir, tmp_path):
    from audiodiff.config import ConfigError

    with pytest.raises(ConfigError, match="adversarial.*consistency.*guidance.*progressive"):
        distill(teacher, tmp_path / "x", synth_dir, method="magic")
