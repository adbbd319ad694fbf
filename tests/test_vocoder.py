"""The vocoder in use: checkpoints, training through the trainer, the vocode command, export."""

import json
import math

import numpy as np
import pytest
import soundfile
import torch

from audiodiff.audio import AudioError, MelSpec, load_audio, save_audio
from audiodiff.config import VocoderRunConfig, from_dict
from audiodiff.data.synth import build_synthetic
from audiodiff.pipeline import Pipeline, build_model
from audiodiff.train.trainer import Trainer
from audiodiff.train.vocoder import VocoderTask
from audiodiff.vocoder import GriffinLimVocoder, Vocoder, VocoderError
from audiodiff.vocoder.export import PARITY_TOLERANCE, ExportedVocoder, export_vocoder
from audiodiff.vocoder.gan import GANVocoder
from audiodiff.vocoder.generators import build_generator
from tests.test_cli import run_cli
from tests.util import tiny_config, tone

MEL = MelSpec()
TINY_ISTFT = {"dim": 32, "intermediate_dim": 64, "num_layers": 1}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny vocoder trained for a few steps, the GAN on for the last ones."""
    root = tmp_path_factory.mktemp("voc")
    build_synthetic(root / "data", per_class=3, seconds=0.5)
    config = from_dict(
        VocoderRunConfig,
        {
            "data": {"path": str(root / "data"), "split": None, "representation": "wave", "segment_seconds": 0.25},
            "model": {
                "generator": "istft",
                "generator_config": TINY_ISTFT,
                "discriminators": ["mpd", "mrd"],
                "discriminator_options": {
                    "mpd": {"periods": [2, 3], "channels": [4, 8]},
                    "mrd": {"channels": 4, "resolutions": [[256, 64, 256]]},
                },
            },
            "loss": {"discriminator_start": 3, "stft": 1.0},
            "train": {
                "out_dir": str(root / "run"),
                "steps": 5,
                "batch_size": 2,
                "ckpt_every": 5,
                "preview_every": 5,
                "log_every": 1,
                "precision": "fp32",
                "ema_decay": 0.9,
            },
        },
    )
    Trainer(VocoderTask(config, verbose=False), config.train, progress=False).fit()
    return root


def test_training_runs_gan_steps_and_writes_a_loadable_vocoder(trained):
    records = [json.loads(line) for line in (trained / "run" / "log.jsonl").read_text().splitlines()]
    assert "discriminator" not in records[0] and "discriminator" in records[-1]
    assert all(math.isfinite(v) for r in records for k, v in r.items() if isinstance(v, float))
    vocoder = Vocoder.from_pretrained(trained / "run")
    assert isinstance(vocoder, GANVocoder) and vocoder.mel_spec == MEL
    assert vocoder(torch.rand(2, 80, 7) * 2 - 1).shape == (2, 1, 7 * 256)
    preview = trained / "run" / "previews" / "step_00000005"
    assert (preview / "vocoded_0.wav").is_file() and (preview / "spectrograms.png").is_file()


def test_a_vocoder_run_continues_from_a_trained_generator_with_level_augmentation(trained, tmp_path):
    source = Vocoder.from_pretrained(trained / "run")
    config = from_dict(
        VocoderRunConfig,
        {
            "data": {"path": str(trained / "data"), "split": None, "representation": "wave", "segment_seconds": 0.25},
            "model": {
                "discriminators": ["mrd"],
                "discriminator_options": {"mrd": {"channels": 4, "resolutions": [[256, 64, 256]]}},
            },
            "gain_db": [-30, 0],
            "train": {
                "out_dir": str(tmp_path / "run"),
                "steps": 1,
                "batch_size": 2,
                "lr": 1e-9,
                "precision": "fp32",
                "init_from": str(trained / "run"),
            },
        },
    )
    task = VocoderTask(config, verbose=False)
    assert task.config.model.generator_config == source.generator.config  # adopted from the source
    Trainer(task, config.train, progress=False).fit()
    mel = torch.rand(1, 80, 9) * 2 - 1
    assert torch.allclose(
        Vocoder.from_pretrained(tmp_path / "run")(mel), source(mel), atol=1e-4
    )  # lr ~0: the source's weights


def test_a_vocoder_run_may_reread_its_sources_phase_as_an_advance(trained, tmp_path):
    from audiodiff.train.vocoder import load_source_generator

    source = Vocoder.from_pretrained(trained / "run")
    config = from_dict(
        VocoderRunConfig,
        {
            "data": {"path": str(trained / "data"), "representation": "wave"},
            "model": {"generator_config": {"phase": "advance"}},
            "train": {"out_dir": str(tmp_path / "run"), "init_from": str(trained / "run")},
        },
    )
    adopted, _ = load_source_generator(config, verbose=False)
    assert adopted.model.generator_config == {**source.generator.config, "phase": "advance"}
    task = VocoderTask(config, verbose=False)
    task.build(torch.device("cpu"), config.train)
    bins = task.generator.head.n_fft // 2 + 1
    out, before = task.generator.head.out, source.generator.head.out
    assert torch.equal(out.weight[:bins], before.weight[:bins])  # magnitudes as trained
    assert not out.weight[bins:].any() and not out.bias[bins:].any()  # deviations start at zero


def test_vocoder_init_from_and_gain_errors_name_the_fix(tmp_path):
    with pytest.raises(Exception, match="gain_db"):
        from_dict(VocoderRunConfig, {"data": {"representation": "wave"}, "gain_db": [0, -10]})
    config = from_dict(
        VocoderRunConfig,
        {"data": {"path": str(tmp_path), "representation": "wave"}, "train": {"init_from": "griffin_lim"}},
    )
    with pytest.raises(Exception, match="no weights"):
        VocoderTask(config, verbose=False)


def test_save_and_load_round_trip_gives_the_same_audio(tmp_path):
    torch.manual_seed(0)
    vocoder = GANVocoder(build_generator("istft", MEL, **TINY_ISTFT))
    mel = torch.rand(1, 80, 10) * 2 - 1
    before = vocoder(mel)
    loaded = Vocoder.from_pretrained(vocoder.save_pretrained(tmp_path / "v"))
    assert torch.allclose(loaded(mel), before, atol=1e-6)


def test_bad_mels_get_clear_errors():
    vocoder = GriffinLimVocoder(MEL)
    with pytest.raises(AudioError, match="expected \\[batch, 80 mels"):
        vocoder(torch.zeros(1, 64, 10))
    with pytest.raises(AudioError, match="NaN or Inf"):
        vocoder(torch.full((1, 80, 10), float("nan")))
    with pytest.raises(AudioError, match="empty"):
        vocoder(torch.zeros(1, 80, 0))


def test_pipeline_refuses_a_vocoder_with_other_mel_settings(tmp_path):
    config = tiny_config(tmp_path, tmp_path / "run")
    other = GANVocoder(build_generator("istft", MelSpec(f_max=7000), **TINY_ISTFT))
    with pytest.raises(VocoderError, match="f_max: 8000.0 != 7000"):
        Pipeline(build_model(config), config, other)


def test_vocode_command_resamples_and_writes_the_round_trip(trained, tmp_path):
    save_audio(tmp_path / "in.wav", tone(440, 0.5, sample_rate=22050), 22050)
    result = run_cli("vocode", "--vocoder", trained / "run", tmp_path / "in.wav", tmp_path / "out.wav", "--plot")
    info = soundfile.info(str(tmp_path / "out.wav"))
    assert info.samplerate == 16000 and info.frames == 8000 // 256 * 256
    assert "real time" in result.stdout and (tmp_path / "out.png").is_file()
    run_cli("vocode", "--vocoder", "griffin_lim", tmp_path / "in.wav", tmp_path / "gl.wav")
    assert soundfile.info(str(tmp_path / "gl.wav")).frames == info.frames


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize(
    "name,options,passes",
    [
        ("istft", TINY_ISTFT, 0),
        ("istft", TINY_ISTFT, 2),
        ("istft", {**TINY_ISTFT, "phase": "advance"}, 0),
        ("hifigan_v2", {"upsample_initial_channel": 16}, 0),
    ],
)
def test_export_matches_pytorch(tmp_path, fmt, name, options, passes):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="optional: pip install 'audiodiff[onnx]'")
        pytest.importorskip("onnxscript", reason="optional: pip install 'audiodiff[onnx]'")
    torch.manual_seed(0)
    vocoder = GANVocoder(build_generator(name, MEL, **options), match_mel=passes).fold()
    path, report = export_vocoder(vocoder, tmp_path / f"voc.{'onnx' if fmt == 'onnx' else 'pt'}", fmt)
    mel = torch.rand(3, 80, 23) * 2 - 1
    assert (ExportedVocoder(path)(mel) - vocoder(mel)).abs().max() <= PARITY_TOLERANCE
    assert "parity" in report


def test_export_command(trained, tmp_path):
    result = run_cli("export", "--vocoder", trained / "run", "--format", "torchscript", "--out", tmp_path / "v.pt")
    assert "parity" in result.stdout and (tmp_path / "v.pt.json").is_file()


def test_long_mels_are_vocoded_in_chunks_that_join_seamlessly():
    """The bundled vocoder on 20 s of mel in 64-frame chunks equals one pass over the whole."""
    voc = Vocoder.from_pretrained("vocoder-16k")
    audio = torch.sin(torch.linspace(0, 2000, 16000 * 20)) * torch.linspace(0.1, 0.6, 16000 * 20)
    mel = voc.mel_spec(audio[None])
    whole_chunk = voc.chunk_frames
    with torch.inference_mode():
        voc.chunk_frames = mel.shape[-1]
        whole = voc.generate(mel)
        voc.chunk_frames = 64
        chunked = voc.generate(mel)
    voc.chunk_frames = whole_chunk
    assert chunked.shape == whole.shape == (1, 1, mel.shape[-1] * voc.mel_spec.hop_length)
    assert (chunked - whole).abs().max() < 1e-4 * whole.abs().max()


def test_mel_matching_moves_audio_towards_its_mel_and_is_saved_with_the_vocoder(tmp_path):
    from audiodiff.audio import match_mel
    from audiodiff.metrics.signal import mel_l1

    torch.manual_seed(0)
    target = tone(440.0, seconds=0.5) * 0.5 + tone(1320.0, seconds=0.5) * 0.2
    target = target[..., : target.shape[-1] // 256 * 256]
    start = tone(430.0, seconds=0.5)[..., : target.shape[-1]] * 0.05  # wrong level, wrong overtone
    distances = [
        mel_l1(match_mel(start[None], MEL(target), MEL, passes)[0], target, MEL).item() for passes in (0, 2, 8)
    ]
    assert distances[0] > 2 * distances[1] > 2 * distances[2] > 0, distances
    vocoder = GANVocoder(build_generator("istft", MEL, **TINY_ISTFT), match_mel=3)
    loaded = Vocoder.from_pretrained(vocoder.save_pretrained(tmp_path / "v"))
    assert loaded.match_mel == 3
    mel = torch.rand(1, 80, 10) * 2 - 1
    assert torch.allclose(loaded(mel), vocoder(mel), atol=1e-5)
    with pytest.raises(ValueError, match="match_mel"):
        GANVocoder(build_generator("istft", MEL, **TINY_ISTFT), match_mel=-1)


@pytest.mark.parametrize("name", ["vocoder-16k", "vocoder-16k-real"])
def test_silence_a_full_scale_square_and_dc_vocode_finite_and_bounded(name):
    voc = Vocoder.from_pretrained(name)
    rate = voc.mel_spec.sample_rate
    t = torch.arange(rate) / rate
    hard = {
        "silence": torch.zeros(rate),
        "square": torch.sign(torch.sin(2 * torch.pi * 200 * t)),  # full scale, every harmonic to Nyquist
        "dc": torch.full((rate,), 0.99),
    }
    for kind, audio in hard.items():
        out = voc.round_trip(audio[None])
        assert out.shape == (1, 1, rate // voc.mel_spec.hop_length * voc.mel_spec.hop_length), kind
        assert torch.isfinite(out).all() and out.abs().max() <= 1.0, kind
    assert voc.round_trip(hard["silence"][None]).abs().max() < 0.01  # silence stays silent


def test_a_ten_minute_file_is_vocoded_in_bounded_pieces(tmp_path):
    """Memory follows the chunk, not the file: no generator call sees more than a chunk and its context."""
    voc = Vocoder.from_pretrained("vocoder-16k")
    rate, seconds = voc.mel_spec.sample_rate, 600
    t = torch.arange(rate * seconds) / rate
    save_audio(tmp_path / "long.wav", 0.3 * torch.sin(2 * torch.pi * 220 * t) * torch.sin(torch.pi * t / 7) ** 2, rate)
    audio, _ = load_audio(tmp_path / "long.wav", rate, 1)
    seen = []
    forward, chunk = voc.generator.forward, voc.generator.render_chunk  # plain and phase-carrying generators
    voc.generator.forward = lambda mel, *a, **k: seen.append(mel.shape[-1]) or forward(mel, *a, **k)
    voc.generator.render_chunk = lambda mel, *a: seen.append(mel.shape[-1]) or chunk(mel, *a)
    out = voc.round_trip(audio)
    frames = rate * seconds // voc.mel_spec.hop_length + 1
    assert out.shape[-1] >= (frames - 1) * voc.mel_spec.hop_length and torch.isfinite(out).all()
    assert len(seen) > 30 and max(seen) <= voc.chunk_frames + 2 * voc.context_frames


def test_the_tones_benchmark_finds_a_sines_frequency_to_a_cent():
    from benchmarks.vocoder_tones import cents, loudest_frequency

    rate = 16000
    t = np.arange(rate) / rate
    assert abs(cents(loudest_frequency(np.sin(2 * np.pi * 437.3 * t), rate), 437.3)) < 1.0
    assert cents(220.0 * 2 ** (100 / 1200), 220.0) == pytest.approx(100.0)
