"""The mel autoencoder (latent diffusion's first stage) as a model kind: its shapes and
compression, the latent scale, checkpoints (atomic, safetensors, strict config, resumable to the
same weights) and clear refusals of bad configs and hostile checkpoints."""

import json
import pickle
import shutil

import pytest
import torch

from audiodiff.checkpoint import CONFIG, WEIGHTS, CheckpointError
from audiodiff.config import AutoencoderRunConfig, ConfigError, from_dict
from audiodiff.data.synth import build_synthetic
from audiodiff.latent import Autoencoder
from audiodiff.models.autoencoder import AutoencoderModelConfig, MelAutoencoder, kl_divergence
from audiodiff.train.autoencoder import AutoencoderTask, reconstruction_losses
from audiodiff.train.trainer import Trainer

SMALL = {
    "channels": 8,
    "channel_mults": [1, 2, 2],
    "latent_channels": 4,
    "time_down": 4,
    "freq_down": 4,
    "norm_groups": 4,
}


def run_config(data, out, steps=4, ckpt_every=2, **model) -> AutoencoderRunConfig:
    return from_dict(
        AutoencoderRunConfig,
        {
            "data": {"path": str(data), "representation": "mel", "segment_seconds": 0.5, "split": None},
            "model": {**SMALL, **model},
            "train": {
                "out_dir": str(out),
                "steps": steps,
                "batch_size": 4,
                "lr": 1e-3,
                "warmup_steps": 1,
                "ckpt_every": ckpt_every,
                "preview_every": 0,
                "log_every": 1,
                "precision": "fp32",
            },
        },
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ae-data")
    build_synthetic(folder, per_class=2, seconds=0.5)
    return folder


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    config = run_config(data, tmp_path_factory.mktemp("ae") / "run")
    return Trainer(AutoencoderTask(config, verbose=False), config.train, progress=False).fit()


def test_latents_are_compressed_by_the_configured_factors_and_decode_to_the_mel_shape():
    for time_down, freq_down in ((4, 4), (2, 8), (8, 1)):
        model = MelAutoencoder(
            AutoencoderModelConfig(
                **{**SMALL, "channel_mults": [1, 2, 2], "time_down": time_down, "freq_down": freq_down}
            )
        )
        mel = torch.randn(2, 1, 80, 32)
        reconstruction, mean, logvar, latent = model(mel)
        assert mean.shape == logvar.shape == latent.shape == (2, 4, 80 // freq_down, 32 // time_down)
        assert reconstruction.shape == mel.shape


def test_any_frame_count_is_padded_then_cut_back(trained):
    autoencoder = Autoencoder.from_pretrained(trained)
    mel = torch.rand(1, 1, 80, 37) * 2 - 1
    latent = autoencoder.encode(mel)
    assert latent.shape == (1, *autoencoder.latent_shape(80, 37)) == (1, 4, 20, 10)
    assert autoencoder.decode(latent, frames=37).shape == mel.shape == autoencoder.round_trip(mel).shape


def test_kl_of_a_standard_normal_posterior_is_zero_and_grows_with_the_mean():
    zeros = torch.zeros(3, 4, 5, 6)
    assert kl_divergence(zeros, zeros) == 0
    assert torch.isclose(kl_divergence(torch.full_like(zeros, 2.0), zeros), torch.tensor(2.0))  # 0.5 * mean^2


def test_the_latent_scale_makes_latents_of_known_variance_unit_variance():
    model = MelAutoencoder(AutoencoderModelConfig(**SMALL))
    generator = torch.Generator().manual_seed(0)
    for step in range(400):
        model.track_latent_var(3.0 * torch.randn(8, 4, 20, 8, generator=generator), step)
    assert model.latent_scale() == pytest.approx(1 / 3, rel=0.03)


def test_multiscale_loss_sees_coarse_errors_that_cancel_at_full_resolution():
    mel = torch.zeros(1, 1, 8, 8)
    checker = torch.ones(1, 1, 8, 8)
    checker[..., ::2, ::2] = checker[..., 1::2, 1::2] = -1  # L1 of 1 everywhere, but it averages to zero
    shifted = torch.full((1, 1, 8, 8), 0.5)  # L1 of 0.5, all of it coarse
    assert reconstruction_losses(checker, mel, [2])["multiscale"] == 0
    assert reconstruction_losses(shifted, mel, [2])["multiscale"] == pytest.approx(0.5)


def test_training_lowers_the_loss_and_records_the_latent_scale(data, tmp_path):
    config = run_config(data, tmp_path / "run", steps=16, ckpt_every=16)
    checkpoint = Trainer(AutoencoderTask(config, verbose=False), config.train, progress=False).fit()
    losses = [json.loads(line)["l1_loss"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert sum(losses[-5:]) < 0.8 * sum(losses[:5])
    saved = json.loads((checkpoint / CONFIG).read_text())
    assert saved["kind"] == "autoencoder" and saved["model"]["latent_channels"] == 4 and saved["mel"]["n_mels"] == 80
    autoencoder = Autoencoder.from_pretrained(tmp_path / "run")
    assert autoencoder.latent_scale == pytest.approx(saved["latent_scale"]) and autoencoder.latent_scale != 1.0


def test_a_stopped_run_resumes_to_the_same_weights(data, tmp_path):
    whole = run_config(data, tmp_path / "whole")
    reference = Trainer(AutoencoderTask(whole, verbose=False), whole.train, progress=False).fit()
    parted = run_config(data, tmp_path / "parted")
    Trainer(AutoencoderTask(parted, verbose=False), parted.train, progress=False).fit(stop_at=2)
    resumed = Trainer(AutoencoderTask(parted, verbose=False), parted.train, resume=True, progress=False).fit()
    assert resumed.name == reference.name == "step_00000004"
    a, b = Autoencoder.from_pretrained(reference), Autoencoder.from_pretrained(resumed)
    for (name, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(x, y), name


def test_save_pretrained_round_trips(trained, tmp_path):
    autoencoder = Autoencoder.from_pretrained(trained)
    autoencoder.save_pretrained(tmp_path / "copy")
    again = Autoencoder.from_pretrained(tmp_path / "copy")
    mel = torch.rand(2, 1, 80, 16) * 2 - 1
    assert torch.equal(autoencoder.encode(mel), again.encode(mel)) and again.latent_scale == autoencoder.latent_scale


@pytest.mark.parametrize(
    "model, message",
    [
        ({"time_down": 3}, "must be a power of 2"),
        ({"time_down": 16, "channel_mults": [1, 2]}, "needs at least 4 levels"),
        ({"freq_down": 32, "channel_mults": [1, 1, 1, 1, 1]}, "mel.n_mels=80 must be a multiple of model.freq_down=32"),
        ({"norm_groups": 3}, "norm_groups=3 must divide"),
        ({"latent_chanels": 4}, r"unknown key\(s\) \['latent_chanels'\]"),
    ],
)
def test_bad_configs_name_the_key_and_the_fix(data, tmp_path, model, message):
    with pytest.raises(ConfigError, match=message):
        run_config(data, tmp_path, **model)


def test_an_autoencoder_must_train_on_mels(data, tmp_path):
    with pytest.raises(ConfigError, match="set data.representation=mel"):
        from_dict(AutoencoderRunConfig, {"data": {"path": str(data), "representation": "wave"}})


def _edit(folder, change):
    config = json.loads((folder / CONFIG).read_text())
    change(config)
    (folder / CONFIG).write_text(json.dumps(config))


HOSTILE = {
    "pickle weights": (lambda folder: (folder / WEIGHTS).write_bytes(pickle.dumps({"weight": 1})), "never unpickles"),
    "absurd size": (lambda folder: _edit(folder, lambda c: c["model"].update(channels=100_000)), "absurd"),
    "top-level typo": (
        lambda folder: _edit(folder, lambda c: c.update(latent_scal=1.0)),
        r"unknown top-level key\(s\) \['latent_scal'\]",
    ),
    "model typo": (
        lambda folder: _edit(folder, lambda c: c["model"].update(chanels=8)),
        r"unknown key\(s\) \['chanels'\]",
    ),
    "zero scale": (
        lambda folder: _edit(folder, lambda c: c.update(latent_scale=0)),
        "latent_scale=0.0 must be a positive number",
    ),
    "not an autoencoder": (lambda folder: _edit(folder, lambda c: c.update(kind="diffusion")), "kind='diffusion'"),
    "wrong shapes": (lambda folder: _edit(folder, lambda c: c["model"].update(latent_channels=8)), "wrong shape"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_autoencoder_checkpoint_is_refused_with_a_message(trained, tmp_path, case):
    change, message = HOSTILE[case]
    folder = tmp_path / "checkpoint"
    shutil.copytree(trained, folder)
    change(folder)
    with pytest.raises(CheckpointError, match=message):
        Autoencoder.from_pretrained(folder)
