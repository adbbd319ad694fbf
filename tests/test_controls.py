"""Control curves: extraction from recordings with a known answer, resampling, named shapes, the
curve condition in the U-Net, datasets that measure and cache curves, the notes builder's
gestures, fine-tuning a model with a new curve, and generating along a curve."""

import math

import numpy as np
import pytest
import torch

from audiodiff import controls
from audiodiff.audio import MelSpec
from audiodiff.config import DataConfig
from audiodiff.data.dataset import AudioDataset, collate, scan_items
from audiodiff.models.condition_base import ConditionError
from audiodiff.models.conditioning import ConditioningConfig
from audiodiff.models.curves import CurveConfig
from audiodiff.models.unet import UNet, UNetConfig
from audiodiff.pipeline import Pipeline
from audiodiff.train.diffusion import DiffusionTask
from audiodiff.train.trainer import Trainer
from tests.util import tiny_config, write_clip

SR = 16000


def vibrato_tone(seconds=1.0, base=220.0, cents=40.0, rate=5.0, amplitude=0.5, silent_tail=0.25):
    """A harmonic tone whose F0 is known at every sample, then silence."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = base * 2 ** (cents / 1200 * np.sin(2 * np.pi * rate * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    wave = sum(np.sin(k * phase) / k for k in (1, 2, 3)) * amplitude / 1.5
    wave[t >= seconds - silent_tail] = 0.0
    return wave.astype(np.float32), f0


@pytest.mark.parametrize("method", ["pyin", "crepe"])
def test_extract_finds_a_known_pitch_contour_and_silence(method):
    if method == "crepe":
        pytest.importorskip("torchcrepe")
    wave, truth = vibrato_tone()
    curves = controls.extract(wave, SR, method=method)
    frames = len(curves["f0"])
    assert frames == round(SR * 1.0 / 256) and len(curves["loudness"]) == frames
    centres = ((np.arange(frames) + 0.5) * 256).astype(int)
    sounding = np.arange(frames) < frames * 0.7
    f0 = curves["f0"][sounding]
    cents = 1200 * np.abs(np.log2(np.maximum(f0, 1e-3) / truth[centres[sounding]]))
    assert (cents < 50).mean() >= 0.9, np.round(cents)
    tail = np.arange(frames) > frames * 0.8
    assert (curves["f0"][tail] == 0).all()  # silence is unvoiced
    assert (curves["loudness"][tail] == controls.LOUDNESS_FLOOR).all()


def test_loudness_reads_rms_in_dbfs():
    sine = np.sin(2 * np.pi * 440 * np.arange(SR) / SR).astype(np.float32)
    for gain_db in (0.0, -20.0):
        level = controls.extract_loudness(sine * 10 ** (gain_db / 20), SR)
        assert np.median(level) == pytest.approx(gain_db - 3.01, abs=0.2)  # a sine's RMS is 3 dB below its peak
    stereo = np.stack([sine, sine]) * 0.1
    assert np.median(controls.extract_loudness(stereo, 44100)) == pytest.approx(-23.0, abs=0.3)


def test_extract_rejects_bad_audio_with_the_fix():
    with pytest.raises(controls.ControlError, match="NaN"):
        controls.extract(np.array([0.0, np.nan] * 800), SR)
    with pytest.raises(controls.ControlError, match="shape"):
        controls.extract(np.zeros((2, 2, 100)), SR)
    with pytest.raises(controls.ControlError, match="method"):
        controls.extract_f0(np.zeros(4000), SR, method="yin")


def test_resample_curve_keeps_unvoiced_and_missing_frames():
    f0 = controls.resample_curve([220.0, 440.0], 4, kind="f0")
    assert f0[0] == pytest.approx(220.0) and f0[-1] == pytest.approx(440.0)
    assert 220 < f0[1] < f0[2] < 440 and f0[1] * f0[2] == pytest.approx(220 * 440, rel=1e-3)  # log-spaced
    gapped = controls.resample_curve([200.0, 0.0, 0.0, 300.0], 8, kind="f0")
    assert (gapped[2:6] == 0).all() and gapped[0] == pytest.approx(200.0)
    level = controls.resample_curve([-20.0, np.nan, -10.0], 6)
    assert np.isnan(level[2:4]).all() and level[0] == pytest.approx(-20.0)
    with pytest.raises(controls.ControlError, match="empty"):
        controls.resample_curve([], 4)


def test_named_shapes():
    glide = controls.hz_to_midi(controls.shape("f0", "glide", 50, pitch=60, depth=4, sound=1.0))
    assert glide[0] == pytest.approx(58, abs=0.1) and glide[-1] == pytest.approx(62, abs=0.1)
    held = controls.shape("f0", "flat", 40, pitch=69, sound=0.5)
    assert held[0] == pytest.approx(440.0) and (held[20:] == 0).all()
    cresc = controls.shape("loudness", "crescendo", 30, level=-20, depth=20, sound=1.0)
    assert cresc[0] < -28 and cresc[-1] > -12 and np.all(np.diff(cresc) > 0)
    with pytest.raises(controls.ControlError, match="glide"):
        controls.shape("f0", "wobble")


def test_vibrato_and_tremolo_keep_their_rate_in_hz():
    """5.5 Hz vibrato (+-50 cents by default) and 6 Hz tremolo whatever the clip's length or frame rate."""
    for frames, frame_rate in [(62, 62.5), (344, 86.1), (400, 100.0)]:
        midi = controls.hz_to_midi(controls.shape("f0", "vibrato", frames, pitch=60, sound=1.0, frame_rate=frame_rate))
        assert midi.max() == pytest.approx(60.5, abs=0.02) and midi.min() == pytest.approx(59.5, abs=0.02)
        crossings = int(np.diff(midi - 60 > 1e-3).sum())
        assert abs(crossings - 2 * 5.5 * frames / frame_rate) <= 1.5
        level = controls.shape("loudness", "tremolo", frames, level=-20, sound=1.0, frame_rate=frame_rate)
        assert abs(int(np.diff(level + 20 > 1e-3).sum()) - 2 * 6 * frames / frame_rate) <= 1.5
    wide = controls.hz_to_midi(controls.shape("f0", "vibrato", 62, pitch=60, depth=2, sound=1.0))
    assert wide.max() == pytest.approx(61, abs=0.05)
    with pytest.raises(controls.ControlError, match="frame_rate"):
        controls.shape("f0", "vibrato", 62, frame_rate=0)


# --------------------------------------------------------------------------------------------
# The condition in the U-Net


def curve_unet(dims=2):
    cfg = UNetConfig(dims=dims, channels=16, channel_mults=(1, 2), num_res_blocks=1, attention_levels=(1,), head_channels=16,
                     norm_groups=8, patch_size=2 if dims == 2 else 8)  # fmt: skip
    cond = ConditioningConfig(curves={"f0": CurveConfig(), "loudness": CurveConfig(span_prob=1.0)})
    model = UNet(cfg, cond, MelSpec())
    torch.manual_seed(0)
    for parameter in model.parameters():  # undo the zero inits, so every path shows in the output
        if parameter.dim() > 1 and not parameter.abs().sum():
            torch.nn.init.normal_(parameter, std=0.05)
    return model


def test_curves_act_locally_in_time_and_any_length_is_accepted():
    model = curve_unet().eval()
    x, t = torch.randn(1, 1, 80, 64), torch.full((1,), 0.5)
    f0 = np.full(64, 220.0)
    changed = f0.copy()
    changed[40:] = 330.0
    with torch.no_grad():
        a = model(x, t, model.conditioner.prepare(1, f0=f0))
        b = model(x, t, model.conditioner.prepare(1, f0=changed))
        none = model(x, t, {})
        short = model(x, t, model.conditioner.prepare(1, f0=np.full(16, 220.0)))
    assert not torch.allclose(a, none)
    diff = (a - b).abs().mean(dim=(0, 1, 2))
    assert diff[:20].mean() < diff[44:].mean()  # the change shows most where the curve changed
    assert torch.allclose(a, short, atol=1e-5)  # 16 values spread over the clip = 64 of the same


def test_curve_parse_and_dropout():
    model = curve_unet()
    loudness = model.conditioner.conditions["loudness"]
    batch = loudness.parse(np.stack([np.linspace(-40, -10, 20), np.full(20, -20.0)]), 2)
    assert batch.shape == (2, 20)
    assert loudness.parse([np.zeros(5) - 30, np.zeros(10) - 30], 2).shape == (2, 10)
    for bad, match in [(np.array([-10.0, np.inf]), "infinite"), (np.array([50.0]), "dB"), (np.zeros((2, 2, 2)), "1-D")]:
        with pytest.raises(ConditionError, match=match):
            loudness.parse(bad, 1)
    with pytest.raises(ConditionError, match="Hz"):
        model.conditioner.prepare(1, f0=[-5.0])
    kept = loudness.keep(
        torch.full((6, 50), -20.0), torch.tensor([True] * 5 + [False]), None, torch.Generator().manual_seed(0)
    )
    masked = torch.isnan(kept).sum(-1)
    assert masked[5] == 50 and ((masked[:5] >= 5) & (masked[:5] <= 30)).all()  # span_prob=1: one span of 10-60%


def test_a_waveform_unet_takes_curves():
    model = curve_unet(dims=1).eval()
    x = torch.randn(2, 1, 4096)
    with torch.no_grad():
        out = model(
            x, torch.full((2,), 0.3), model.conditioner.prepare(2, f0=np.full(16, 300.0), loudness=np.full(16, -12.0))
        )
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_motion_map_reads_vibrato_in_semitones_and_a_held_note_as_still():
    """The f0 motion map (CurveConfig.motion) on known contours: a +-0.5 semitone vibrato reads
    about +-0.5 whatever the note, a held note 0, unvoiced frames 0, a leap clipped at MOTION_LIMIT."""
    from audiodiff.models.curves import MOTION_LIMIT

    cfg = UNetConfig(
        dims=2,
        channels=16,
        channel_mults=(1, 2),
        num_res_blocks=1,
        attention_levels=(1,),
        head_channels=16,
        norm_groups=8,
    )
    model = UNet(cfg, ConditioningConfig(curves={"f0": CurveConfig(motion=True)}), MelSpec())
    f0 = model.conditioner.conditions["f0"]
    frames = 125  # 2 s at 62.5 frames/s
    rows = [controls.shape("f0", "vibrato", frames, pitch=pitch, sound=1.0) for pitch in (45, 72)]
    held = np.full(frames, 262.0)
    held[100:] = 0.0
    leap = np.full(frames, 220.0)
    leap[60:] = 880.0
    maps = f0.motion_map(torch.tensor(np.stack(rows + [held, leap]), dtype=torch.float32), (80, frames))
    assert maps.shape == (4, 1, 80, frames)
    motion = maps[:, 0, 0]
    for row in motion[:2, 20:-20]:  # away from the ends' half windows
        assert float(row.max()) == pytest.approx(0.5, abs=0.1) and float(row.min()) == pytest.approx(-0.5, abs=0.1)
    assert motion[2].abs().max() < 1e-4 and (motion[2, 100:] == 0).all()
    assert float(motion[3].abs().max()) == pytest.approx(MOTION_LIMIT)
    with pytest.raises(ValueError, match="loudness.motion"):
        UNet(cfg, ConditioningConfig(curves={"loudness": CurveConfig(motion=True)}), MelSpec())
    for name, parameter in model.named_parameters():  # undo the zero inits but the motion's, so every path shows
        if parameter.dim() > 1 and not parameter.abs().sum() and ".motion." not in name:
            torch.nn.init.normal_(parameter, std=0.05)
    plain = UNet(cfg, ConditioningConfig(curves={"f0": CurveConfig()}), MelSpec()).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if ".motion." not in k})
    model.eval()
    x, t = torch.randn(2, 1, 80, 64), torch.full((2,), 0.5)
    cond = model.conditioner.prepare(2, f0=np.stack([rows[0][:64], held[:64]]))
    with torch.no_grad():
        assert torch.allclose(model(x, t, cond), plain(x, t, cond))  # zero-initialised: a plain f0 model until trained
        f0.motion.weight.normal_(std=0.05)
        moved = model(x, t, cond) - plain(x, t, cond)
    assert moved[0].abs().max() > 1e-2 and moved[1].abs().max() < 1e-5  # only a moving F0 reaches it


# --------------------------------------------------------------------------------------------
# Data, training, generation


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tones")
    for index, base in enumerate([196.0, 262.0, 330.0, 392.0]):
        wave, _ = vibrato_tone(0.5, base, silent_tail=0.1)
        write_clip(folder, f"t{index}.wav", torch.from_numpy(wave)[None])
    return folder


def test_a_dataset_measures_and_caches_curves(tones, tmp_path):
    cfg = DataConfig(
        path=str(tones),
        split=None,
        segment_seconds=0.5,
        curves=["f0", "loudness"],
        curve_method="pyin",
        cache_dir=str(tmp_path / "cache"),
    )
    items, _ = scan_items(cfg)
    dataset = AudioDataset(items, cfg, MelSpec())
    example = dataset[(0, 0)]
    frames = example["x"].shape[-1]
    assert example["f0"].shape == (frames,) and example["loudness"].shape == (frames,)
    voiced = example["f0"][example["f0"] > 0]
    assert len(voiced) > frames * 0.6 and float(voiced.median()) == pytest.approx(196.0, rel=0.03)
    assert list((tmp_path / "cache").glob("mel-*/*/*.safetensors"))
    again = AudioDataset(items, cfg, MelSpec())[(0, 0)]  # from the cache
    assert torch.equal(again["f0"], example["f0"]) and torch.equal(again["x"], example["x"])
    batch = collate([dataset[(i, 0)] for i in range(2)])
    assert batch["f0"].shape == (2, frames)


def test_fine_tuning_with_a_new_curve_starts_where_the_source_was(tones, tmp_path, capsys):
    source = tmp_path / "source"
    config = tiny_config(tones, source, seconds=0.5)
    Trainer(DiffusionTask(config, verbose=False), config.train, progress=False).fit()
    tuned = tiny_config(
        tones, tmp_path / "tuned", seconds=0.5, data={"curve_method": "pyin"},
        conditioning={"curves": {"f0": {}, "loudness": {}}}, train={"init_from": str(source), "steps": 2},
    )  # fmt: skip
    task = DiffusionTask(tuned, verbose=False)
    task.build(torch.device("cpu"), tuned.train)
    before = Pipeline.from_pretrained(source, vocoder="griffin_lim")
    x, t = torch.randn(1, 1, 80, 31), torch.full((1,), 0.4)
    cond = task.model.conditioner.prepare(1, f0=np.full(31, 262.0), loudness=np.full(31, -15.0))
    with torch.no_grad():
        assert torch.allclose(
            task.model(x, t, cond), before.model(x, t, {}), atol=1e-6
        )  # zero-initialised curve layers
    Trainer(task, tuned.train, progress=False).fit()
    pipe = Pipeline.from_pretrained(tmp_path / "tuned", vocoder="griffin_lim")
    assert set(pipe.model.conditioner.conditions) == {"f0", "loudness"}
    out = pipe.generate(n=2, f0=controls.shape("f0", "glide", 31, pitch=60), loudness=np.full(31, -20.0), steps=2)
    assert out.audio.shape[0] == 2 and torch.isfinite(out.audio).all()
    curves = pipe.curves_from(tones / "t1.wav", transpose=12)
    assert float(np.median(curves["f0"][curves["f0"] > 0])) == pytest.approx(524.0, rel=0.03)  # 262 Hz an octave up
    with pytest.raises(ConditionError, match="duration"):
        pipe.generate(f0=curves["f0"], duration=5.0, steps=2)

    from audiodiff.cli import main

    wav = tmp_path / "melody.wav"
    assert main(["generate", "--checkpoint", str(tmp_path / "tuned"), "--melody-from", str(tones / "t2.wav"),
                 "--transpose", "-2", "--steps", "2", "--out", str(wav)]) == 0  # fmt: skip
    assert wav.is_file()

    moving = tiny_config(
        tones, tmp_path / "moving", seconds=0.5, data={"curve_method": "pyin"},
        conditioning={"curves": {"f0": {"motion": True}, "loudness": {}}}, train={"init_from": str(tmp_path / "tuned"), "steps": 2},
    )  # fmt: skip
    task = DiffusionTask(moving, verbose=True)
    capsys.readouterr()
    task.build(torch.device("cpu"), moving.train)
    cond = task.model.conditioner.prepare(
        1, f0=controls.shape("f0", "vibrato", 31, pitch=60), loudness=np.full(31, -15.0)
    )
    with torch.no_grad():  # the f0 condition carried over whole, its new motion layer at zero
        assert torch.allclose(task.model(x, t, cond), pipe.model(x, t, cond), atol=1e-6)
    assert "f0: carried over; new layers (motion)" in capsys.readouterr().err


def test_half_the_gestures_sound_through_the_whole_clip(tmp_path):
    """Gesture clips either sound to the clip's end or stop between half the clip and the held
    notes' note-off, as the manifest says: the model then learns when to stop from the f0 voicing."""
    import json

    import soundfile

    from audiodiff.data.builders.notes import build_notes

    try:
        build_notes(tmp_path / "notes", programs=[56], pitches=[60], velocities=[100], gestures=12, progress=False)
    except Exception as error:  # no fluidsynth or soundfont on this machine
        pytest.skip(f"fluidsynth unavailable: {error}")
    rows = [json.loads(line) for line in (tmp_path / "notes" / "manifest.jsonl").read_text().splitlines()]
    gestures = [row for row in rows if row["gesture"] != "none"]
    held = [row for row in rows if row["gesture"] == "none"]
    note_off = held[0]["sounds_seconds"]
    assert note_off == pytest.approx(0.75, abs=0.01)
    through = [row for row in gestures if row["sounds_seconds"] == pytest.approx(1.0, abs=0.01)]
    stopped = [row for row in gestures if row not in through]
    assert through and stopped and all(0.49 <= row["sounds_seconds"] <= note_off for row in stopped)

    def tail_db(row) -> float:  # the last 50 ms against the clip's peak
        audio, rate = soundfile.read(tmp_path / "notes" / row["path"])
        return 20 * np.log10(np.sqrt(np.mean(audio[-rate // 20 :] ** 2)) / np.abs(audio).max() + 1e-9)

    assert min(tail_db(row) for row in through) > max(tail_db(row) for row in stopped) + 6


def test_notes_builder_renders_gestures(tmp_path):
    import json

    import soundfile

    from audiodiff.data.builders.notes import GESTURES, Slot, build_notes, midi_file

    pytest.importorskip("librosa")
    try:
        report = build_notes(
            tmp_path / "notes", programs=[56], pitches=[60], velocities=[100], gestures=5, progress=False
        )
    except Exception as error:  # no fluidsynth or soundfont on this machine
        pytest.skip(f"fluidsynth unavailable: {error}")
    rows = [json.loads(line) for line in (tmp_path / "notes" / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 6, report
    assert sorted(row["gesture"] for row in rows) == sorted(["none", *GESTURES])
    spread = {}
    for row in rows:
        audio, rate = soundfile.read(tmp_path / "notes" / row["path"])
        pitch = controls.hz_to_midi(controls.extract_f0(audio, rate, method="pyin"))
        pitch = pitch[np.isfinite(pitch)]
        spread[row["gesture"]] = float(np.percentile(pitch, 95) - np.percentile(pitch, 5))
        level = controls.extract_loudness(audio, rate)[:40]
        spread[row["gesture"] + "-dB"] = float(level.max() - level.min())
    assert spread["none"] < 0.3 and spread["legato"] > 0.9 and spread["detached"] > 0.9
    assert spread["bend"] > 0.4 and spread["vibrato"] > 0.2
    assert spread["swell-dB"] > spread["none-dB"] + 3
    midi = midi_file(56, [Slot(60, 100, "vibrato", seed=1)], seconds=1.0, release=0.25)
    assert midi.count(b"\xe0") > 20  # pitch-wheel messages every 20 ms
    assert math.isclose(len(midi_file(56, [(60, 100)], 1.0, 0.25)), len(midi_file(56, [Slot(60, 100)], 1.0, 0.25)))


def test_pitch_alone_is_a_flat_f0_on_a_curve_model(tones, tmp_path):
    import json

    manifest = tmp_path / "manifest.jsonl"
    pitches = [55, 60, 64, 67]
    manifest.write_text(
        "".join(json.dumps({"path": str(tones / f"t{i}.wav"), "pitch": p}) + "\n" for i, p in enumerate(pitches))
    )
    config = tiny_config(
        manifest, tmp_path / "run", seconds=0.5, data={"curve_method": "pyin"},
        conditioning={"numbers": {"pitch": "auto"}, "curves": {"f0": {}}}, train={"steps": 2},
    )  # fmt: skip
    Trainer(DiffusionTask(config, verbose=False), config.train, progress=False).fit()
    pipe = Pipeline.from_pretrained(tmp_path / "run", vocoder="griffin_lim")
    for parameter in pipe.model.conditioner.conditions["f0"].parameters():  # make the curve matter
        torch.nn.init.normal_(parameter, std=0.1)
    short = pipe.generate(pitch=60, steps=2, seed=1).audio
    flat = pipe.generate(pitch=60, f0=controls.shape("f0", "flat", 64, pitch=60, sound=0.8), steps=2, seed=1).audio
    other = pipe.generate(pitch=60, f0=controls.shape("f0", "flat", 64, pitch=67, sound=0.8), steps=2, seed=1).audio
    assert torch.allclose(short, flat) and not torch.allclose(short, other)
    # longer than a curve can steer: made window by window with pitch as a number alone, not refused
    long = pipe.generate(pitch=60, duration=1.5, steps=2, seed=1).audio
    assert long.shape[-1] >= int(1.4 * pipe.sample_rate) and torch.isfinite(long).all()
    with pytest.raises(ConditionError, match="curves steer one window"):
        pipe.generate(pitch=60, f0=[220.0, 230.0], duration=1.5, steps=2)
