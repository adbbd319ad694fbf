"""Vocoder generators, discriminators, losses and the GAN step."""

import json
import math

import pytest
import torch

from audiodiff.audio import MelSpec
from audiodiff.vocoder.discriminators import DISCRIMINATORS, Discriminators
from audiodiff.vocoder.generators import GENERATORS, build_generator, derive_upsample_rates
from audiodiff.vocoder.losses import LossWeights, anti_wrapping, mel_l1_loss, multi_resolution_stft_loss, phase_losses
from audiodiff.vocoder.training import gan_step

MEL_SPEC = MelSpec()
SMALL = {  # small versions of each generator, for tests that train
    "hifigan_v1": {"upsample_initial_channel": 16},
    "hifigan_v2": {"upsample_initial_channel": 16},
    "hifigan_v3": {"upsample_initial_channel": 16},
    "istft": {"dim": 32, "intermediate_dim": 64, "num_layers": 2},
    "source_filter": {"dim": 32, "intermediate_dim": 64, "num_layers": 2},
}
SMALL_DISCRIMINATORS = {"mpd": {"channels": (4, 8, 16, 16)}, "msd": {"width": 1 / 32}, "mrd": {"channels": 4}}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and do not fight other test workers for the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tone(num_samples: int, sample_rate: int = 16000) -> torch.Tensor:
    """A gliding two-partial tone `[1, 1, num_samples]`."""
    time = torch.arange(num_samples) / sample_rate
    phase = 2 * math.pi * torch.cumsum(220 * (1 + 0.5 * time), 0) / sample_rate
    return (0.3 * torch.sin(phase) + 0.1 * torch.sin(3 * phase))[None, None]


@pytest.mark.parametrize("name, expected", [("hifigan_v1", 13.92e6), ("hifigan_v2", 0.925e6), ("hifigan_v3", 1.46e6)])
def test_hifigan_parameter_counts_match_the_paper(name, expected):
    generator = build_generator(name, MEL_SPEC)
    assert generator.num_parameters() == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize("name", sorted(GENERATORS))
@pytest.mark.parametrize("frames", [1, 7, 64])
def test_output_is_frames_times_hop_samples(name, frames):
    generator = build_generator(name, MEL_SPEC, **SMALL[name])
    with torch.no_grad():
        audio = generator(torch.randn(2, MEL_SPEC.n_mels, frames))
    assert audio.shape == (2, 1, frames * MEL_SPEC.hop_length)


@pytest.mark.parametrize("hop_length", [200, 300])
def test_hifigan_adapts_upsampling_to_the_hop(hop_length):
    mel_spec = MelSpec(hop_length=hop_length, n_fft=1200, win_length=1200)
    generator = build_generator("hifigan_v2", mel_spec, upsample_initial_channel=16)
    assert math.prod(generator.config["upsample_rates"]) == hop_length
    with torch.no_grad():
        assert generator(torch.randn(1, 80, 5)).shape == (1, 1, 5 * hop_length)


def test_hifigan_rejects_a_hop_with_a_large_prime_factor():
    with pytest.raises(ValueError, match="hop_length=251"):
        derive_upsample_rates(251, 4)


def test_explicit_upsample_rates_must_multiply_to_the_hop():
    with pytest.raises(ValueError, match="multiply to 128"):
        build_generator("hifigan_v2", MEL_SPEC, upsample_rates=(8, 8, 2), upsample_kernel_sizes=(16, 16, 4))


def test_unknown_generator_name_lists_the_valid_names():
    with pytest.raises(ValueError, match="hifigan_v1.*istft"):
        build_generator("wavenet", MEL_SPEC)


def test_unknown_config_field_lists_the_valid_fields():
    with pytest.raises(ValueError, match="num_layers"):
        build_generator("istft", MEL_SPEC, layers=3)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_config_survives_json_and_rebuilds_the_same_model(name):
    generator = build_generator(name, MEL_SPEC, **SMALL[name])
    config = json.loads(json.dumps(generator.config))
    rebuilt = build_generator(name, MEL_SPEC, **config)
    rebuilt.load_state_dict(generator.state_dict())
    mel = torch.randn(1, MEL_SPEC.n_mels, 3)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(mel), generator(mel))


def test_removing_weight_norm_keeps_the_output():
    generator = build_generator("hifigan_v3", MEL_SPEC, upsample_initial_channel=16).eval()
    mel = torch.randn(1, MEL_SPEC.n_mels, 4)
    with torch.no_grad():
        before = generator(mel)
        generator.remove_weight_norm()
        after = generator(mel)
    assert not any("parametrizations" in key for key in generator.state_dict())
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


def test_discriminators_return_logits_and_features_for_every_sub_discriminator():
    discriminators = Discriminators(tuple(DISCRIMINATORS), SMALL_DISCRIMINATORS)
    logits, features = discriminators(torch.randn(2, 1, 4096))
    assert len(logits) == len(features) == 5 + 3 + 3  # periods, scales, resolutions
    assert all(item.shape[0] == 2 for item in logits)
    assert all(len(maps) >= 5 for maps in features)


def test_unknown_discriminator_lists_the_valid_names():
    with pytest.raises(ValueError, match="mpd"):
        Discriminators(("mpd", "wavenet"))


def test_gan_steps_change_both_models_and_give_finite_losses():
    torch.manual_seed(0)
    generator = build_generator("istft", MEL_SPEC, **SMALL["istft"])
    discriminators = Discriminators(tuple(DISCRIMINATORS), SMALL_DISCRIMINATORS)
    optim_g = torch.optim.AdamW(generator.parameters(), 2e-4, betas=(0.8, 0.99))
    optim_d = torch.optim.AdamW(discriminators.parameters(), 2e-4, betas=(0.8, 0.99))
    audio = torch.cat([tone(16 * 256), 0.5 * tone(16 * 256).flip(-1)])
    mel = MEL_SPEC(audio[:, 0])
    g_before = [p.detach().clone() for p in generator.parameters()]
    d_before = [p.detach().clone() for p in discriminators.parameters()]
    weights = LossWeights(stft=1.0)
    for _ in range(2):
        losses = gan_step(generator, discriminators, optim_g, optim_d, mel, audio, MEL_SPEC, weights)
    assert set(losses) == {
        "discriminator",
        "generator",
        "mel",
        "stft",
        "adversarial",
        "feature_matching",
        "skipped_updates",
    }
    assert all(math.isfinite(value) for value in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(g_before, generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, discriminators.parameters()))


def test_warm_up_step_leaves_the_discriminators_alone():
    generator = build_generator("istft", MEL_SPEC, **SMALL["istft"])
    discriminators = Discriminators(("mrd",), SMALL_DISCRIMINATORS)
    optim_g = torch.optim.AdamW(generator.parameters(), 2e-4)
    optim_d = torch.optim.AdamW(discriminators.parameters(), 2e-4)
    audio = tone(8 * 256)
    d_before = [p.detach().clone() for p in discriminators.parameters()]
    losses = gan_step(
        generator,
        discriminators,
        optim_g,
        optim_d,
        MEL_SPEC(audio[:, 0]),
        audio,
        MEL_SPEC,
        adversarial=False,
        autocast_dtype=torch.bfloat16,
    )
    assert set(losses) == {"generator", "mel", "skipped_updates"}
    assert all(torch.equal(a, b) for a, b in zip(d_before, discriminators.parameters()))


def test_gan_step_rejects_audio_that_does_not_match_the_mel():
    generator = build_generator("istft", MEL_SPEC, **SMALL["istft"])
    optim = torch.optim.SGD(generator.parameters(), 0.1)
    with pytest.raises(ValueError, match="frames \\* hop"):
        gan_step(generator, generator, optim, optim, torch.zeros(1, 80, 4), torch.zeros(1, 1, 1000), MEL_SPEC)


def test_losses_are_zero_for_identical_audio():
    audio = tone(4096)
    assert mel_l1_loss(audio, audio, MEL_SPEC).item() == 0.0
    assert multi_resolution_stft_loss(audio, audio).item() == pytest.approx(0.0, abs=1e-6)


def test_anti_wrapping_counts_whole_turns_as_nothing():
    values = torch.tensor([0.3 + 2 * math.pi, -0.3 - 4 * math.pi, math.pi - 0.1, math.pi + 0.1])
    assert torch.allclose(anti_wrapping(values), torch.tensor([0.3, 0.3, math.pi - 0.1, math.pi - 0.1]), atol=1e-5)


def rotated(audio: torch.Tensor, angle: float) -> torch.Tensor:
    """Every frequency of `audio` turned by `angle` (DC and Nyquist kept): the same magnitudes."""
    spectrum = torch.fft.rfft(audio)
    turned = spectrum * torch.exp(torch.tensor(1j * angle))
    turned[..., 0], turned[..., -1] = spectrum[..., 0], spectrum[..., -1]
    return torch.fft.irfft(turned, n=audio.shape[-1])


def test_phase_losses_measure_phase_and_its_derivatives():
    """APNet's losses on known cases: a constant turn of every frequency is all instantaneous phase
    (its value) and no group delay or angular frequency; a one-sample delay is a phase ramp (mean
    pi/2 over bins) with near-constant derivatives; unrelated noise differs in all three."""
    torch.manual_seed(0)
    audio = torch.randn(1, 1, 16384)
    assert all(value.item() == 0.0 for value in phase_losses(audio, audio, 1024, 256).values())
    for angle in (0.5, 2.0):
        losses = phase_losses(rotated(audio, angle), audio, 1024, 256)
        assert losses["ip"].item() == pytest.approx(angle, abs=0.01)
        assert losses["gd"].item() < 0.05 and losses["iaf"].item() < 0.05
    delayed = phase_losses(torch.roll(audio, 1, -1), audio, 1024, 256)
    assert delayed["ip"].item() == pytest.approx(math.pi / 2, rel=0.05) and delayed["iaf"].item() < 0.05
    unrelated = phase_losses(torch.randn(1, 1, 16384), audio, 1024, 256)
    assert min(unrelated["gd"].item(), unrelated["iaf"].item()) > 1.0


def test_phase_weight_adds_the_phase_losses_to_a_warm_up_step():
    generator = build_generator("istft", MEL_SPEC, **SMALL["istft"])
    optim = torch.optim.AdamW(generator.parameters(), 2e-4)
    audio = tone(8 * 256)
    losses = gan_step(
        generator, generator, optim, optim, MEL_SPEC(audio[:, 0]), audio, MEL_SPEC, LossWeights(phase=1.0),
        adversarial=False,
    )  # fmt: skip
    assert 0.0 < losses["phase"] < 3 * math.pi and math.isfinite(losses["generator"])


def test_istft_generator_overfits_one_clip():
    torch.manual_seed(0)
    audio = tone(32 * 256)
    mel = MEL_SPEC(audio[:, 0])
    generator = build_generator("istft", MEL_SPEC, dim=64, intermediate_dim=128, num_layers=2)
    optimizer = torch.optim.Adam(generator.parameters(), 2e-3)
    with torch.no_grad():
        initial = mel_l1_loss(generator(mel), audio, MEL_SPEC).item()
    for _ in range(120):
        optimizer.zero_grad()
        loss = mel_l1_loss(generator(mel), audio, MEL_SPEC)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        final = mel_l1_loss(generator(mel), audio, MEL_SPEC).item()
    assert final < 0.6 * initial


def test_non_finite_loss_skips_the_update():
    torch.manual_seed(0)
    generator = build_generator("istft", MEL_SPEC, dim=16, intermediate_dim=32, num_layers=1)
    discriminators = Discriminators(("mrd",), {"mrd": {"channels": 4, "resolutions": ((256, 64, 256),)}})
    optim_g = torch.optim.AdamW(generator.parameters(), 1e-3)
    optim_d = torch.optim.AdamW(discriminators.parameters(), 1e-3)
    before = [p.detach().clone() for p in generator.parameters()]
    audio = torch.full((2, 1, 16 * MEL_SPEC.hop_length), float("nan"))
    mel = torch.zeros(2, MEL_SPEC.n_mels, 16)
    losses = gan_step(generator, discriminators, optim_g, optim_d, mel, audio, MEL_SPEC)
    assert losses["skipped_updates"] == 2
    assert all(torch.equal(a, b) for a, b in zip(before, generator.parameters()))


def _one_bin_generator(phase: str, bin_index: int):
    """An istft generator whose head ignores its input: one bin loud, zero phase output."""
    mel_spec = MelSpec(sample_rate=16000, n_fft=1024, hop_length=256, win_length=1024, n_mels=80)
    generator = build_generator("istft", mel_spec, dim=32, intermediate_dim=64, num_layers=1, phase=phase)
    with torch.no_grad():
        generator.head.out.weight.zero_()
        generator.head.out.bias.zero_()
        generator.head.out.bias[: 1024 // 2 + 1] = -20.0
        generator.head.out.bias[bin_index] = 3.0
    return generator.eval()


def _loudest_hz(audio: torch.Tensor, rate: int = 16000) -> float:
    middle = audio.reshape(-1)[audio.numel() // 4 : 3 * audio.numel() // 4]
    spectrum = torch.fft.rfft(middle * torch.hann_window(middle.numel()), n=4 * rate).abs()
    return float(spectrum.argmax()) / 4


def test_a_phase_advance_head_keeps_a_steady_partial_at_its_bins_frequency():
    """Bin 41 is 640.6 Hz; a head whose absolute phase stays the same from frame to frame puts it at
    a multiple of the frame rate (62.5 Hz), as the vocoder-44k did; the advance head does not."""
    mel = torch.zeros(1, 80, 200)
    with torch.no_grad():
        absolute = _one_bin_generator("absolute", 41)(mel)
        advance = _one_bin_generator("advance", 41)(mel)
    assert _loudest_hz(advance) == pytest.approx(640.6, abs=0.5)
    assert _loudest_hz(absolute) % 62.5 == pytest.approx(0, abs=0.5)


def test_a_phase_advance_vocoder_joins_its_chunks_seamlessly():
    from audiodiff.vocoder.gan import GANVocoder

    torch.manual_seed(0)
    mel_spec = MelSpec(sample_rate=16000, n_fft=1024, hop_length=256, win_length=1024, n_mels=80)
    generator = build_generator("istft", mel_spec, dim=32, intermediate_dim=64, num_layers=2, phase="advance")
    voc = GANVocoder(generator)
    mel = torch.randn(1, 80, 300) * 0.3
    with torch.inference_mode():
        voc.chunk_frames = 1000
        whole = voc.generate(mel)
        voc.chunk_frames = 64
        chunked = voc.generate(mel)
    assert chunked.shape == whole.shape
    assert (chunked - whole).abs().max() < 1e-3 * whole.abs().max()


def test_phase_advance_is_for_the_istft_generator_only():
    mel_spec = MelSpec(sample_rate=16000, n_fft=1024, hop_length=256, win_length=1024, n_mels=80)
    with pytest.raises(ValueError, match="phase='sideways'"):
        build_generator("istft", mel_spec, phase="sideways")
    with pytest.raises(ValueError, match="for the istft generator"):
        build_generator("source_filter", mel_spec, phase="advance")
