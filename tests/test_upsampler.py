"""The GAN upsampler: the band the input has passes through, the distance it is measured by,
checkpoints as strict as every other kind, and a pipeline that writes at its rate."""

from __future__ import annotations

import json

import pytest
import torch

from audiodiff.audio import stft
from audiodiff.checkpoint import CheckpointError
from audiodiff.cli import main
from audiodiff.config import UpsamplerModelConfig
from audiodiff.pipeline import Pipeline, build_model
from audiodiff.upsampler import BandwidthExtender, Upsampler, UpsamplerError, band_limit, log_spectral_distance
from tests.util import tiny_config, tone, write_clip

SMALL = UpsamplerModelConfig(dim=16, intermediate_dim=32, num_layers=1)


def small_upsampler(seed: int = 0) -> Upsampler:
    torch.manual_seed(seed)
    model = BandwidthExtender(SMALL)
    torch.nn.init.normal_(model.head.weight, std=0.5)  # a prediction far from silence, so the test can fail
    return Upsampler(model)


def test_the_input_band_passes_through_and_the_upper_band_is_the_models():
    torch.manual_seed(0)
    audio = band_limit(torch.randn(1, 1, 256 * 80) * 0.1, 44100, 16000)
    out = small_upsampler().model(audio)
    start, top = SMALL.crossover_bins
    change = stft((out - audio)[:, 0], SMALL.n_fft, SMALL.hop_length).abs()
    original = stft(audio[:, 0], SMALL.n_fft, SMALL.hop_length).abs()
    assert change[:, : start - 8].pow(2).sum() < 1e-3 * original[:, : start - 8].pow(2).sum()  # kept below the ramp
    assert change[:, top + 8 :].pow(2).sum() > 10 * original[:, top + 8 :].pow(2).sum()  # made above it


def test_log_spectral_distance_on_known_answers():
    torch.manual_seed(0)
    reference = torch.randn(2, 44100) * 0.1
    assert log_spectral_distance(reference, reference, 44100) == pytest.approx(0.0, abs=1e-6)
    # ten times the amplitude is 100 times the power: log10 differs by 2 in every bin
    assert log_spectral_distance(10 * reference, reference, 44100) == pytest.approx(2.0, abs=1e-3)
    # a band-limited copy differs only above the cut: the band below scores near zero
    narrow = band_limit(reference, 44100, 16000)
    assert log_spectral_distance(narrow, reference, 44100, 0, 6000) < 0.05
    assert log_spectral_distance(narrow, reference, 44100, 9000) > 2.0


def test_upsampler_call_extends_any_layout_and_refuses_other_rates():
    upsampler = small_upsampler()
    assert upsampler(torch.zeros(16000), 16000).shape == (44100,)
    assert upsampler(torch.zeros(2, 8000), 16000).shape == (2, 22050)
    upsampler.chunk_frames = 8  # chunks with context join where the whole would be
    long = band_limit(torch.randn(1, 1, 16000) * 0.1, 16000, 16000)
    chunked = upsampler(long, 16000)
    upsampler.chunk_frames = 4096
    assert torch.allclose(chunked, upsampler(long, 16000), atol=1e-4)
    with pytest.raises(UpsamplerError, match="extends 16000 Hz audio, got 22050 Hz"):
        upsampler(torch.zeros(1, 1000), 22050)


def test_checkpoints_round_trip_and_corrupt_ones_are_refused(tmp_path):
    upsampler = small_upsampler()
    folder = upsampler.save_pretrained(tmp_path / "up", dtype=torch.float16)
    again = Upsampler.from_pretrained(folder)
    audio = torch.randn(1, 1, 4000) * 0.1
    assert torch.allclose(again(audio, 16000), upsampler(audio, 16000), atol=2e-2)
    config = json.loads((folder / "config.json").read_text())
    for broken, message in (
        ({**config, "kind": "gan"}, "not an upsampler"),
        ({**config, "samplng": 1}, "unknown top-level key"),
        ({**config, "model": {**config["model"], "dim": 10**6, "intermediate_dim": 10**6}}, "absurd"),
        ({**config, "model": {**config["model"], "input_rate": 50000}}, "input_rate"),
    ):
        (folder / "config.json").write_text(json.dumps(broken))
        with pytest.raises(CheckpointError, match=message):
            Upsampler.from_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({**config, "model": {**config["model"], "dim": 32}}))
    with pytest.raises(CheckpointError):  # weights of another shape are refused, not half loaded
        Upsampler.from_pretrained(folder)


def test_pipeline_and_cli_write_at_the_upsamplers_rate(tmp_path):
    data = tmp_path / "data"
    for index, freq in enumerate((220, 330, 440, 550)):
        write_clip(data, f"t{index}.wav", tone(freq, 0.3))
    config = tiny_config(data, tmp_path / "run", dims=1)
    pipe = Pipeline(build_model(config), config, upsampler=small_upsampler())
    out = pipe.generate(n=2, steps=2, seed=0)
    assert out.sample_rate == pipe.output_rate == 44100 and pipe.sample_rate == 16000
    assert out.audio.shape == (2, 1, round(0.25 * 44100)) and out.audio.abs().max() <= 1.0
    model_dir = pipe.save_pretrained(tmp_path / "model")
    small_upsampler().save_pretrained(tmp_path / "up")
    wav = tmp_path / "clip.wav"
    code = main(["generate", "--checkpoint", str(model_dir), "--upsampler", str(tmp_path / "up"), "--steps", "2",
                 "--out", str(wav)])  # fmt: skip
    import soundfile

    assert code == 0 and soundfile.info(str(wav)).samplerate == 44100
    wrong = Upsampler(
        BandwidthExtender(UpsamplerModelConfig(input_rate=22050, dim=16, intermediate_dim=32, num_layers=1))
    )
    with pytest.raises(UpsamplerError, match="extends 22050 Hz audio and this model makes 16000 Hz"):
        pipe.set_upsampler(wrong)
