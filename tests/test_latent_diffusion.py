"""Latent diffusion (`data.representation: latent`): items are the autoencoder's latents, cached
under its weights' digest; the checkpoint carries its autoencoder; the pipeline decodes latent ->
mel -> vocoder so generation and every editing method work as on mels; bad joins are refused."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from audiodiff.checkpoint import CONFIG, CheckpointError, list_checkpoints
from audiodiff.config import AutoencoderRunConfig, ConfigError, DistillRunConfig, from_dict
from audiodiff.data.dataset import make_dataset, scan_items
from audiodiff.latent import Autoencoder
from audiodiff.pipeline import AUTOENCODER_FOLDER, Pipeline
from audiodiff.spaces import Latent
from audiodiff.train.autoencoder import AutoencoderTask
from audiodiff.train.diffusion import DiffusionTask
from audiodiff.train.distill import DistillTask
from audiodiff.train.trainer import Trainer
from tests.util import tiny_config

AE_MODEL = {
    "channels": 8,
    "channel_mults": [1, 2, 2],
    "latent_channels": 4,
    "time_down": 4,
    "freq_down": 4,
    "norm_groups": 4,
}
SECONDS = 0.5


def train_autoencoder(data, out, seed=0) -> Autoencoder:
    config = from_dict(
        AutoencoderRunConfig,
        {
            "data": {"path": str(data), "representation": "mel", "segment_seconds": SECONDS, "split": None},
            "model": AE_MODEL,
            "train": {
                "out_dir": str(out),
                "steps": 2,
                "batch_size": 4,
                "lr": 1e-3,
                "warmup_steps": 1,
                "ckpt_every": 2,
                "preview_every": 0,
                "log_every": 1,
                "precision": "fp32",
                "seed": seed,
            },
        },
    )
    Trainer(AutoencoderTask(config, verbose=False), config.train, progress=False).fit()
    return out


def latent_config(data_path, out, autoencoder, **sections):
    sections = {
        **sections,
        "data": {"representation": "latent", "autoencoder": str(autoencoder), **sections.get("data", {})},
        "model": {"in_channels": 4, **sections.get("model", {})},
    }
    return tiny_config(data_path, out, seconds=SECONDS, **sections)


@pytest.fixture(scope="module")
def autoencoder_run(synth_dir, tmp_path_factory):
    return train_autoencoder(synth_dir, tmp_path_factory.mktemp("ae") / "run")


@pytest.fixture(scope="module")
def latent_run(synth_dir, autoencoder_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("latent") / "run"
    config = latent_config(synth_dir, out, autoencoder_run, conditioning={"labels": "auto"})
    Trainer(DiffusionTask(config, verbose=False), config.train, progress=False).fit()
    return out


@pytest.fixture(scope="module")
def pipe(latent_run):
    return Pipeline.from_pretrained(latent_run)


def test_items_are_the_autoencoders_latents_of_their_mels(synth_dir, autoencoder_run, tmp_path):
    config = latent_config(synth_dir, tmp_path / "run", autoencoder_run, data={"random_crop": False})
    autoencoder = Autoencoder.from_pretrained(autoencoder_run)
    items, _ = scan_items(config.data, progress=False)
    dataset = make_dataset(items, config.data, config.mel, autoencoder=autoencoder)
    x = dataset[0]["x"]
    frames = config.mel.num_frames(config.data.segment_samples)
    assert x.shape == autoencoder.latent_shape(config.mel.n_mels, frames) == (4, 20, -(-frames // 4))
    mel_config = tiny_config(synth_dir, tmp_path / "mel", seconds=SECONDS, data={"random_crop": False})
    mel = make_dataset(items, mel_config.data, mel_config.mel)[0]["x"]
    assert torch.allclose(x, autoencoder.encode(mel[None])[0], atol=1e-5)


def test_the_latent_cache_is_keyed_by_the_autoencoders_weights(synth_dir, autoencoder_run, tmp_path):
    other = Autoencoder.from_pretrained(train_autoencoder(synth_dir, tmp_path / "other-ae", seed=1))
    config = latent_config(synth_dir, tmp_path / "run", autoencoder_run, data={"cache_dir": str(tmp_path / "cache")})
    items, _ = scan_items(config.data, progress=False)
    first = make_dataset(items, config.data, config.mel, autoencoder=Autoencoder.from_pretrained(autoencoder_run))
    second = make_dataset(items, config.data, config.mel, autoencoder=other)
    first[0], second[0]
    folders = sorted(p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith("latent-"))
    assert len(folders) == 2


def test_a_latent_checkpoint_carries_its_autoencoder_and_generates_audio(latent_run, autoencoder_run, pipe):
    checkpoint = list_checkpoints(latent_run)[-1]
    carried = Autoencoder.from_pretrained(checkpoint / AUTOENCODER_FOLDER)
    assert carried.digest() == Autoencoder.from_pretrained(autoencoder_run).digest() == pipe.autoencoder.digest()
    out = pipe.generate(label="chirp", n=2, steps=3, seed=0)
    frames = pipe.mel_spec.num_frames(int(SECONDS * 16000))
    assert out.audio.shape == (2, 1, pipe.mel_spec.num_samples(frames))
    assert out.mel.shape == (2, 80, frames)
    assert torch.isfinite(out.audio).all() and out.audio.abs().max() <= 1.0
    again = pipe.generate(label="chirp", n=1, steps=3, seed=1)
    assert torch.allclose(out.mel[1], again.mel[0], atol=1e-4)  # item i uses seed + i, as on mels


def test_editing_works_in_latent_space_and_keeps_what_it_should(pipe):
    audio = pipe.generate(label="high", steps=3, seed=3).audio[0]
    samples = audio.shape[-1]
    same = pipe.vary(audio, strength=0.0, sample_rate=16000)
    assert torch.equal(same.audio[0], audio)
    varied = pipe.vary(audio, strength=0.5, sample_rate=16000, steps=4, label="high")
    assert varied.audio.shape == (1, 1, samples)
    filled = pipe.inpaint(audio, sample_rate=16000, start=0.2, end=0.35, steps=3, label="high")
    assert filled.audio.shape == (1, 1, samples)
    kept = int(0.15 * 16000)
    assert torch.equal(filled.audio[0, :, :kept], audio[:, :kept])  # before the span (and its fade): the input
    longer = pipe.continue_(audio, seconds=0.3, sample_rate=16000, steps=3, label="high")
    assert longer.audio.shape[-1] == samples + pipe.mel_spec.num_samples(
        pipe.mel_spec.num_frames(int(0.3 * 16000))
    )  # all of the input kept
    assert torch.equal(longer.audio[0, :, : samples - 160], audio[:, : samples - 160])  # up to its 10 ms fade
    looped = pipe.loop(steps=3, label="high")
    whole = (
        pipe._shape(1, None)[-1] * pipe.autoencoder.config.time_down
    )  # a loop lasts whole latent frames (its seam is in latent space)
    assert looped.audio.shape == (1, 1, pipe.mel_spec.num_samples(whole)) and looped.mel.shape[-1] == whole
    assert pipe.interpolate(0, 1, count=3, steps=3, label="high").audio.shape == (3, 1, samples)
    bits = pipe.log_likelihood(audio, sample_rate=16000, steps=2, label="high")
    assert bits["space"] == "autoencoder latent" and bits["dims"] == 4 * 20 * 8


def test_a_latent_model_saved_and_loaded_back_generates_the_same(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / AUTOENCODER_FOLDER / CONFIG).is_file()
    again = Pipeline.from_pretrained(tmp_path / "saved")
    assert torch.allclose(
        again.generate(label="low", steps=2).audio, pipe.generate(label="low", steps=2).audio, atol=1e-5
    )


def test_a_checkpoint_may_not_name_an_autoencoder_elsewhere_on_disk(latent_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(list_checkpoints(latent_run)[-1], copy)
    shutil.rmtree(copy / AUTOENCODER_FOLDER)
    with pytest.raises(CheckpointError, match="data.autoencoder=.*neither a bundled one"):
        Pipeline.from_pretrained(copy)
    config = json.loads((copy / CONFIG).read_text())
    assert Pipeline.from_pretrained(copy, autoencoder=config["data"]["autoencoder"]).autoencoder is not None


def test_a_killed_latent_run_resumes_to_the_same_weights(synth_dir, autoencoder_run, tmp_path):
    straight = latent_config(synth_dir, tmp_path / "straight", autoencoder_run)
    Trainer(DiffusionTask(straight, verbose=False), straight.train, progress=False).fit()
    killed = latent_config(synth_dir, tmp_path / "killed", autoencoder_run)
    Trainer(DiffusionTask(killed, verbose=False), killed.train, progress=False).fit(stop_at=2)
    Trainer(DiffusionTask(killed, verbose=False), killed.train, resume=True, progress=False).fit()
    a = load_file(str(list_checkpoints(tmp_path / "straight")[-1] / "model.safetensors"))
    b = load_file(str(list_checkpoints(tmp_path / "killed")[-1] / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow  # a distillation run; the teacher's autoencoder hand-over is one line in DistillTask
def test_a_student_of_a_latent_teacher_keeps_its_autoencoder(latent_run, synth_dir, tmp_path):
    config = from_dict(
        DistillRunConfig,
        {
            "distill": {"teacher": str(latent_run), "method": "guidance"},
            "data": {"path": str(synth_dir)},
            "train": {
                "out_dir": str(tmp_path / "student"),
                "steps": 2,
                "batch_size": 3,
                "ckpt_every": 2,
                "preview_every": 0,
                "log_every": 1,
                "precision": "fp32",
                "warmup_steps": 1,
            },
        },
    )
    Trainer(DistillTask(config, verbose=False), config.train, progress=False).fit()
    student = Pipeline.from_pretrained(tmp_path / "student")
    assert (
        isinstance(student.space, Latent) and student.generate(label="chirp", guidance=2.0, steps=2).audio.shape[0] == 1
    )


def test_bad_latent_configs_are_refused_with_the_fix(synth_dir, autoencoder_run, tmp_path):
    with pytest.raises(ConfigError, match="needs data.autoencoder"):
        tiny_config(synth_dir, tmp_path, data={"representation": "latent"})
    with pytest.raises(ConfigError, match="only read with data.representation=latent"):
        tiny_config(synth_dir, tmp_path, data={"autoencoder": str(autoencoder_run)})
    with pytest.raises(ConfigError, match="latent models do not take them"):
        latent_config(synth_dir, tmp_path, autoencoder_run, conditioning={"curves": {"f0": {}}})
    with pytest.raises(ConfigError, match="set model.in_channels=4"):
        DiffusionTask(latent_config(synth_dir, tmp_path, autoencoder_run, model={"in_channels": 1}), verbose=False)
    with pytest.raises(ConfigError, match="different mel settings"):
        DiffusionTask(latent_config(synth_dir, tmp_path, autoencoder_run, mel={"n_mels": 64}), verbose=False)
    with pytest.raises(ConfigError, match="no such checkpoint"):
        DiffusionTask(latent_config(synth_dir, tmp_path, tmp_path / "missing"), verbose=False)
