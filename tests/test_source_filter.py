"""The source-filter vocoder: its pulse train and pitch grid on cases with known answers, the
generator learning a tone's F0, chunks joined in phase, init from an ISTFT vocoder, export."""

import json
import math

import pytest
import torch

from audiodiff.audio import MelSpec, stft
from audiodiff.config import VocoderRunConfig, from_dict
from audiodiff.data.synth import build_synthetic
from audiodiff.train.trainer import Trainer
from audiodiff.train.vocoder import VocoderTask
from audiodiff.vocoder import Vocoder
from audiodiff.vocoder.export import PARITY_TOLERANCE, ExportedVocoder, export_vocoder
from audiodiff.vocoder.gan import GANVocoder
from audiodiff.vocoder.generators import build_generator
from audiodiff.vocoder.losses import mel_l1_loss
from audiodiff.vocoder.source import PitchGrid, excitation_phase, harmonic_excitation
from tests.test_vocoder_models import one_thread  # noqa: F401  (autouse: tiny models run fastest on one thread)

MEL = MelSpec()
HOP, RATE = MEL.hop_length, MEL.sample_rate
TINY = {"dim": 32, "intermediate_dim": 64, "num_layers": 1}


@pytest.mark.parametrize("f0", [55.0, 210.0, 1234.5])
def test_the_pulse_train_is_every_harmonic_below_nyquist_at_amplitude_one(f0):
    frames = 12
    pulses = harmonic_excitation(torch.full((1, frames), f0), torch.ones(1, frames), HOP, RATE)
    n = torch.arange(frames * HOP, dtype=torch.float64)
    count = (RATE / 2) / f0
    top = math.ceil(count) - 1  # the highest harmonic below Nyquist, faded by how close it is
    expected = sum(torch.cos(2 * math.pi * h * f0 * n / RATE) for h in range(1, top)) + (count - top) * torch.cos(
        2 * math.pi * top * f0 * n / RATE
    )
    assert (pulses.double()[0] - expected).abs().max() < 1e-4


def test_voicing_gates_the_pulse_train_and_the_phase_integrates_the_f0():
    f0 = torch.linspace(100.0, 400.0, 20)[None]
    voicing = torch.ones(1, 20)
    voicing[:, :8] = 0
    pulses = harmonic_excitation(f0, voicing, HOP, RATE)
    assert pulses[0, : 7 * HOP].abs().max() == 0  # before the last unvoiced frame's centre ramps up
    phase = excitation_phase(f0, HOP, RATE, start=torch.tensor([0.25]))
    assert phase[0, 0] == pytest.approx(0.25)
    steps = phase[0].diff() * RATE  # cycles per sample x rate = the per-sample F0
    assert steps[HOP // 2] == pytest.approx(100.0, rel=1e-3) and steps[-HOP // 2] == pytest.approx(400.0, rel=1e-3)
    assert bool((steps[1:] >= steps[:-1] - 1e-6).all())  # a rising F0 never steps back


def test_the_pulse_train_has_no_energy_above_the_fundamentals_harmonics():
    """A glide sweeps harmonics past Nyquist: none of them folds back below the fundamental."""
    f0 = torch.linspace(300.0, 1500.0, 64)[None]
    spectrum = stft(harmonic_excitation(f0, torch.ones(1, 64), HOP, RATE), 1024, HOP).abs()[0]
    bin_hz = RATE / 1024
    for frame in (10, 30, 50):
        below = int(f0[0, frame] / bin_hz * 0.7)  # well under the fundamental: only aliases could be here
        assert spectrum[2:below, frame].max() < 1e-3 * spectrum[:, frame].max()


def test_the_pitch_grid_decodes_its_own_targets_within_a_cent():
    grid = PitchGrid()
    assert grid.bins == 321 + 12  # 40 Hz .. 1.6 kHz in 20-cent steps, and 6 more at each end
    f0 = torch.tensor([40.0, 61.7, 220.0, 440.0, 987.6, 1600.0])
    decoded = grid.decode(torch.log(grid.targets(f0)))
    assert (1200 * torch.log2(decoded / f0)).abs().max() < 1.0


def _tone_batch(f0: float, frames: int = 32):
    time = torch.arange(frames * HOP) / RATE
    audio = (
        0.3 * torch.sin(2 * math.pi * f0 * time)
        + 0.15 * torch.sin(2 * math.pi * 2 * f0 * time)
        + 0.05 * torch.sin(2 * math.pi * 3 * f0 * time)
    )
    return audio[None, None], MEL(audio[None]), torch.full((1, frames), f0)


def test_the_generator_learns_a_tones_f0_and_sounds_it():
    torch.manual_seed(0)
    audio, mel, f0 = _tone_batch(261.63)
    generator = build_generator("source_filter", MEL, dim=64, intermediate_dim=128, num_layers=2)
    optimizer = torch.optim.Adam(generator.parameters(), 2e-3)
    for _ in range(150):
        optimizer.zero_grad()
        fake, pitch_loss = generator(mel, f0)
        (mel_l1_loss(fake, audio, MEL) + pitch_loss).backward()
        optimizer.step()
    with torch.no_grad():
        parts = generator.parts(mel)
        predicted, voicing = generator.pitch(parts)
        out = generator(mel)  # inference: the predicted F0 drives the source
    assert (1200 * torch.log2(predicted / 261.63)).abs().median() < 20
    assert voicing.min() > 0.5
    spectrum = stft(out[:, 0], 2048, HOP).abs()[0].mean(-1)
    assert abs(spectrum[5:].argmax().item() + 5 - 261.63 / (RATE / 2048)) <= 1  # the loudest partial is the fundamental


def _loud_source(generator):
    """Open the harmonic filter wide, so the pulse train dominates an untrained generator's output."""
    with torch.no_grad():
        generator.harmonic_head.bias[: generator.head.n_fft // 2 + 1].fill_(3.0)
        generator.pitch_head.bias.zero_()
        generator.pitch_head.bias[PitchGrid().bins // 2] = 20.0  # a steady F0 of about 253 Hz
        generator.pitch_head.bias[-1] = 10.0  # voiced
    return generator


def test_chunks_join_in_phase():
    torch.manual_seed(0)
    vocoder = GANVocoder(_loud_source(build_generator("source_filter", MEL, **TINY)))
    mel = torch.rand(1, 80, 150) * 0.2 - 0.5
    with torch.inference_mode():
        whole = vocoder.generate(mel)
        vocoder.chunk_frames, vocoder.context_frames = 40, 12
        chunked = vocoder.generate(mel)
    assert chunked.shape == whole.shape
    assert (chunked - whole).abs().max() < 1e-4 * whole.abs().max()


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_renders_the_source_outside_the_graph(tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="optional: pip install 'audiodiff[onnx]'")
        pytest.importorskip("onnxscript", reason="optional: pip install 'audiodiff[onnx]'")
    torch.manual_seed(0)
    vocoder = GANVocoder(_loud_source(build_generator("source_filter", MEL, **TINY))).fold()
    path, _ = export_vocoder(vocoder, tmp_path / f"voc.{'onnx' if fmt == 'onnx' else 'pt'}", fmt)
    mel = torch.rand(2, 80, 23) * 2 - 1
    assert (ExportedVocoder(path)(mel) - vocoder(mel)).abs().max() <= PARITY_TOLERANCE


def test_save_and_load_round_trip_gives_the_same_audio(tmp_path):
    torch.manual_seed(0)
    vocoder = GANVocoder(_loud_source(build_generator("source_filter", MEL, **TINY)))
    mel = torch.rand(1, 80, 10) * 2 - 1
    loaded = Vocoder.from_pretrained(vocoder.save_pretrained(tmp_path / "v"))
    assert loaded.generator.name == "source_filter"
    assert torch.allclose(loaded(mel), vocoder(mel), atol=1e-6)


def _config(data, out_dir, **train):
    return from_dict(
        VocoderRunConfig,
        {
            "data": {
                "path": str(data),
                "split": None,
                "representation": "wave",
                "segment_seconds": 0.25,
                "cache_dir": str(out_dir / "cache"),
                "curve_method": "pyin",
            },
            "model": {
                "generator": "source_filter",
                "generator_config": TINY,
                "discriminators": ["mrd"],
                "discriminator_options": {"mrd": {"channels": 4, "resolutions": [[256, 64, 256]]}},
            },
            "loss": {"discriminator_start": 2, "stft": 1.0},
            "train": {
                "out_dir": str(out_dir / "run"),
                "steps": 3,
                "batch_size": 2,
                "ckpt_every": 3,
                "preview_every": 0,
                "log_every": 1,
                "precision": "fp32",
                **train,
            },
        },
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("sf")
    build_synthetic(root / "data", per_class=2, seconds=0.5)
    return root / "data"


def test_training_measures_each_clips_f0_and_learns_to_predict_it(data, tmp_path):
    config = _config(data, tmp_path)
    task = VocoderTask(config, verbose=False)
    assert task.config.data.curves == ["f0"]  # added for a source-filter generator
    example = task.dataset[(0, 3)]
    assert example["f0"].shape == (example["x"].shape[-1] // HOP,)
    Trainer(task, config.train, progress=False).fit()
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert all(math.isfinite(record["pitch"]) for record in records if "pitch" in record) and "pitch" in records[-1]
    vocoder = Vocoder.from_pretrained(tmp_path / "run")
    assert vocoder.generator.name == "source_filter" and vocoder(torch.rand(1, 80, 9) * 2 - 1).shape == (1, 1, 9 * HOP)
