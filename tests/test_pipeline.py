"""Pipeline loading, saving and generation behaviour on small untrained or briefly trained models."""

import json
import math
import warnings

import pytest
import torch

from audiodiff.audio import MelSpec
from audiodiff.checkpoint import CheckpointError
from audiodiff.models.condition_base import ConditionError
from audiodiff.pipeline import NORMALIZE_PEAK, PEAK_GUARD, Pipeline, build_model
from audiodiff.vocoder import GriffinLimVocoder, VocoderError
from tests.util import tiny_config, tone


@pytest.fixture
def pipe(tmp_path):
    config = tiny_config(
        tmp_path, tmp_path / "run", conditioning={"labels": ["low", "high"], "numbers": {"pitch": [40, 90]}}
    )
    model = build_model(config)
    for param in model.parameters():
        torch.nn.init.normal_(param, std=0.02)
    return Pipeline(model, config)


def test_same_seed_gives_the_same_audio_at_any_batch_size(pipe):
    one = pipe.generate(label="low", n=1, steps=3, seed=5)
    four = pipe.generate(label="low", n=4, steps=3, seed=2)  # item 3 uses seed 5
    assert torch.allclose(one.mel[0], four.mel[3], atol=1e-5)  # batched matmuls round differently
    assert torch.allclose(one.audio[0], four.audio[3], atol=1e-3)
    assert not torch.allclose(four.audio[0], four.audio[1])


def test_stochastic_sampler_is_reproducible_per_seed(pipe):
    one = pipe.generate(label="high", n=1, steps=3, seed=7, sampler="ddpm")
    two = pipe.generate(label="high", n=2, steps=3, seed=6, sampler="ddpm")
    assert torch.allclose(one.mel[0], two.mel[1], atol=1e-5)


def test_output_shape_and_rate(pipe):
    out = pipe.generate(n=2, steps=2, duration=0.5)
    assert out.audio.shape == (2, 1, 8000 // 256 * 256) and out.sample_rate == 16000
    assert out.audio.abs().max() <= 1.0 and out.mel.shape == (2, 80, 31)


def test_unknown_label_and_out_of_range_number_are_clear_errors(pipe):
    with pytest.raises(ConditionError, match=r"knows \['low', 'high'\]"):
        pipe.generate(label="seven")
    with pytest.raises(ConditionError, match="far outside the trained range"):
        pipe.generate(pitch=500)
    with pytest.raises(ConditionError, match="does not take 'velocity'"):
        pipe.generate(velocity=3)


def test_bad_steps_and_duration_are_refused(pipe):
    with pytest.raises(ValueError, match="steps=0"):
        pipe.generate(steps=0)
    with pytest.raises(ValueError, match="duration"):
        pipe.generate(duration=-1)


def test_save_and_load_round_trip(pipe, tmp_path):
    path = pipe.save_pretrained(tmp_path / "saved")
    loaded = Pipeline.from_pretrained(path)
    assert loaded.labels == ["low", "high"]
    a = pipe.generate(label="high", steps=2, seed=1).audio
    b = loaded.generate(label="high", steps=2, seed=1).audio
    assert torch.allclose(a, b, atol=1e-5)


def test_missing_weights_file_is_named(pipe, tmp_path):
    path = pipe.save_pretrained(tmp_path / "saved")
    (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors: missing"):
        Pipeline.from_pretrained(path)


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        Pipeline.from_pretrained(tmp_path / "nothing")


def test_mismatched_weights_are_refused(pipe, tmp_path):
    path = pipe.save_pretrained(tmp_path / "saved")
    config = json.loads((path / "config.json").read_text())
    config["model"]["channels"] = 32
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="wrong shape"):
        Pipeline.from_pretrained(path)


def test_vocoder_with_other_mel_settings_is_refused(pipe):
    with pytest.raises(VocoderError, match="n_mels: 80 != 64"):
        Pipeline(pipe.model, pipe.config, GriffinLimVocoder(MelSpec(n_mels=64)))


# -- one generation request: every option that changes the output changes it, in every method


def _clip(pipe, seconds=0.5):
    return torch.sin(torch.linspace(0, 400, int(16000 * seconds)))[None] * 0.3


EDITS = {
    "vary": lambda pipe, **o: pipe.vary(_clip(pipe), strength=0.6, sample_rate=16000, steps=3, **o),
    "inpaint": lambda pipe, **o: pipe.inpaint(_clip(pipe), start=0.1, end=0.3, sample_rate=16000, steps=3, **o),
    "continue_": lambda pipe, **o: pipe.continue_(_clip(pipe), seconds=0.3, sample_rate=16000, steps=3, **o),
    "loop": lambda pipe, **o: pipe.loop(duration=0.5, steps=3, **o),
    "generate": lambda pipe, **o: pipe.generate(duration=0.5, steps=3, **o),
}


@pytest.mark.parametrize("method", sorted(EDITS))
@pytest.mark.parametrize(
    "option, first, second",
    [("sampler", "ddim", "euler"), ("negative_label", "low", "high"), ("guidance", 1.5, 4.0), ("seed", 1, 2)],
)
def test_every_option_changes_the_output_of_every_method(pipe, method, option, first, second):
    conditions = (
        {"label": "high", "seed": 1} if option != "negative_label" else {"label": "high", "seed": 1, "guidance": 3.0}
    )
    a = EDITS[method](pipe, **{**conditions, option: first})
    b = EDITS[method](pipe, **{**conditions, option: second})
    assert not torch.allclose(a.audio, b.audio), f"{method}: {option}={first} and {second} gave the same audio"


def test_loop_reports_every_sampling_step_including_the_seam(pipe):
    steps = []
    pipe.loop(label="low", steps=3, callback=lambda info: steps.append(info["step"]))
    assert steps == [0, 1, 2, 0, 1, 2]


def test_a_request_object_and_keyword_options_are_the_same_call(pipe):
    from audiodiff.pipeline import GenerationRequest

    request = GenerationRequest(conditions={"label": "low"}, steps=3, seed=4, sampler="ddpm")
    by_object = pipe.generate(request=request, duration=0.5)
    by_keywords = pipe.generate(label="low", steps=3, seed=4, sampler="ddpm", duration=0.5)
    assert torch.equal(by_object.audio, by_keywords.audio)
    overridden = pipe.generate(request=request, seed=5, duration=0.5)
    assert not torch.allclose(overridden.audio, by_object.audio)


def test_bad_sampler_and_guidance_are_refused_before_sampling(pipe):
    with pytest.raises(ValueError, match="unknown sampler 'foo'"):
        pipe.generate(sampler="foo")
    with pytest.raises(ValueError, match="guidance=nan"):
        pipe.generate(guidance=float("nan"))


# -- output level: the model's own, scaled down (never clipped) over full scale, normalised on request


@pytest.fixture
def wave_pipe(tmp_path):
    """An unconditional waveform model."""
    config = tiny_config(tmp_path, tmp_path / "wave", dims=1)
    return Pipeline(build_model(config), config)


def test_a_clip_over_full_scale_is_scaled_down_not_clipped(wave_pipe):
    x = tone(440, 0.25, amplitude=3.0)[None]  # [1, 1, samples]
    audio = wave_pipe.decode(x, [0]).audio
    assert math.isclose(audio.abs().max().item(), PEAK_GUARD, rel_tol=1e-5)
    assert torch.allclose(audio, x * (PEAK_GUARD / x.abs().max()))


def test_a_clip_within_full_scale_keeps_its_level(wave_pipe):
    x = tone(440, 0.25, amplitude=0.1)[None]
    assert torch.equal(wave_pipe.decode(x, [0]).audio, x)


def test_normalize_scales_each_clip_peak_and_is_off_by_default(pipe):
    plain = pipe.generate(label="low", n=2, steps=2, seed=1).audio
    normalized = pipe.generate(label="low", n=2, steps=2, seed=1, normalize=True).audio
    peaks = plain.abs().amax(dim=(-2, -1), keepdim=True)
    assert torch.allclose(normalized, plain * (NORMALIZE_PEAK / peaks), atol=1e-6)
    assert not torch.allclose(peaks, torch.full_like(peaks, NORMALIZE_PEAK), atol=1e-3)


# -- a conditioned model asked for nothing says so


def test_a_conditioned_model_sampled_without_conditions_warns_at_the_callers_line(pipe):
    with pytest.warns(
        UserWarning,
        match=r"no condition given, so this samples unconditionally; the model takes label \(e.g. 'low'\) or pitch",
    ) as caught:
        pipe.generate(steps=2)
    assert len(caught) == 1 and caught[0].filename == __file__


def test_no_notice_with_a_condition_a_negative_or_an_unconditional_model(pipe, wave_pipe):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipe.generate(label="low", steps=2)
        pipe.generate(negative_label="low", steps=2)
        wave_pipe.generate(steps=2)


# -- precision, memory format and compilation: speed options that keep the output


def test_bf16_sampling_stays_within_a_small_share_of_the_seed_to_seed_spread(pipe):
    fp32 = Pipeline(pipe.model, pipe.config, precision="fp32")
    bf16 = Pipeline(pipe.model, pipe.config, precision="bf16")
    reference = fp32.generate(label="low", n=2, steps=4, seed=0).mel
    spread = (reference[0] - reference[1]).abs().mean()
    assert (bf16.generate(label="low", n=2, steps=4, seed=0).mel - reference).abs().mean() < 0.1 * spread


def test_channels_last_gives_the_same_mels(pipe):
    contiguous = (
        Pipeline(pipe.model, pipe.config, precision="fp32", channels_last=False)
        .generate(label="high", steps=3, seed=1)
        .mel
    )
    channels_last = (
        Pipeline(pipe.model, pipe.config, precision="fp32", channels_last=True)
        .generate(label="high", steps=3, seed=1)
        .mel
    )
    assert torch.allclose(contiguous, channels_last, atol=1e-4)


def test_auto_precision_keeps_waveform_models_in_fp32(wave_pipe):
    assert wave_pipe._autocast_dtype() is None  # bf16's rounding floor (-48 dB) would be heard in raw samples


@pytest.mark.parametrize("precision, message", [("fp64", "auto, fp32, bf16 or fp16"), ("fp16", "needs a CUDA device")])
def test_a_bad_precision_is_refused_when_the_pipeline_is_made(pipe, precision, message):
    from audiodiff.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        Pipeline(pipe.model, pipe.config, precision=precision)


@pytest.mark.slow  # compiles the U-Net (about a minute of CPU)
def test_a_compiled_unet_gives_the_same_mels(pipe):
    eager = (
        Pipeline(pipe.model, pipe.config, precision="fp32", channels_last=False)
        .generate(label="low", steps=2, seed=3)
        .mel
    )
    compiled_pipe = Pipeline(pipe.model, pipe.config, precision="fp32", channels_last=False, compile=True)
    for _ in range(2):  # the second call reuses the compiled U-Net
        assert torch.allclose(eager, compiled_pipe.generate(label="low", steps=2, seed=3).mel, atol=1e-4)


def test_guide_strengthens_only_the_named_conditions_and_keeps_the_rest_in_both_branches(pipe):
    asked = dict(label="high", pitch=60, guidance=3.0, seed=1, steps=3, duration=0.5)
    label_only = pipe.generate(**asked, guide=["label"]).audio
    assert torch.equal(label_only, pipe.generate(**asked, negative_pitch=60).audio)  # the same branch, spelled out
    assert not torch.allclose(label_only, pipe.generate(**asked).audio)  # default: guide towards everything asked


def test_guide_names_asked_conditions_and_not_with_negatives(pipe):
    from audiodiff.pipeline import RequestError

    with pytest.raises(RequestError, match=r"guide=\['pitch'\].*\['label'\]"):
        pipe.generate(label="high", guide=["pitch"], steps=2)
    with pytest.raises(RequestError, match="negative_"):
        pipe.generate(label="high", pitch=60, guide=["label"], negative_label="low", steps=2)


def test_a_models_sampling_guide_is_the_default_where_the_call_asks_for_it(pipe):
    asked = dict(pitch=60, guidance=3.0, seed=1, steps=3, duration=0.5)
    plain_label, plain_pitch = pipe.generate(label="high", **asked).audio, pipe.generate(**asked).audio
    pipe.config.sampling.guide = ["label"]
    try:
        assert torch.equal(
            pipe.generate(label="high", **asked).audio, pipe.generate(label="high", guide=["label"], **asked).audio
        )
        assert not torch.allclose(pipe.generate(label="high", **asked).audio, plain_label)
        assert torch.equal(pipe.generate(**asked).audio, plain_pitch)  # no label asked: guidance as usual
        assert torch.equal(
            pipe.generate(label="high", guide=[], **asked).audio, plain_label
        )  # guide=[]: the default off
    finally:
        pipe.config.sampling.guide = []


def test_guidance_interval_is_a_request_option_and_a_model_default(pipe):
    from audiodiff.pipeline import RequestError

    asked = dict(label="high", pitch=60, guidance=3.0, seed=1, steps=3, duration=0.5)
    everywhere, conditional = pipe.generate(**asked).audio, pipe.generate(**{**asked, "guidance": 1.0}).audio
    assert torch.equal(pipe.generate(**asked, guidance_interval=(0.0, 0.0)).audio, conditional)  # no step at level 0
    high = pipe.generate(**asked, guidance_interval=(0.5, 1.0)).audio
    assert not torch.allclose(high, everywhere) and not torch.allclose(high, conditional)
    pipe.config.sampling.guidance_interval = (0.5, 1.0)
    try:
        assert torch.equal(pipe.generate(**asked).audio, high)
        assert torch.equal(pipe.generate(**asked, guidance_interval=(0, 1)).audio, everywhere)
    finally:
        pipe.config.sampling.guidance_interval = (0.0, 1.0)
    for bad in [(0.8, 0.2), (0.0, 1.5), (0.5,), "high"]:
        with pytest.raises(RequestError, match="guidance_interval=.*0 <= low <= high <= 1"):
            pipe.generate(**asked, guidance_interval=bad)


def test_rest_guidance_composes_the_guided_and_the_other_conditions(pipe):
    asked = dict(label="high", pitch=60, guidance=3.0, seed=1, steps=3, duration=0.5)
    plain = pipe.generate(**asked).audio
    # the rest at the same scale as the named ones: v_null + s(v_rest - v_null) + s(v - v_rest) is plain guidance
    assert torch.allclose(pipe.generate(**asked, guide=["label"], rest_guidance=3.0).audio, plain, atol=1e-4)
    unguided_rest = pipe.generate(**asked, guide=["label"]).audio
    composed = pipe.generate(**asked, guide=["label"], rest_guidance=2.0).audio
    assert not torch.allclose(composed, unguided_rest) and not torch.allclose(composed, plain)
