"""Spaces own the representation: shapes, encode/decode and masks, mono and stereo, and nothing
outside them tests which representation a model has."""

import math
import re
import subprocess
from pathlib import Path

import pytest
import torch

from audiodiff.audio import MelSpec
from audiodiff.latent import Autoencoder
from audiodiff.models.autoencoder import AutoencoderModelConfig, MelAutoencoder
from audiodiff.pipeline import Pipeline, build_model
from audiodiff.spaces import Latent, Mel, Wave, space_for
from tests.util import tiny_config

ROOT = Path(__file__).resolve().parents[1]
SMALL_AUTOENCODER = {"channels": 8, "channel_mults": [1, 2, 2], "latent_channels": 4}


def small_autoencoder() -> Autoencoder:
    torch.manual_seed(0)
    return Autoencoder(MelAutoencoder(AutoencoderModelConfig(**SMALL_AUTOENCODER)), MelSpec())


def stereo_pipe(tmp_path, representation: str) -> Pipeline:
    dims = 1 if representation == "wave" else 2
    in_channels = {"wave": 2, "mel": 2, "latent": 2 * SMALL_AUTOENCODER["latent_channels"]}[representation]
    data = {"channels": 2, "representation": representation}
    if representation == "latent":
        data["autoencoder"] = "unused-in-this-test"
    config = tiny_config(tmp_path, tmp_path / "run", dims=dims, data=data, model={"in_channels": in_channels})
    torch.manual_seed(0)
    model = build_model(config)
    autoencoder = small_autoencoder() if representation == "latent" else None
    return Pipeline(model, config, autoencoder=autoencoder)


@pytest.mark.parametrize("representation", ["wave", "mel", "latent"])
def test_stereo_models_generate_two_channels_in_every_space(tmp_path, representation):
    pipe = stereo_pipe(tmp_path, representation)
    out = pipe.generate(n=2, steps=2, seed=1)
    assert out.audio.shape[:2] == (2, 2) and torch.isfinite(out.audio).all()
    assert not torch.equal(out.audio[:, 0], out.audio[:, 1])  # two channels, not one copied


@pytest.mark.parametrize("representation", ["wave", "mel", "latent"])
def test_stereo_edits_keep_both_channels(tmp_path, representation):
    pipe = stereo_pipe(tmp_path, representation)
    audio = torch.randn(2, 8000) * 0.1
    out = pipe.inpaint(audio, sample_rate=16000, start=0.1, end=0.2, steps=2)
    assert out.audio.shape[:2] == (1, 2)
    kept = int(0.05 * 16000)
    assert torch.equal(out.audio[0, :, :kept], audio[:, :kept])  # the kept audio, both channels, unchanged


def test_spaces_map_lengths_and_masks_onto_their_axis():
    spec = MelSpec()
    wave, mel, latent = Wave(16000, 1), Mel(spec), Latent(spec, small_autoencoder())
    samples = 16000
    assert wave.shape(3, samples) == (3, 1, 16000)
    assert mel.shape(3, samples) == (3, 1, 80, 16000 // 256)
    assert latent.shape(3, samples) == (3, 4, 20, -(-(16000 // 256) // 4))
    mask = torch.zeros(samples)
    mask[1000:2000] = 1
    frames = mel.mask(mask, mel.length(samples))
    assert frames.shape == (62,) and frames[1000 // 256] == 1 and frames[0] == 0  # widened by one frame
    assert torch.equal(wave.mask(mask, samples), mask)
    assert latent.samples_per_position == 256 * 4


def test_wave_gain_scales_into_the_model_and_back(tmp_path):
    from audiodiff.config import ConfigError, DataConfig

    space = space_for(DataConfig(representation="wave", gain=15.0))
    audio = torch.randn(1, 1, 800) * 0.03
    x = space.encode(audio)
    assert torch.allclose(x, audio * 15.0) and torch.allclose(space.decode(x)[0], audio, atol=1e-6)
    assert space.settings()["gain"] == 15.0 and "gain" not in Wave(16000).settings()  # old caches keep their keys
    from audiodiff.data.features import ItemLoader

    keys = [ItemLoader(DataConfig(representation="wave", gain=gain), None).settings() for gain in (1.0, 15.0)]
    assert keys[0] != keys[1] and "gain" not in keys[0]  # a cache made at another gain is not reused
    with pytest.raises(ConfigError, match="data.gain"):
        DataConfig(representation="mel", gain=2.0)
    with pytest.raises(ConfigError, match="data.gain"):
        DataConfig(representation="wave", gain=0.0)


def test_wave_mu_law_round_trips_and_shrinks_noise_left_in_silence():
    from audiodiff.config import ConfigError, DataConfig

    space = space_for(DataConfig(representation="wave", gain=2.0, mu_law=255.0))
    audio = torch.cat([torch.linspace(-1, 1, 401), torch.zeros(400)]).reshape(1, 1, -1)
    x = space.encode(audio)
    assert torch.allclose(space.decode(x)[0], audio, atol=1e-5)  # invertible over full scale
    assert float(x[0, 0, 0]) == pytest.approx(-2.0) and float(x[0, 0, 300]) > 2 * 0.5  # quiet samples raised
    # noise of std s left in the model's space over silence comes back shrunk by ln(1 + mu) / mu
    noise = torch.randn(1, 1, 100_000) * 0.001
    shrink = float(space.decode(noise)[0].std() / (noise.std() / 2.0))
    assert shrink == pytest.approx(math.log1p(255) / 255, rel=0.02)
    assert space.decode(torch.full((1, 1, 4), 1e3))[0].max() < 4.1  # a stray value stays bounded
    assert space.settings()["mu_law"] == 255.0 and "mu_law" not in Wave(16000).settings()
    assert "mu-law" in space.description
    with pytest.raises(ConfigError, match="data.mu_law"):
        DataConfig(representation="mel", mu_law=255.0)


def test_denoise_by_level_scores_a_silent_network_at_cos_squared(tmp_path):
    """benchmarks/denoise_by_level.py on a U-Net that predicts nothing (its head starts at zero):
    in silence v = cos(θ) ε, so the loss there is cos²θ at every level; loud samples add σ² x²."""
    from benchmarks.denoise_by_level import measure

    config = tiny_config(tmp_path, tmp_path / "run", dims=1, data={"mu_law": 255.0, "gain": 4.0})
    pipe = Pipeline(build_model(config), config)
    torch.manual_seed(0)
    audio = torch.zeros(4, 1, 4000)
    audio[:, :, :1000] = torch.randn(4, 1, 1000) * 0.5  # a loud hit, then 3000 silent samples
    rows = measure(pipe, audio, quiet_db=-50.0)
    for row in rows:
        assert row["v_loss_quiet"] == pytest.approx(math.cos(row["t"] * math.pi / 2) ** 2, rel=0.05)
        if row["t"] >= 0.2:  # where sigma^2 x^2 outweighs the noise's own spread
            assert row["v_loss_loud"] > 1.5 * row["v_loss_quiet"]


def test_mel_space_round_trips_through_its_vocoder_per_channel():
    from audiodiff.vocoder import GriffinLimVocoder

    spec = MelSpec()
    space = Mel(spec, channels=2, vocoder=GriffinLimVocoder(spec, 8))
    audio = torch.stack([torch.sin(torch.arange(8192) * 0.05), torch.sin(torch.arange(8192) * 0.2)])[None] * 0.5
    x = space.encode(audio)
    assert x.shape == (1, 2, 80, 32)
    decoded, mel = space.decode(x)
    assert decoded.shape == (1, 2, 8192) and mel.shape == (1, 80, 32)


def test_no_representation_flags_outside_the_spaces():
    """The representation is asked of a space: no `is_mel` / `is_latent` and no comparison with a
    representation name outside spaces.py and the config's validation."""
    pattern = re.compile(r"is_mel|is_latent|representation\s*[!=]=\s*|representation in \(")
    allowed = {"audiodiff/spaces.py", "audiodiff/config.py"}
    files = subprocess.run(
        ["git", "ls-files", "audiodiff", "demo", "benchmarks", "scripts"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    offenders = [
        f"{name}:{number}"
        for name in files
        if name.endswith(".py") and name not in allowed
        for number, line in enumerate((ROOT / name).read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, f"ask the space instead: {offenders}"
