"""Conditioning works: a tiny model trained on low and high tones generates the asked class, asked
by label, by caption or by pitch number, judged by a feature that does not come from the model
(the spectral centroid of the generated mel)."""

import math

import pytest
import torch

from audiodiff.audio import MelSpec
from audiodiff.data.synth import build_synthetic
from audiodiff.models.condition_base import ConditionError
from audiodiff.models.conditioning import Conditioner, ConditioningConfig
from audiodiff.models.curves import CurveConfig, LocalSpec
from audiodiff.pipeline import Pipeline
from audiodiff.train.diffusion import DiffusionTask
from audiodiff.train.trainer import Trainer
from tests.util import tiny_config

PER_CLASS = 8  # clips generated per class and per kind of condition


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("cond")
    build_synthetic(root / "data", per_class=12, classes=("low", "high"), seconds=0.25)
    config = tiny_config(
        root / "data",
        root / "run",
        conditioning={
            "labels": "auto",
            "text": {"dim": 32, "layers": 1, "heads": 2},
            "numbers": {"pitch": "auto"},
            "drop_prob": 0.3,
        },
        model={"channels": 16, "channel_mults": [1, 2], "attention_levels": [1], "patch_size": 2},
        train={"steps": 250, "batch_size": 8, "lr": 2e-3, "warmup_steps": 20, "ckpt_every": 250, "ema_decay": 0.98},
    )
    Trainer(DiffusionTask(config, verbose=False), config.train, progress=False).fit()
    return Pipeline.from_pretrained(root / "run")


def centroid(mel: torch.Tensor) -> torch.Tensor:
    """Mean mel band weighted by magnitude, per clip: `[n, mels, frames] -> [n]`."""
    weight = torch.exp(MelSpec().denormalize(mel)).sum(-1)
    bands = torch.arange(mel.shape[1], dtype=torch.float32)
    return (weight * bands).sum(-1) / weight.sum(-1)


def accuracy(pipe, low: dict, high: dict) -> float:
    threshold = 18.0  # real low tones have centroids in bands 3-10, real high tones in bands 28-47
    kwargs = dict(n=PER_CLASS, steps=15, guidance=2.0)
    low_ok = centroid(pipe.generate(seed=0, **low, **kwargs).mel) < threshold
    high_ok = centroid(pipe.generate(seed=100, **high, **kwargs).mel) > threshold
    return torch.cat([low_ok, high_ok]).float().mean().item()


def test_label_conditioning_generates_the_asked_class(pipe):
    assert accuracy(pipe, {"label": "low"}, {"label": "high"}) >= 0.9


def test_text_conditioning_generates_the_asked_class(pipe):
    assert accuracy(pipe, {"text": "a low quiet tone"}, {"text": "a high loud tone"}) >= 0.9


def test_number_conditioning_generates_the_asked_pitch(pipe):
    assert accuracy(pipe, {"pitch": 50.0}, {"pitch": 92.0}) >= 0.9


def test_negative_label_pushes_away(pipe):
    assert accuracy(pipe, {"negative_label": "high"}, {"negative_label": "low"}) >= 0.9


def test_each_condition_reads_typed_text_its_own_way():
    """`--cond NAME=VALUE` and the page's text boxes go through the spec to its condition's
    `parse_text`: no front-end knows that a number is a float or a curve a list."""
    cfg = ConditioningConfig(labels=["low", "high"], numbers={"pitch": [40.0, 80.0]}, curves={"f0": CurveConfig()})
    conditioner = Conditioner(cfg, 8, LocalSpec(dims=1, width=8, patch_size=1, kernel_size=3))
    specs = {spec.name: spec for spec in conditioner.specs()}
    assert specs["label"].parse_text("high") == "high"
    assert specs["pitch"].parse_text("61.5") == 61.5
    f0 = specs["f0"].parse_text("220,nan,0")
    assert f0[0] == 220.0 and math.isnan(f0[1]) and f0[2] == 0.0
    with pytest.raises(ConditionError, match="pitch='high': expected a number"):
        specs["pitch"].parse_text("high")
