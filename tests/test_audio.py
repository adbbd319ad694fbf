import math

import pytest
import torch

from audiodiff.audio import (
    AudioError,
    MelSpec,
    crop_or_pad,
    griffin_lim,
    istft,
    load_audio,
    normalize_loudness,
    normalize_peak,
    resample,
    save_audio,
    stft,
    to_channels,
)
from tests.util import tone


def test_stft_istft_round_trip_is_exact():
    audio = torch.randn(2, 4096) * 0.1
    spec = stft(audio, 1024, 256)
    assert spec.shape == (2, 513, 16)
    assert torch.allclose(istft(spec, 1024, 256), audio, atol=1e-5)


def test_mel_frames_equal_samples_over_hop():
    mel_spec = MelSpec()
    for samples in (4096, 16000, 16384):
        assert mel_spec(torch.randn(samples)).shape == (80, samples // 256)


def test_mel_normalisation_is_exactly_invertible():
    mel_spec = MelSpec()
    log_mel = torch.linspace(-11.5, 2.5, 50)
    assert torch.allclose(mel_spec.denormalize(mel_spec.normalize(log_mel)), log_mel, atol=1e-5)


def test_mel_range_is_roughly_unit():
    mel = MelSpec()(tone(440, 1.0, amplitude=1.0))
    assert mel.min() >= -1.0 - 1e-6 and mel.max() <= 1.0


def test_melspec_round_trips_through_dict_and_reports_differences():
    spec = MelSpec(n_mels=64)
    assert MelSpec.from_dict(spec.to_dict()) == spec
    assert MelSpec().diff(spec) == ["n_mels: 80 != 64"]
    with pytest.raises(ValueError, match="unknown fields"):
        MelSpec.from_dict({"n_melz": 3})


def test_melspec_rejects_impossible_settings():
    with pytest.raises(ValueError, match="f_max"):
        MelSpec(f_max=12000)


def test_griffin_lim_recovers_a_tone():
    mel_spec = MelSpec()
    audio = tone(440, 0.5)
    rebuilt = griffin_lim(mel_spec(audio), mel_spec, num_iters=32)
    assert rebuilt.shape == (1, 1, 8000 // 256 * 256)
    spectrum = torch.fft.rfft(rebuilt[0, 0]).abs()
    peak_hz = spectrum.argmax().item() * 16000 / rebuilt.shape[-1]
    assert abs(peak_hz - 440) < 10
    original = mel_spec(audio)
    assert (mel_spec(rebuilt[0]) - original).abs().mean() < 0.1


def test_save_and_load_round_trip(tmp_path):
    audio = tone(300, 0.25)
    path = save_audio(tmp_path / "a.wav", audio, 16000)
    loaded, rate = load_audio(path)
    assert rate == 16000 and loaded.shape == audio.shape
    assert (loaded - audio).abs().max() < 1e-3


def test_load_resamples_and_downmixes(tmp_path):
    stereo = torch.cat([tone(300, 0.5, 22050), tone(300, 0.5, 22050)])
    path = save_audio(tmp_path / "s.flac", stereo, 22050)
    loaded, rate = load_audio(path, sample_rate=16000, channels=1)
    assert rate == 16000 and loaded.shape == (1, 8000)


def test_load_missing_and_non_audio_files_name_the_file(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "nope.wav")
    bad = tmp_path / "bad.wav"
    bad.write_text("this is not audio")
    with pytest.raises(AudioError, match="bad.wav"):
        load_audio(bad)


def test_channel_conversion():
    mono = torch.ones(1, 10)
    assert to_channels(mono, 2).shape == (2, 10)
    assert torch.allclose(to_channels(torch.stack([torch.ones(10), -torch.ones(10)]), 1), torch.zeros(1, 10))


def test_peak_and_loudness_normalisation():
    audio = tone(200, 0.25, amplitude=0.1)
    assert math.isclose(normalize_peak(audio, 0.9).abs().max().item(), 0.9, rel_tol=1e-4)
    rms = normalize_loudness(audio, -20).pow(2).mean().sqrt().item()
    assert math.isclose(20 * math.log10(rms), -20, abs_tol=0.1)
    silence = torch.zeros(1, 100)
    assert torch.equal(normalize_peak(silence), silence)


def test_crop_or_pad_lengths():
    audio = torch.randn(1, 100)
    assert crop_or_pad(audio, 50).shape == (1, 50)
    padded = crop_or_pad(audio, 150)
    assert padded.shape == (1, 150) and padded[:, 100:].abs().sum() == 0


def test_resample_changes_length():
    assert resample(torch.randn(1, 16000), 16000, 8000).shape == (1, 8000)


def test_mel_made_first_in_inference_mode_still_works_with_autograd():
    mel_spec = MelSpec(n_mels=72)  # a spec no other test has cached yet
    with torch.inference_mode():
        mel_spec(torch.randn(4096))
    audio = torch.randn(4096, requires_grad=True)
    mel_spec(audio).sum().backward()
    assert audio.grad is not None
