"""The trainer: overfitting one clip and sampling it back, exact resume, NaN handling, logs."""

import json
import multiprocessing
import os
import signal
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from audiodiff.audio import MelSpec, load_audio
from audiodiff.checkpoint import list_checkpoints
from audiodiff.pipeline import Pipeline
from audiodiff.train import threads as threads_module
from audiodiff.train import trainer as trainer_module
from audiodiff.train.diffusion import DiffusionTask
from audiodiff.train.errors import TrainingError
from audiodiff.train.trainer import Trainer, choose_threads
from tests.util import tiny_config, tone, write_clip


def train(config, **fit):
    trainer = Trainer(
        DiffusionTask(config, verbose=False), config.train, resume=fit.pop("resume", False), progress=False
    )
    return trainer, trainer.fit(**fit)


def log_mel(magnitude: torch.Tensor, floor: float) -> torch.Tensor:
    return torch.log(magnitude.clamp_min(floor))


# Waveform diffusion needs more steps than mel diffusion to push its hiss under -40 dB.
OVERFIT = {
    2: dict(model={}, train={"steps": 300}),
    1: dict(
        model={"channels": 32, "channel_mults": [1, 2, 2], "attention_levels": [2], "head_channels": 32},
        train={"steps": 700},
    ),
}


SLOW = pytest.mark.slow  # the default run keeps the mel case; `pytest -m slow` runs these two (about 2 minutes)


@pytest.mark.parametrize(
    "dims, objective",
    [(2, "v"), pytest.param(1, "v", marks=SLOW), pytest.param(2, "flow", marks=SLOW)],
    ids=["mel", "wave", "mel-flow"],
)
def test_overfit_one_clip_and_sample_it_back(tmp_path, dims, objective):
    """The check users of other toolkits most wish they had: a falling loss must mean samples.

    Distance: mean |log-mel difference| with a floor 40 dB under the clip's loudest band, so
    inaudible hiss does not dominate; noise scores about 1.8 here, the clip itself 0.
    """
    clip = tone(330, 0.25) + tone(660, 0.25, amplitude=0.2)
    write_clip(tmp_path / "data", "clip.wav", clip)
    settings = OVERFIT[dims]
    config = tiny_config(
        tmp_path / "data",
        tmp_path / "run",
        dims=dims,
        data={"normalize": "none"},
        model=settings["model"],
        diffusion={"objective": objective},
        train={
            "batch_size": 4,
            "lr": 3e-3,
            "warmup_steps": 20,
            "ckpt_every": 1000,
            "ema_decay": 0.99,
            **settings["train"],
        },
    )
    train(config)
    pipe = Pipeline.from_pretrained(tmp_path / "run")
    out = pipe.generate(n=2, steps=30, sampler="ddim", seed=0)
    mel_spec = MelSpec()
    reference = mel_spec.magnitude(load_audio(tmp_path / "data" / "clip.wav")[0][0])
    floor = reference.max().item() * 1e-2
    # mel models are judged on the mel they generate (before the vocoder), waveform models on audio
    if out.mel is not None:
        generated = [torch.exp(mel_spec.denormalize(mel)) for mel in out.mel]
    else:
        generated = [mel_spec.magnitude(audio[0]) for audio in out.audio]
    noise = mel_spec.magnitude(torch.randn(clip.shape[-1]) * 0.3)
    noise_distance = (log_mel(noise, floor) - log_mel(reference, floor)).abs().mean()
    for magnitude in generated:
        distance = (log_mel(magnitude, floor) - log_mel(reference, floor)).abs().mean()
        assert distance < 0.2 * noise_distance


def test_resumed_run_ends_with_the_same_weights(tmp_path, synth_dir):
    sections = dict(
        train={"steps": 6, "ckpt_every": 3, "batch_size": 3}, conditioning={"labels": "auto"}, model={"dropout": 0.1}
    )
    full = tiny_config(synth_dir, tmp_path / "full", **sections)
    _, full_path = train(full)
    split = tiny_config(synth_dir, tmp_path / "split", **sections)
    train(split, stop_at=3)
    assert [p.name for p in list_checkpoints(tmp_path / "split")] == ["step_00000003"]
    _, resumed_path = train(split, resume=True)
    for name in ("model.safetensors", "training_state.safetensors"):
        a, b = load_file(full_path / name), load_file(resumed_path / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key


class _Cyclic(torch.nn.Module):
    """A wrapper in a reference cycle, as DistributedDataParallel is: only the collector frees it."""

    def __init__(self, module):
        super().__init__()
        self.module = module
        self.__dict__["me"] = self


def test_close_releases_the_wrapped_modules_before_the_process_group(tmp_path, synth_dir):
    # Under torchrun the wrappers hold the process group; freed at interpreter exit they could
    # abort a rank after a finished run (a CI failure), so close() frees them while it can.
    import weakref

    trainer, _ = train(tiny_config(synth_dir, tmp_path / "run", train={"steps": 1}))
    task = trainer.task
    task.wrap(_Cyclic)
    trainer.wrapped = True
    wrapper = weakref.ref(task.net)
    trainer.close()
    assert task.net is task.model and wrapper() is None and not trainer.wrapped


def test_starting_over_an_existing_run_needs_resume(tmp_path, synth_dir):
    config = tiny_config(synth_dir, tmp_path / "run", train={"steps": 2})
    train(config)
    with pytest.raises(TrainingError, match="--resume"):
        train(config)


def test_checkpoints_keep_the_last_k_and_write_logs_and_pictures(tmp_path, synth_dir):
    config = tiny_config(
        synth_dir,
        tmp_path / "run",
        train={"steps": 8, "ckpt_every": 2, "keep_last": 2, "preview_every": 4, "preview_count": 2},
    )
    train(config)
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step_00000006", "step_00000008"]
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 9))
    assert all("loss" in r and "steps_per_sec" in r for r in records)
    assert (tmp_path / "run" / "loss.png").stat().st_size > 1000
    preview = tmp_path / "run" / "previews" / "step_00000004"
    assert (preview / "sample_0.wav").is_file() and (preview / "spectrograms.png").is_file()


def test_checkpoint_config_records_vocabulary_and_provenance(tmp_path, synth_dir):
    config = tiny_config(
        synth_dir, tmp_path / "run", conditioning={"labels": "auto", "text": {"dim": 32}, "numbers": {"pitch": "auto"}}
    )
    _, path = train(config)
    saved = json.loads((path / "config.json").read_text())
    assert saved["conditioning"]["labels"] == ["chirp", "high", "low", "noise"]
    assert "tone" in saved["conditioning"]["text"]["vocab"]
    low, high = saved["conditioning"]["numbers"]["pitch"]
    assert 40 < low < high < 100
    assert saved["training"]["step"] == 4 and saved["dataset"]["kept"] == 24


def test_non_finite_loss_skips_the_update_and_never_saves_nan(tmp_path, synth_dir, monkeypatch):
    config = tiny_config(synth_dir, tmp_path / "run", train={"steps": 4, "ckpt_every": 2})
    task = DiffusionTask(config, verbose=False)
    original = task.train_step
    poisoned = {1, 2}

    def step(batch, ctx):
        if ctx.step in poisoned:
            batch = dict(batch, x=batch["x"] * float("nan"))
        return original(batch, ctx)

    task.train_step = step
    trainer = Trainer(task, config.train, progress=False)
    path = trainer.fit()
    assert trainer.total_bad == 2
    weights = load_file(path / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in weights.values())


def test_nan_policy_stop_stops_with_a_message(tmp_path, synth_dir):
    config = tiny_config(synth_dir, tmp_path / "run", train={"steps": 4, "nan_policy": "stop"})
    task = DiffusionTask(config, verbose=False)
    original = task.train_step
    task.train_step = lambda batch, ctx: original(dict(batch, x=batch["x"] * float("inf")), ctx)
    with pytest.raises(TrainingError, match="nan_policy=stop"):
        Trainer(task, config.train, progress=False).fit()


def test_time_budget_stops_with_a_checkpoint(tmp_path, synth_dir):
    config = tiny_config(synth_dir, tmp_path / "run", train={"steps": 50, "max_minutes": 1e-6, "ckpt_every": 100})
    trainer, path = train(config)
    assert trainer.step == 1 and path.name == "step_00000001" and path.is_dir()


def test_sigint_stops_after_the_step_with_a_checkpoint_and_resumes_to_the_same_weights(tmp_path, synth_dir):
    full_config = tiny_config(synth_dir, tmp_path / "full", train={"steps": 6, "ckpt_every": 100})
    train(full_config)
    config = tiny_config(synth_dir, tmp_path / "split", train={"steps": 6, "ckpt_every": 100})
    task = DiffusionTask(config, verbose=False)
    original = task.train_step

    def interrupted(batch, ctx):
        losses = original(batch, ctx)
        if ctx.step == 2:  # the third step: Ctrl-C arrives while it runs
            os.kill(os.getpid(), signal.SIGINT)
        return losses

    task.train_step = interrupted
    trainer = Trainer(task, config.train, progress=False)
    path = trainer.fit()
    assert (trainer.step, trainer.stopped_by, path.name) == (3, "SIGINT", "step_00000003")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    resumed, _ = train(config, resume=True)
    assert resumed.step == 6 and resumed.stopped_by is None
    for name in ("model.safetensors", "training_state.safetensors"):
        a, b = (
            load_file(tmp_path / "full" / "checkpoints" / "step_00000006" / name),
            load_file(tmp_path / "split" / "checkpoints" / "step_00000006" / name),
        )
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_checkpoints_follow_the_wall_clock_and_the_budget_counts_over_resumes(tmp_path, synth_dir):
    config = tiny_config(
        synth_dir, tmp_path / "run", train={"steps": 3, "ckpt_every": 100, "ckpt_minutes": 1e-9, "keep_last": 5}
    )
    trainer, _ = train(config)
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == [f"step_0000000{i}" for i in (1, 2, 3)]
    first = trainer.elapsed_seconds
    assert first >= trainer.wall_seconds > 0  # wall clock in the loop includes checkpointing
    more = tiny_config(
        synth_dir, tmp_path / "run", train={"steps": 4, "ckpt_every": 100, "ckpt_minutes": 1e-9, "keep_last": 5}
    )
    resumed, _ = train(more, resume=True)
    assert resumed.elapsed_seconds > first


def test_a_short_run_previews_about_four_times():
    short = Trainer.preview_interval(SimpleNamespace(cfg=SimpleNamespace(preview_every=1000, steps=150)))
    long = Trainer.preview_interval(SimpleNamespace(cfg=SimpleNamespace(preview_every=1000, steps=20000)))
    off = Trainer.preview_interval(SimpleNamespace(cfg=SimpleNamespace(preview_every=0, steps=150)))
    assert (short, long, off) == (38, 1000, 0)


def test_automatic_threads_leave_busy_cores_alone(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads_module, "_AUTO_THREADS", {})
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(threads_module, "busy_cores", lambda cores: 2.1)
    assert choose_threads(0).count == 2 and "2.1 busy" in str(choose_threads(0))
    assert choose_threads(0, processes=2).count == 1
    assert choose_threads(3).count == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert str(choose_threads(0)).startswith("1 (OMP_NUM_THREADS")


def test_busy_cores_sees_a_process_spinning_on_a_core():
    stop = multiprocessing.Event()
    hog = multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
    hog.start()
    try:
        busy = threads_module.busy_cores(2, seconds=1.0)
    finally:
        stop.set()
        hog.join()
    assert 0.6 < busy <= 2.0


def _spin(stop):
    while not stop.is_set():
        sum(range(10_000))


def test_the_optimizer_is_fused_adamw_with_the_same_updates():
    """Every trainer's AdamW takes the fused kernel on CPU, and its steps are plain AdamW's."""
    from audiodiff.config import TrainConfig

    cfg = TrainConfig(lr=1e-2, betas=(0.9, 0.99), weight_decay=0.05)
    torch.manual_seed(0)
    weights = [torch.randn(64, 32), torch.randn(32)]
    fused_params = [w.clone().requires_grad_() for w in weights]
    plain_params = [w.clone().requires_grad_() for w in weights]
    fused = trainer_module.adamw([{"params": fused_params[:1]}, {"params": fused_params[1:], "weight_decay": 0.0}], cfg)
    plain = torch.optim.AdamW(
        [{"params": plain_params[:1]}, {"params": plain_params[1:], "weight_decay": 0.0}],
        lr=1e-2,
        betas=(0.9, 0.99),
        weight_decay=0.05,
    )
    assert fused.defaults["fused"] and not plain.defaults["fused"]
    for _ in range(5):
        grads = [torch.randn_like(w) for w in weights]
        for params, optimizer in ((fused_params, fused), (plain_params, plain)):
            for param, grad in zip(params, grads):
                param.grad = grad.clone()
            optimizer.step()
    for a, b, w in zip(fused_params, plain_params, weights):
        assert not torch.equal(a, w)  # it moved
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
