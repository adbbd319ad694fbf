"""scripts/bundle.py: a fine-tune's bundle records what it started from, once."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_bundle_script():
    spec = importlib.util.spec_from_file_location("bundle_script", ROOT / "scripts" / "bundle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rebundling_a_run_does_not_record_it_as_its_own_predecessor():
    earlier_training = load_bundle_script().earlier_training
    stage1 = {"step": 3000}
    bundled_stage2 = {
        "source": "runs/b/checkpoints/step_00001500",
        "training": {"step": 1500, "init_from": "m", "before": stage1},
    }
    # stage 3 started from the bundled stage 2: its predecessor is stage 2 with its own history
    assert earlier_training(bundled_stage2, Path("runs/c/checkpoints/step_00001000")) == bundled_stage2["training"]
    # stage 2 bundled again over itself: its predecessor is still stage 1
    assert earlier_training(bundled_stage2, Path("runs/b/checkpoints/step_00001500")) == stage1


def test_a_bundled_vocoder_keeps_the_run_it_came_from(tmp_path):
    # earlier_training compares a bundle's `source` with the run being bundled: it must survive saving
    from audiodiff.audio import MelSpec
    from audiodiff.vocoder import Vocoder
    from audiodiff.vocoder.gan import GANVocoder
    from audiodiff.vocoder.generators import build_generator

    vocoder = GANVocoder(build_generator("istft", MelSpec(), dim=8, intermediate_dim=16, num_layers=1))
    vocoder.info["source"] = "runs/v/checkpoints/step_00000100"
    vocoder.info["training"] = {"step": 100, "init_from": "vocoder-16k", "before": {"step": 30000}}
    vocoder.save_pretrained(tmp_path / "bundle")
    info = Vocoder.from_pretrained(tmp_path / "bundle").info
    assert load_bundle_script().earlier_training(info, Path("runs/v/checkpoints/step_00000100")) == {"step": 30000}
