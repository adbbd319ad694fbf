"""The models shipped inside the package: they load offline by name, generate what they are asked
for, share one vocoder, stay within the size budget and carry their provenance and metrics."""

import json

import numpy as np
import pytest
import soundfile
import torch

from audiodiff import controls
from audiodiff.bundled import BUNDLED_DIR, bundled_names
from audiodiff.checkpoint import CONFIG
from audiodiff.cli import main
from audiodiff.pipeline import Pipeline

MAX_BUNDLED_BYTES = 150 * 1000 * 1000  # the project's budget for bundled weights, float16


def test_the_default_models_are_bundled_within_the_size_budget():
    assert {"digits", "notes"} <= set(bundled_names())
    total = sum(path.stat().st_size for path in BUNDLED_DIR.rglob("*") if path.is_file())
    assert total <= MAX_BUNDLED_BYTES, f"bundled weights: {total / 1e6:.1f} MB"


@pytest.mark.parametrize("name", ["digits", "notes", "digits-fast", "notes-fast"])
def test_a_bundled_model_records_its_training_and_metrics(name):
    config = json.loads((BUNDLED_DIR / name / CONFIG).read_text())
    assert config["training"]["step"] > 0 and config["training"]["wall_seconds"] > 0
    assert config["metrics"] and config["sampling"]["vocoder"] == "vocoder-16k"


def test_drums_generates_a_stereo_44k_hit_with_its_descriptors():
    pipe = Pipeline.from_pretrained("drums")
    assert pipe.sample_rate == 44100 and "snare" in pipe.labels
    assert {"velocity", "decay", "brightness"} <= set(pipe.config.conditioning.numbers)
    config = json.loads((BUNDLED_DIR / "drums" / CONFIG).read_text())
    assert config["training"]["step"] > 0 and config["metrics"]["eval"]
    out = pipe.generate(label="kick", velocity=110, decay=0.3, brightness=0.3, steps=4, seed=0, progress=False)
    assert out.sample_rate == 44100 and out.audio.shape[:2] == (1, 2) and torch.isfinite(out.audio).all()
    assert out.audio.abs().max() > 0.01  # a hit, not silence


def test_digits_generates_the_asked_digit_through_the_bundled_vocoder():
    pipe = Pipeline.from_pretrained("digits")
    assert type(pipe.vocoder).__name__ == "GANVocoder"
    assert "seven" in pipe.labels and pipe.config.conditioning.text is not None
    out = pipe.generate(label="seven", text="seven, spoken slowly", n=1, steps=4, seed=0, progress=False)
    assert out.sample_rate == 16000 and out.audio.shape[:2] == (1, 1) and torch.isfinite(out.audio).all()
    assert out.audio.abs().max() > 0.05  # speech, not silence


def test_notes_shares_the_digits_vocoder_and_takes_instrument_and_pitch():
    digits, notes = Pipeline.from_pretrained("digits"), Pipeline.from_pretrained("notes")
    assert notes.mel_spec == digits.mel_spec and notes.config.sampling.vocoder == digits.config.sampling.vocoder
    assert {"pitch", "velocity"} <= set(notes.config.conditioning.numbers)
    out = notes.generate(label=notes.labels[0], pitch=60, velocity=100, n=1, steps=4, seed=0, progress=False)
    assert torch.isfinite(out.audio).all() and out.audio.abs().max() > 0.01


def test_cli_generates_from_a_bundled_model(tmp_path):
    out = tmp_path / "seven.wav"
    assert main(["generate", "--model", "digits", "--label", "seven", "--out", str(out), "--steps", "4"]) == 0
    info = soundfile.info(str(out))
    assert info.samplerate == 16000 and info.duration == pytest.approx(1.0, abs=0.05)


def test_an_unknown_bundled_name_lists_the_bundled_ones(capsys):
    assert main(["generate", "--model", "digitz", "--out", "x.wav"]) != 0
    assert "digits" in capsys.readouterr().err


@pytest.mark.parametrize("name, base, label", [("digits-fast", "digits", "seven"), ("notes-fast", "notes", "brass")])
def test_a_fast_model_is_a_student_that_samples_in_its_few_calls(name, base, label):
    pipe = Pipeline.from_pretrained(name)
    student = pipe.config.student
    assert student.base == base and student.guidance_range and pipe.config.sampling.steps == student.steps <= 2
    calls = []
    pipe.model.register_forward_hook(lambda *_: calls.append(1))
    out = pipe.generate(label=label, n=2, guidance=2.0, seed=0)
    assert len(calls) == student.steps and torch.isfinite(out.audio).all() and out.audio.abs().max() > 0.05


def test_notes_fast_plays_the_asked_pitch_in_one_call():
    """The student of the curve-conditioned `notes` inherits its curves and `pitch=` shorthand."""
    pipe = Pipeline.from_pretrained("notes-fast")
    assert {"f0", "loudness"} <= set(pipe.curves)
    pitches = [60, 67]
    out = pipe.generate(label=["flute", "string"], pitch=pitches, velocity=100, n=2, seed=0, progress=False)
    for clip, pitch in zip(out.audio, pitches):
        f0 = controls.extract(clip[0].numpy(), out.sample_rate)["f0"]
        voiced = f0[np.isfinite(f0) & (f0 > 0)]
        assert voiced.size > 10 and abs(float(np.median(controls.hz_to_midi(voiced))) - pitch) < 0.5


def test_the_real_recordings_vocoder_joins_the_16k_models():
    """vocoder-16k-real (stage 6, trained on real voices, drums and music too) shares the 16 kHz
    MelSpec, so any bundled 16 kHz model can use it."""
    from audiodiff.vocoder import Vocoder

    real = Vocoder.from_pretrained("vocoder-16k-real")
    assert real.mel_spec == Vocoder.from_pretrained("vocoder-16k").mel_spec
    pipe = Pipeline.from_pretrained("digits", vocoder="vocoder-16k-real")
    audio = pipe.generate(label="seven", steps=4, seed=0).audio
    assert torch.isfinite(audio).all() and audio.abs().max() > 0.01


def test_the_bundled_upsampler_takes_a_16k_model_to_full_band():
    from audiodiff.bundled import bundled_upsamplers, bundled_vocoders

    assert "upsampler-44k" in bundled_upsamplers() and "upsampler-44k" not in bundled_vocoders()
    plain = Pipeline.from_pretrained("digits").generate(label="seven", steps=2, seed=0)
    out = Pipeline.from_pretrained("digits", upsampler="upsampler-44k").generate(label="seven", steps=2, seed=0)
    assert out.sample_rate == 44100 and out.audio.abs().max() <= 1.0
    assert abs(out.audio.shape[-1] - plain.audio.shape[-1] * 44100 / 16000) <= 1  # the same clip, at 44.1 kHz
