"""The offline dataset builders: spoken digits and many-voiced speech (espeak-ng) and instrument
notes (fluidsynth)."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audiodiff.data.builders import BuildError, MissingToolError, build_digits, build_notes, build_speech
from audiodiff.data.builders import notes as notes_module
from audiodiff.data.builders.common import hash_split
from audiodiff.data.builders.digits import DIGITS, PITCH_CLASSES, SPEEDS
from audiodiff.data.builders.notes import GM_FAMILIES, GM_PROGRAMS, midi_file, note_name
from audiodiff.data.builders.speech import HELD_OUT_VOICES, HELD_OUT_WORDS

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not Path(notes_module.DEFAULT_SOUNDFONT).is_file(),
    reason="fluidsynth or the FluidR3_GM soundfont not installed",
)

NUM_DIGITS = 30
NOTE_ARGS = dict(programs=[0, 33], pitches=[48, 60, 72], velocities=[50, 127])


def read_manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def fake_tool(folder: Path, name: str, script: str) -> None:
    """Write an executable shell script `folder/name`."""
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    report = build_digits(folder, num_clips=NUM_DIGITS, seed=3, workers=2, progress=False)
    return folder, report, read_manifest(folder)


@pytest.fixture(scope="module")
def notes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("notes")
    report = build_notes(folder, **NOTE_ARGS, seed=0, workers=2, progress=False)
    return folder, report, read_manifest(folder)


# --------------------------------------------------------------------------------------------
# Digits


@needs_espeak
def test_digits_writes_the_promised_clips_and_splits(digits):
    folder, report, rows = digits
    assert report.total == len(rows) == NUM_DIGITS and not report.skipped
    assert report.per_split == {"test": 3, "train": 24, "valid": 3}
    assert all((folder / row["path"]).is_file() for row in rows)
    info = json.loads((folder / "info.json").read_text())
    assert info["builder"] == "digits" and info["args"]["num_clips"] == NUM_DIGITS


@needs_espeak
def test_digits_are_mono_16k_exactly_one_second(digits):
    folder, _, rows = digits
    for row in rows:
        info = soundfile.info(str(folder / row["path"]))
        assert (info.channels, info.samplerate, info.frames, info.subtype) == (1, 16000, 16000, "PCM_16")


@needs_espeak
def test_digits_labels_are_balanced_digit_words(digits):
    _, report, rows = digits
    assert {row["label"] for row in rows} == set(DIGITS)
    assert max(report.per_label.values()) - min(report.per_label.values()) <= 1


@needs_espeak
def test_digits_splits_are_disjoint_by_voice(digits):
    _, _, rows = digits
    voices = {split: set() for split in ("train", "valid", "test")}
    for row in rows:
        voices[row["split"]].add(row["voice"])
    assert not voices["train"] & voices["valid"]
    assert not voices["train"] & voices["test"]
    assert not voices["valid"] & voices["test"]


@needs_espeak
def test_digits_caption_states_every_fact(digits):
    _, _, rows = digits
    for row in rows:
        for fact in (row["label"], row["speed"], row["pitch_class"], row["gender"], row["accent"]):
            assert fact in row["text"], (fact, row["text"])


@needs_espeak
def test_digits_word_classes_follow_the_numbers(digits):
    _, _, rows = digits
    for row in rows:
        assert row["speed"] == next(word for edge, word in SPEEDS if row["rate"] < edge)
        assert row["pitch_class"] == next(word for edge, word in PITCH_CLASSES if row["pitch"] < edge)
        assert row["gender"] in ("male", "female") and 0 <= row["pitch"] <= 99


@needs_espeak
def test_digits_speech_is_trimmed_and_centred(digits):
    folder, _, rows = digits
    for row in rows[:10]:
        audio, rate = soundfile.read(str(folder / row["path"]), dtype="float32")
        loud = np.flatnonzero(np.abs(audio) > 1e-3)
        assert 0.9 <= np.abs(audio).max() <= 0.96  # peak normalised
        assert (loud[-1] - loud[0]) / rate == pytest.approx(min(row["seconds"], 1.0), abs=0.05)
        assert loud[0] == pytest.approx(rate - loud[-1], abs=0.03 * rate)  # centred window


@needs_espeak
def test_digits_same_seed_gives_identical_manifest_and_audio(digits, tmp_path):
    folder, _, rows = digits
    build_digits(tmp_path, num_clips=NUM_DIGITS, seed=3, workers=1, progress=False)
    assert (tmp_path / "manifest.jsonl").read_bytes() == (folder / "manifest.jsonl").read_bytes()
    for row in rows:
        assert (tmp_path / row["path"]).read_bytes() == (folder / row["path"]).read_bytes()


@needs_espeak
def test_digits_other_seed_gives_other_clips(digits, tmp_path):
    _, _, rows = digits
    build_digits(tmp_path, num_clips=10, seed=4, progress=False)
    other = read_manifest(tmp_path)
    facts = [(row["voice"], row["rate"], row["pitch"]) for row in other]
    assert facts != [(row["voice"], row["rate"], row["pitch"]) for row in rows[:10]]


@needs_espeak
def test_digits_failed_and_silent_renders_are_skipped_and_counted(tmp_path, monkeypatch):
    real = shutil.which("espeak-ng")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # "three" fails; "four" is rendered at amplitude 0 (silence); everything else is real.
    fake_tool(bin_dir, "espeak-ng", f'case "$*" in *three*) echo boom >&2; exit 1;; esac\n'
              f'case "$*" in *four*) exec {real} "$@" -a 0;; esac\nexec {real} "$@"\n')  # fmt: skip
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    report = build_digits(tmp_path / "out", num_clips=20, progress=False)
    assert report.skipped == {"espeak-ng failed": 2, "silent render": 2}
    assert report.total == 16 and "three" not in report.per_label and "four" not in report.per_label
    assert "boom" in report.skipped_examples["espeak-ng failed"][0]
    assert "skipped 4" in str(report)


def test_digits_missing_espeak_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError, match="apt-get install espeak-ng"):
        build_digits(tmp_path / "out", num_clips=5, progress=False)


@needs_espeak
def test_existing_build_is_not_overwritten_by_default(tmp_path):
    build_digits(tmp_path, num_clips=3, progress=False)
    with pytest.raises(BuildError, match="overwrite=True"):
        build_digits(tmp_path, num_clips=3, progress=False)
    report = build_digits(tmp_path, num_clips=2, progress=False, overwrite=True)
    assert report.total == 2 and len(list((tmp_path / "wavs").glob("*.wav"))) == 2


# --------------------------------------------------------------------------------------------
# Speech (many voices, for vocoders)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    folder = tmp_path_factory.mktemp("speech")
    report = build_speech(folder, num_clips=24, seed=1, seconds=1.5, workers=2, progress=False)
    return folder, report, read_manifest(folder)


@needs_espeak
def test_speech_speaks_many_languages_as_fixed_length_clips(speech):
    folder, report, rows = speech
    assert report.total == len(rows) == 24 and report.skipped == {}
    assert len({row["label"] for row in rows}) == 24  # languages in turn
    for row in rows[:4]:
        audio, rate = soundfile.read(folder / row["path"])
        assert rate == 16_000 and audio.shape == (24_000,) and 0.9 < np.abs(audio).max() <= 0.96


@needs_espeak
def test_speech_never_renders_the_benchmarks_held_out_voices_words_or_english(speech):
    _, _, rows = speech
    held = {code.split("-")[0] for code in HELD_OUT_VOICES} | {"en"}
    assert not {row["label"].split("-")[0] for row in rows} & held
    assert not {word for row in rows for word in row["text"].split()} & set(HELD_OUT_WORDS)


@needs_espeak
def test_speech_splits_are_disjoint_by_language_and_the_seed_repeats(speech, tmp_path):
    folder, _, rows = speech
    assert all(row["split"] == hash_split(row["label"], 1) for row in rows)
    build_speech(tmp_path, num_clips=3, seed=1, seconds=1.5, progress=False)
    again = read_manifest(tmp_path)
    assert again == rows[:3]
    assert (
        soundfile.read(tmp_path / again[0]["path"])[0].tobytes()
        == soundfile.read(folder / rows[0]["path"])[0].tobytes()
    )


# --------------------------------------------------------------------------------------------
# Notes


@needs_fluidsynth
def test_notes_writes_one_clip_per_program_pitch_velocity(notes):
    folder, report, rows = notes
    assert report.total == len(rows) == 2 * 3 * 2 and not report.skipped
    combos = {(row["program"], row["pitch"], row["velocity"]) for row in rows}
    programs, pitches, velocities = NOTE_ARGS["programs"], NOTE_ARGS["pitches"], NOTE_ARGS["velocities"]
    assert combos == {(p, n, v) for p in programs for n in pitches for v in velocities}
    for row in rows:
        info = soundfile.info(str(folder / row["path"]))
        assert (info.channels, info.samplerate, info.frames) == (1, 16000, 16000)


@needs_fluidsynth
def test_notes_fields_name_the_instrument_and_split_by_hash(notes):
    _, _, rows = notes
    for row in rows:
        assert row["instrument"] == GM_PROGRAMS[row["program"]]
        assert row["label"] == row["family"] == GM_FAMILIES[row["program"] // 8]
        assert row["note"] == note_name(row["pitch"])
        assert row["split"] == hash_split(f"{row['program']}:{row['pitch']}:{row['velocity']}", 0)
    assert {row["family"] for row in rows} == {"keyboard", "bass"}


@needs_fluidsynth
def test_notes_caption_states_every_fact(notes):
    _, _, rows = notes
    for row in rows:
        for fact in (row["family"], row["note"], row["dynamic"], row["instrument"].lower()):
            assert fact in row["text"], (fact, row["text"])


@needs_fluidsynth
def test_piano_note_sounds_at_its_midi_pitch(notes):
    folder, _, rows = notes
    row = next(r for r in rows if (r["program"], r["pitch"], r["velocity"]) == (0, 60, 127))
    audio, rate = soundfile.read(str(folder / row["path"]), dtype="float32")
    spectrum = np.abs(np.fft.rfft(audio[: rate // 2] * np.hanning(rate // 2), 1 << 17))
    freqs = np.fft.rfftfreq(1 << 17, 1 / rate)
    band = (freqs >= 100) & (freqs <= 800)  # for a piano C4 the fundamental is the strongest peak here
    f0 = freqs[band][np.argmax(spectrum[band])]
    assert abs(1200 * np.log2(f0 / 261.6256)) < 30


@needs_fluidsynth
def test_notes_start_at_once_and_keep_velocity_loudness(notes):
    folder, _, rows = notes
    peaks = {}
    for row in rows:
        audio, _ = soundfile.read(str(folder / row["path"]), dtype="float32")
        assert np.flatnonzero(np.abs(audio) > 1e-3)[0] < 0.02 * 16000  # leading silence trimmed
        peaks[(row["program"], row["pitch"], row["velocity"])] = np.abs(audio).max()
    for program in NOTE_ARGS["programs"]:
        assert max(v for k, v in peaks.items() if k[0] == program) == pytest.approx(0.95, abs=0.01)
        for pitch in NOTE_ARGS["pitches"]:
            assert peaks[(program, pitch, 127)] > 1.5 * peaks[(program, pitch, 50)]


@needs_fluidsynth
def test_notes_same_arguments_give_identical_audio(tmp_path):
    args = dict(programs=[24], pitches=[55, 67], velocities=[90], progress=False)
    build_notes(tmp_path / "a", **args)
    build_notes(tmp_path / "b", **args)
    assert (tmp_path / "a/manifest.jsonl").read_bytes() == (tmp_path / "b/manifest.jsonl").read_bytes()
    for row in read_manifest(tmp_path / "a"):
        assert (tmp_path / "a" / row["path"]).read_bytes() == (tmp_path / "b" / row["path"]).read_bytes()


@needs_fluidsynth
def test_notes_failed_render_is_skipped_and_counted(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_tool(bin_dir, "fluidsynth", "echo 'synth exploded' >&2\nexit 3\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    report = build_notes(tmp_path / "out", programs=[0], pitches=[60, 62], velocities=[100], progress=False)
    assert report.total == 0 and report.skipped == {"fluidsynth failed": 2}
    assert "synth exploded" in report.skipped_examples["fluidsynth failed"][0]


def test_notes_missing_fluidsynth_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError, match="apt-get install fluidsynth"):
        build_notes(tmp_path / "out", progress=False)


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed")
def test_notes_missing_default_soundfont_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(notes_module, "DEFAULT_SOUNDFONT", str(tmp_path / "absent.sf2"))
    with pytest.raises(MissingToolError, match="fluid-soundfont-gm"):
        build_notes(tmp_path / "out", progress=False)


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed")
def test_notes_rejects_a_file_that_is_not_a_soundfont(tmp_path):
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"not a soundfont")
    with pytest.raises(BuildError, match="fake.sf2: not a SoundFont 2 file"):
        build_notes(tmp_path / "out", soundfont=fake, progress=False)


def test_notes_rejects_release_longer_than_the_clip(tmp_path):
    with pytest.raises(ValueError, match="release=1.5"):
        build_notes(tmp_path, seconds=1.0, release=1.5, progress=False)


def test_midi_file_is_a_standard_format0_file():
    data = midi_file(program=24, notes=[(60, 100), (64, 80)], seconds=1.0, release=0.25)
    assert data[:4] == b"MThd" and data[14:18] == b"MTrk"
    assert int.from_bytes(data[18:22], "big") == len(data) - 22
    assert data.endswith(b"\xff\x2f\x00") and bytes([0xC0, 24]) in data


def test_note_names_use_scientific_pitch():
    assert [note_name(pitch) for pitch in (21, 60, 61, 69, 108)] == ["A0", "C4", "C#4", "A4", "C8"]
