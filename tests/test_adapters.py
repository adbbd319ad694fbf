"""LoRA / DoRA adapters through peft: a run trains only the adapter on a frozen base, exports
only it, and loads strictly onto the base it was trained on (and no other)."""

import json

import pytest
import torch

from audiodiff.adapters import AdapterError
from audiodiff.checkpoint import CONFIG, WEIGHTS, newest_checkpoint
from audiodiff.cli import main
from audiodiff.config import ConfigError
from audiodiff.pipeline import Pipeline
from audiodiff.train.diffusion import DiffusionTask
from audiodiff.train.trainer import Trainer
from tests.util import tiny_config


def train(config):
    Trainer(DiffusionTask(config, verbose=False), config.train, progress=False).fit()
    return config.train.out_dir


@pytest.fixture(scope="module")
def base(tmp_path_factory, synth_dir):
    out = tmp_path_factory.mktemp("base") / "run"
    return train(tiny_config(synth_dir, out, conditioning={"labels": "auto"}))


@pytest.fixture(scope="module")
def other_base(tmp_path_factory, synth_dir):
    out = tmp_path_factory.mktemp("other") / "run"
    return train(tiny_config(synth_dir, out, conditioning={"labels": "auto"}, train={"seed": 7}))


def adapter_run(synth_dir, out, base, kind="lora", steps=6):
    adapter = {"kind": kind, "rank": 2, "alpha": 4, "targets": ["attention", "conv"]}
    config = tiny_config(
        synth_dir, out, conditioning={"labels": "auto"}, train={"init_from": str(base), "adapter": adapter, "steps": steps, "lr": 2e-2}
    )  # fmt: skip
    return train(config)


@pytest.fixture(scope="module")
def lora(tmp_path_factory, synth_dir, base):
    return adapter_run(synth_dir, tmp_path_factory.mktemp("lora") / "run", base)


def test_an_adapter_run_exports_only_the_adapter_naming_its_base(lora, base):
    folder = newest_checkpoint(lora)
    config = json.loads((folder / CONFIG).read_text())
    assert config["kind"] == "adapter" and config["base"] == str(base) and len(config["base_digest"]) == 16
    from safetensors.torch import load_file

    weights = load_file(str(folder / WEIGHTS))
    assert weights and all("lora_" in key for key in weights)
    base_count = sum(v.numel() for v in load_file(str(newest_checkpoint(base) / WEIGHTS)).values())
    assert sum(v.numel() for v in weights.values()) < 0.2 * base_count


def test_adapters_change_the_output_at_their_scale_and_merge_exactly(lora, base):
    def mel(**options):
        pipe = Pipeline.from_pretrained(base, precision="fp32", **options)
        return pipe, pipe.generate(label="chirp", steps=3, seed=2).mel

    plain, adapted, off = mel()[1], mel(adapters=[lora])[1], mel(adapters=[lora], adapter_scale=0.0)[1]
    merged = mel(adapters={str(lora): 1.0})[0].merge_adapters()
    assert (plain - adapted).abs().max() > 1e-3
    assert torch.allclose(off, plain, atol=1e-5)
    assert torch.allclose(merged.generate(label="chirp", steps=3, seed=2).mel, adapted, atol=1e-4)


def test_several_adapters_add_up_with_their_own_scales(lora, base, synth_dir, tmp_path):
    second = adapter_run(synth_dir, tmp_path / "dora", base, kind="dora", steps=4)
    both = Pipeline.from_pretrained(base, adapters={str(lora): 0.5, str(second): 1.0})
    assert [item["scale"] for item in both.info["adapters"]] == [0.5, 1.0]
    assert torch.isfinite(both.generate(label="chirp", steps=2).audio).all()


def test_an_adapter_on_another_base_is_refused_with_both_digests(lora, other_base):
    with pytest.raises(AdapterError, match=r"digest [0-9a-f]{16}.*digest is [0-9a-f]{16}"):
        Pipeline.from_pretrained(other_base, adapters=[lora])


def test_what_is_not_an_adapter_and_a_bad_scale_are_clear_errors(lora, base):
    with pytest.raises(AdapterError, match="not an adapter"):
        Pipeline.from_pretrained(base, adapters=[base])
    with pytest.raises(AdapterError, match="finite"):
        Pipeline.from_pretrained(base, adapters={str(lora): float("nan")})


def test_an_adapter_needs_a_base_and_known_settings(synth_dir, tmp_path):
    with pytest.raises(ConfigError, match="train.init_from"):
        tiny_config(synth_dir, tmp_path / "x", train={"adapter": {"rank": 4}})
    with pytest.raises(ConfigError, match="rank"):
        tiny_config(synth_dir, tmp_path / "x", train={"init_from": "notes", "adapter": {"rank": 0}})


def test_the_cli_takes_adapters_with_scales(lora, base, tmp_path):
    out = tmp_path / "clip.wav"
    code = main(["generate", "--checkpoint", str(base), "--adapter", f"{lora}:0.7", "--label", "chirp", "--steps", "2", "--out", str(out)])  # fmt: skip
    assert code == 0 and out.is_file()
