"""Editing: variation, inpainting, continuation, loops and interpolation, for mel and waveform models."""

import pytest
import torch

from audiodiff.pipeline import Pipeline, build_model
from audiodiff.spaces import Mel
from tests.util import tiny_config, tone

RATE = 16000


def make_pipe(tmp_path, dims):
    config = tiny_config(tmp_path, tmp_path / "run", dims=dims, seconds=0.25, conditioning={"labels": ["a", "b"]})
    model = build_model(config)
    for param in model.parameters():  # untrained but not silent
        torch.nn.init.normal_(param, std=0.02)
    return Pipeline(model, config)


@pytest.fixture(params=[2, 1], ids=["mel", "wave"])
def pipe(request, tmp_path):
    return make_pipe(tmp_path, request.param)


def test_variation_at_strength_zero_returns_the_input(pipe):
    audio = tone(440, 0.25)
    out = pipe.vary(audio, strength=0.0, sample_rate=RATE)
    assert torch.equal(out.audio[0], audio)


def test_variation_changes_more_with_more_strength(pipe):
    audio = tone(440, 0.25)
    weak = pipe.vary(audio, strength=0.2, sample_rate=RATE, steps=5, seed=1).audio
    strong = pipe.vary(audio, strength=0.9, sample_rate=RATE, steps=5, seed=1).audio
    length = min(weak.shape[-1], audio.shape[-1])
    assert (weak[..., :length] - audio[..., :length]).abs().mean() < (
        strong[..., :length] - audio[..., :length]
    ).abs().mean()


def test_strength_outside_zero_one_is_refused(pipe):
    with pytest.raises(ValueError, match="strength=1.5"):
        pipe.vary(tone(440, 0.25), strength=1.5, sample_rate=RATE)


def test_inpainting_keeps_the_unmasked_audio_exactly_and_changes_the_masked_span(pipe):
    audio = tone(440, 0.25) * 0.8
    out = pipe.inpaint(audio, start=0.1, end=0.15, sample_rate=RATE, steps=4, seed=3).audio[0]
    assert out.shape == audio.shape
    first, last = int(0.1 * RATE), int(0.15 * RATE)
    fade = int(0.011 * RATE)  # mel models splice the input back with 10 ms crossfades inside the span
    assert torch.equal(out[:, :first], audio[:, :first]) and torch.equal(out[:, last:], audio[:, last:])
    assert (out[:, first + fade : last - fade] - audio[:, first + fade : last - fade]).abs().mean() > 0.05


def test_inpainting_masks_of_the_wrong_size_or_content_are_refused(pipe):
    audio = tone(440, 0.25)
    with pytest.raises(ValueError, match="mask has 10 values"):
        pipe.inpaint(audio, mask=torch.ones(10), sample_rate=RATE)
    with pytest.raises(ValueError, match="all zero"):
        pipe.inpaint(audio, mask=torch.zeros(audio.shape[-1]), sample_rate=RATE)
    with pytest.raises(ValueError, match="all one"):
        pipe.inpaint(audio, mask=torch.ones(audio.shape[-1]), sample_rate=RATE)
    with pytest.raises(ValueError, match="outside the audio"):
        pipe.inpaint(audio, start=0.2, end=0.9, sample_rate=RATE)


def test_inpainting_to_a_hair_past_the_end_means_to_the_end(pipe):
    """end=1.0 on a clip a frame short of a second (a mel model's own output) reaches its end; a
    span further past it is still refused."""
    audio = tone(440, 0.25)
    seconds = audio.shape[-1] / RATE
    out = pipe.inpaint(audio, start=0.1, end=seconds + 0.01, sample_rate=RATE, steps=2).audio[0]
    assert out.shape[-1] == audio.shape[-1] and torch.equal(out[:, : int(0.05 * RATE)], audio[:, : int(0.05 * RATE)])
    with pytest.raises(ValueError, match="outside the audio"):
        pipe.inpaint(audio, start=0.1, end=seconds + 0.05, sample_rate=RATE)


def test_continuation_keeps_the_input_and_adds_the_asked_length(pipe):
    audio = tone(300, 0.25)
    out = pipe.continue_(audio, seconds=0.6, sample_rate=RATE, steps=3).audio[0]
    kept = audio.shape[-1] // 256 * 256 if isinstance(pipe.space, Mel) else audio.shape[-1]
    assert torch.equal(out[:, :kept], audio[:, :kept])
    assert abs(out.shape[-1] - (kept + 0.6 * RATE)) <= 256


def test_long_generation_goes_window_by_window(pipe):
    out = pipe.generate(label="a", duration=0.8, steps=3)
    assert abs(out.audio.shape[-1] - 0.8 * RATE) <= 256


def test_other_sample_rates_are_resampled(pipe):
    out = pipe.vary(tone(440, 0.25, sample_rate=8000), strength=0.0, sample_rate=8000)
    assert out.sample_rate == RATE and out.audio.shape[-1] == 4000


def test_tensor_input_needs_its_sample_rate(pipe):
    with pytest.raises(ValueError, match="sample_rate="):
        pipe.vary(tone(440, 0.25), strength=0.5)


def test_too_long_audio_is_refused_with_the_limit(pipe):
    with pytest.raises(ValueError, match="at most 1.0 s in one pass"):
        pipe.vary(tone(440, 2.0), strength=0.5, sample_rate=RATE)


def test_loop_wraps_around_smoothly(pipe):
    out = pipe.loop(label="b", steps=3, seed=2).audio[0, 0]
    assert out.shape[-1] > 0
    wrap_jump = (out[0] - out[-1]).abs()
    typical_jump = (out[1:] - out[:-1]).abs().quantile(0.99)
    assert wrap_jump <= typical_jump + 1e-6


def test_interpolation_endpoints_match_the_seeds(pipe):
    path = pipe.interpolate(4, 9, count=3, label="a", steps=3)
    a = pipe.generate(label="a", seed=4, steps=3, sampler="ddim")
    b = pipe.generate(label="a", seed=9, steps=3, sampler="ddim")
    if path.mel is not None:  # the samples themselves; Griffin-Lim's 32 iterations magnify float rounding
        # of a batch of 3 against a batch of 1 (1e-7 in the mel became 1.3e-3 in audio on an AVX-512 CPU)
        assert torch.allclose(path.mel[0], a.mel[0], atol=1e-5) and torch.allclose(path.mel[2], b.mel[0], atol=1e-5)
    tolerance = 5e-3 if path.mel is not None else 1e-3
    assert torch.allclose(path.audio[0], a.audio[0], atol=tolerance) and torch.allclose(
        path.audio[2], b.audio[0], atol=tolerance
    )


def test_mixing_switches_conditions_along_the_trajectory(tmp_path):
    pipe = make_pipe(tmp_path, 1)
    options = dict(n=2, steps=6, seed=4, guidance=2.0)
    first, second = pipe.generate(label="a", **options).audio, pipe.generate(label="b", **options).audio
    assert torch.equal(pipe.mix({"label": "a"}, {"label": "b"}, at=0.0, **options).audio, first)
    assert torch.equal(pipe.mix({"label": "a"}, {"label": "b"}, at=1.0, **options).audio, second)
    halfway = pipe.mix({"label": "a"}, {"label": "b"}, at=0.5, **options).audio
    assert not torch.equal(halfway, first) and not torch.equal(halfway, second)
    with pytest.raises(ValueError, match="at=1.5"):
        pipe.mix({"label": "a"}, {"label": "b"}, at=1.5)
    with pytest.raises(ValueError, match=r"unknown label .snare.; this model knows \[.a., .b.\]"):
        pipe.mix({"label": "a"}, {"label": "snare"})


def test_uploads_at_another_rate_or_channel_count_are_converted_and_said_so(tmp_path):
    pipe = make_pipe(tmp_path, 1)
    with pytest.warns(UserWarning, match="resampled from 22050 Hz to the model's 16000 Hz"):
        pipe.vary(tone(440, 0.25, 22050), strength=0.3, sample_rate=22050, steps=2, label="a")
    with pytest.warns(UserWarning, match="2 channels, mixed down"):
        pipe.vary(tone(440, 0.25).expand(2, -1), strength=0.3, sample_rate=RATE, steps=2, label="a")


def test_the_drums_edit_benchmark_asks_towards_the_middle_and_times_onsets_at_any_rate():
    from benchmarks.drums_edit import moved_target, onset

    dark, bright = {"label": "kick", "brightness": 0.2}, {"label": "ride", "brightness": 0.9}
    assert moved_target(dark, "brightness", 0.15, (0.1, 0.95))["brightness"] == pytest.approx(0.35)
    assert moved_target(bright, "brightness", 0.15, (0.1, 0.95))["brightness"] == pytest.approx(0.75)
    assert moved_target(dark, "brightness", 0.5, (0.1, 0.4))["brightness"] == pytest.approx(0.4)  # kept in range
    rate = 44100
    hit = torch.zeros(2, rate)
    hit[:, int(0.25 * rate) :] = torch.randn(2, rate - int(0.25 * rate)) * torch.exp(
        -torch.arange(rate - int(0.25 * rate)) / 4000
    )
    assert onset(hit, rate) == pytest.approx(0.25, abs=0.011)
