"""The builders of real recordings from Debian packages: speech (`data voices`) and game music
(`data music`), on small package trees made here (no package needs to be installed; ffmpeg does)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audiodiff.data.builders import BuildError, MissingToolError, build_music, build_voices
from audiodiff.data.builders.music import work_of
from audiodiff.data.builders.real import licence_in_text

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
    reason="ffmpeg/ffprobe not installed (`apt-get install ffmpeg`): both builders decode with it",
)

DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2003-2010, Allison Smith
License: CC-BY-SA-3.0

Files: ru-*
Copyright: 2010, Maxim
License: CC-BY-3.0
"""
GPL = "This program is free software; you can redistribute it under the terms of the GNU General Public License\n" \
      "as published by the Free Software Foundation; either version 2 of the License, or (at your option) any later version.\n"  # fmt: skip


def read_manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]


def speech_like(seconds: float, rate: int, seed: int, pause_at: float | None = None) -> np.ndarray:
    """Voiced syllables (harmonics with a moving pitch, four per second) over a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 140 + 40 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 30))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    audio = 0.2 * voiced * envelope + 0.02 * rng.standard_normal(t.size)
    if pause_at is not None:
        audio[(t > pause_at) & (t < pause_at + 0.4)] = 0.0
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    return (audio * fade).astype(np.float32)


def g722(wav: Path, out: Path) -> None:
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-i", str(wav), "-ar", "16000", "-ac", "1", "-acodec", "g722", "-f", "g722", str(out)],
                   check=True)  # fmt: skip


def asterisk_prompt(folder: Path, name: str, audio: np.ndarray, scratch: Path) -> None:
    path = folder / f"{name}.g722"
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(scratch), audio, 16_000)
    g722(scratch, path)


@pytest.fixture(scope="module")
def voice_trees(tmp_path_factory) -> dict[str, Path]:
    """Asterisk prompts of five speakers (with bad files among Allison's), festvox-ru's recordings
    (with bad ones) and a copyright file and transcripts per package."""
    base = tmp_path_factory.mktemp("voice_trees")
    sounds, festival, doc, scratch = base / "sounds", base / "festival", base / "doc", base / "scratch.wav"
    folders = {"en_US_f_Allison": ("en", ["hello", "digits/1"]), "es_MX_f_Allison": ("es", ["hola"]),
               "fr_CA_f_June": ("fr", ["bonjour"]), "it_IT_m_Carlo": ("it", ["ciao"]), "ru_RU_f_IvrvoiceRU": ("ru", ["privet"])}  # fmt: skip
    for seed, (folder, (code, names)) in enumerate(folders.items()):
        for name in names:
            asterisk_prompt(sounds / folder, name, speech_like(1.2, 16_000, seed), scratch)
        package = f"asterisk-core-sounds-{code}-g722"
        (doc / package).mkdir(parents=True)
        (doc / package / "copyright").write_text(DEP5)
        (doc / f"asterisk-core-sounds-{code}").mkdir()
        lines = "".join(f"{name}: {name.capitalize()}, said by a speaker.\n" for name in names)
        with gzip.open(
            doc / f"asterisk-core-sounds-{code}" / f"core-sounds-{code}.txt.gz", "wt", encoding="utf-8"
        ) as handle:
            handle.write(f"; Core Asterisk Sounds\n\n{lines}long: A long prompt with a pause in it.\n")
    allison = sounds / "en_US_f_Allison"
    asterisk_prompt(allison, "long", speech_like(8.0, 16_000, 7, pause_at=4.5), scratch)
    asterisk_prompt(allison, "quiet", np.zeros(16_000, dtype=np.float32), scratch)
    asterisk_prompt(
        allison, "beep", 0.5 * np.sin(2 * np.pi * 1000 * np.arange(8000) / 16_000).astype(np.float32), scratch
    )
    soundfile.write(str(allison / "wrongly-named.g722"), speech_like(1.0, 16_000, 9), 16_000, format="WAV")
    (allison / "gone.g722").symlink_to(allison / "nowhere.g722")
    corpus = festival / "russian" / "msu_ru_nsh_clunits"
    (corpus / "wav").mkdir(parents=True)
    (corpus / "etc").mkdir()
    soundfile.write(str(corpus / "wav" / "ru_0001.wav"), speech_like(2.0, 16_000, 11), 16_000)
    soundfile.write(str(corpus / "wav" / "ru_0002.wav"), np.sign(speech_like(2.0, 16_000, 12)) * 1.0, 16_000)  # clipped
    soundfile.write(str(corpus / "wav" / "ru_0003.wav"), np.zeros(32_000, dtype=np.float32), 16_000)  # silent
    (corpus / "wav" / "ru_0004.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(64))  # corrupt
    (corpus / "etc" / "txt.done.data").write_text('( ru_0001 "Дом и с+ад." )\n', encoding="utf-8")
    (doc / "festvox-ru").mkdir()
    (doc / "festvox-ru" / "copyright").write_text("Format: x\n\nFiles: *\nCopyright: 2005 N\nLicense: BSD-like\n")
    for voice in ("english/kal_diphone", "english/ked_diphone"):
        (festival / voice).mkdir(parents=True)
    for package in ("festvox-kallpc16k", "festvox-kdlpc16k"):
        (doc / package).mkdir()
        (doc / package / "copyright").write_text(
            "Permission is hereby granted, free of charge, to use and distribute this\n"
        )
    return {"asterisk_root": sounds, "festival_root": festival, "doc_root": doc}


@pytest.fixture(scope="module")
def fake_festival(tmp_path_factory) -> Path:
    """A `text2wave` that writes speech-like audio at 16 kHz, longer for longer texts."""
    folder = tmp_path_factory.mktemp("bin")
    script = folder / "text2wave"
    script.write_text(f"""#!{shutil.which("python3") or "/usr/bin/python3"}
import sys, numpy as np, soundfile
text = open(sys.argv[3], encoding="latin-1").read()
t = np.arange(int((0.3 + 0.06 * len(text)) * 16000)) / 16000
audio = 0.3 * np.sin(2 * np.pi * 150 * t) * np.sin(2 * np.pi * 3 * t) ** 2 + 0.01 * np.sin(2 * np.pi * 5000 * t)
soundfile.write(sys.argv[sys.argv.index("-o") + 1], audio.astype(np.float32), 16000)
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder


SPEAKERS = ["allison", "june", "carlo", "ivrvoice_ru", "msu_nsh", "kal", "ked"]


@pytest.fixture(scope="module")
def voices(voice_trees, fake_festival, tmp_path_factory) -> tuple[Path, object]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{fake_festival}{os.pathsep}{os.environ['PATH']}")
        out = tmp_path_factory.mktemp("voices")
        report = build_voices(out, SPEAKERS, festival_clips=3, workers=2, progress=False, **voice_trees)
    return out, report


def test_voices_label_is_the_speaker_and_allison_is_one_speaker_in_two_languages(voices):
    rows = read_manifest(voices[0])
    assert {row["label"] for row in rows} == set(SPEAKERS)
    allison = [row for row in rows if row["label"] == "allison"]
    assert {row["language"] for row in allison} == {"en-US", "es-MX"}
    assert all(row["speaker"] == row["label"] for row in rows)


def test_voices_held_out_speakers_are_never_in_train(voices):
    rows = read_manifest(voices[0])
    speakers = {
        split: {row["speaker"] for row in rows if row["split"] == split} for split in ("train", "valid", "test")
    }
    assert speakers["test"] == {"ivrvoice_ru", "kal"} and speakers["valid"] == {"carlo"}
    assert not speakers["train"] & (speakers["test"] | speakers["valid"])
    assert {"allison", "june", "msu_nsh", "ked"} <= speakers["train"]


def test_voices_rows_carry_provenance_and_say_language_and_voice(voices):
    rows = read_manifest(voices[0])
    for row in rows:
        assert {"package", "package_version", "original_path", "licence", "original_rate", "original_channels"} <= set(
            row
        )
        assert row["sample_rate"] == 16_000 and row["channels"] == 1 and isinstance(row["package_version"], str)
    hello = next(row for row in rows if row["original_path"].endswith("en_US_f_Allison/hello.g722"))
    assert hello["package"] == "asterisk-core-sounds-en-g722" and hello["licence"] == "CC-BY-SA-3.0"
    assert (
        hello["original_rate"] == 16_000
        and hello["kind"] == "recorded"
        and hello["transcript"] == "Hello, said by a speaker."
    )
    assert "American English" in hello["text"] and "Allison" in hello["text"] and "recorded" in hello["text"]
    privet = next(row for row in rows if row["speaker"] == "ivrvoice_ru")
    assert privet["licence"] == "CC-BY-3.0"  # the copyright file's Russian stanza
    corpus = next(row for row in rows if row["original_path"].endswith("ru_0001.wav"))
    assert corpus["licence"] == "BSD-like" and corpus["transcript"] == "Дом и сад."  # stress mark dropped


def test_voices_festival_clips_are_marked_synthetic(voices):
    rows = read_manifest(voices[0])
    kal = [row for row in rows if row["speaker"] == "kal"]
    assert len(kal) == 3 and all(row["kind"] == "diphone" and "diphone synthesis" in row["text"] for row in kal)
    assert all(row["transcript"].endswith(".") and row["licence"].startswith("festvox") for row in kal)
    assert {row["kind"] for row in rows if row["package"].startswith("asterisk")} == {"recorded"}


def test_voices_bad_files_are_skipped_and_counted_by_reason(voices):
    skipped = voices[1].skipped
    assert skipped == {
        "missing file": 1,
        "format differs from its name (a .g722 holding WAV)": 1,
        "silent": 2,  # Allison's quiet prompt and a silent recording
        "not speech (an Asterisk tone or silence prompt)": 1,
        "clipped for most of its length": 1,
        "unreadable audio": 1,
    }


def test_voices_long_utterance_is_cut_at_its_pause(voices):
    rows = read_manifest(voices[0])
    pieces = [row for row in rows if row["original_path"].endswith("long.g722")]
    assert [row["piece"] for row in pieces] == ["1/2", "2/2"]
    assert all(row["seconds"] <= 6.0 and "transcript" not in row for row in pieces)
    assert 4.0 < pieces[0]["seconds"] < 4.8  # ends at the pause (4.5-4.9 s), not at the 6 s limit
    audio, rate = soundfile.read(str(voices[0] / pieces[0]["path"]))
    assert rate == 16_000 and audio.size / rate == pytest.approx(pieces[0]["seconds"])


def test_voices_same_packages_give_the_same_manifest_and_audio(
    voices, voice_trees, fake_festival, tmp_path, monkeypatch
):
    monkeypatch.setenv("PATH", f"{fake_festival}{os.pathsep}{os.environ['PATH']}")
    build_voices(tmp_path, SPEAKERS, festival_clips=3, workers=1, progress=False, **voice_trees)
    assert (tmp_path / "manifest.jsonl").read_bytes() == (voices[0] / "manifest.jsonl").read_bytes()
    for row in read_manifest(tmp_path):
        assert (tmp_path / row["path"]).read_bytes() == (voices[0] / row["path"]).read_bytes()
    assert (tmp_path / "balance.png").stat().st_size > 0


def test_voices_missing_package_is_one_line_naming_it(voice_trees, tmp_path):
    trees = {**voice_trees, "asterisk_root": tmp_path / "nothing"}
    with pytest.raises(MissingToolError) as error:
        build_voices(tmp_path / "out", ["june"], progress=False, **trees)
    message = str(error.value)
    assert "\n" not in message and "asterisk-core-sounds-fr-g722" in message and "apt-get install" in message


def test_voices_with_no_usable_clip_fail(tmp_path, voice_trees):
    sounds = tmp_path / "sounds" / "fr_CA_f_June"
    sounds.mkdir(parents=True)
    (sounds / "empty.g722").write_bytes(b"")
    with pytest.raises(BuildError, match="no usable clip"):
        build_voices(
            tmp_path / "out", ["june"], progress=False, **{**voice_trees, "asterisk_root": tmp_path / "sounds"}
        )


# --------------------------------------------------------------------------------------------
# music


def music_like(seconds: float, rate: int, channels: int, seed: int, low_pass: bool = False) -> np.ndarray:
    """Chords with a beat and a noise floor reaching the top of the band (or not, `low_pass`)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    notes = 110 * 2 ** (rng.integers(0, 24, 3) / 12)
    tone = sum(np.sin(2 * np.pi * f * t) for f in notes) / 3 * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t) ** 2)
    noise = 0.05 * rng.standard_normal((channels, t.size))
    if low_pass:  # nothing above ~4 kHz
        kernel = np.sinc(2 * 4000 / rate * np.arange(-64, 65)) * np.hanning(129)
        noise = np.stack([np.convolve(channel, kernel / kernel.sum(), mode="same") for channel in noise])
    return (0.4 * tone + noise).T.astype(np.float32)


@pytest.fixture(scope="module")
def music_trees(tmp_path_factory) -> dict[str, Path]:
    """Three packages' worth of short tracks: Wesnoth-like Oggs (with bad ones), Warzone-like
    albums (Opus at 48 kHz, a licence file with an exception), a Nexuiz-like .pk3."""
    base = tmp_path_factory.mktemp("music_trees")
    games, doc = base / "games", base / "doc"
    wesnoth = games / "wesnoth/1.16/data/core/music"
    wesnoth.mkdir(parents=True)
    for seed, name in enumerate(["alpha", "beta", "beta-old", "gamma", "delta", "epsilon"]):
        soundfile.write(
            str(wesnoth / f"{name}.ogg"), music_like(9.0, 44_100, 2, seed), 44_100, format="OGG", subtype="VORBIS"
        )
    soundfile.write(
        str(wesnoth / "silence.ogg"), np.zeros((44_100 * 3, 2), np.float32), 44_100, format="OGG", subtype="VORBIS"
    )
    soundfile.write(
        str(wesnoth / "dull.ogg"), music_like(6.0, 44_100, 2, 9, low_pass=True), 44_100, format="OGG", subtype="VORBIS"
    )
    soundfile.write(str(wesnoth / "flac-inside.ogg"), music_like(6.0, 44_100, 2, 10), 44_100, format="FLAC")
    (wesnoth / "broken.ogg").write_bytes(b"OggS" + bytes(200))
    (wesnoth / "song.xm").write_bytes(b"Extended Module: song")
    albums = games / "warzone2100/music/albums"
    for album, names in {
        "first": ["track1", "track2"],
        "second": ["track1_enhanced", "track4", "track5", "gone"],
    }.items():
        (albums / album).mkdir(parents=True)
        entries = [{"filename": f"{name}.opus", "title": name.title(), "author": "Someone"} for name in names]
        (albums / album / "album.json").write_text(json.dumps({"title": f"Album {album}", "tracks": entries}))
        for seed, name in enumerate(names):
            if name != "gone":
                soundfile.write(
                    str(albums / album / f"{name}.opus"),
                    music_like(7.0, 48_000, 2, 20 + seed),
                    48_000,
                    format="OGG",
                    subtype="OPUS",
                )
    (albums / "second" / "license.txt").write_text(
        "For all tracks except track1_enhanced:\n\nCC-BY-SA-3.0 (or, at your discretion, any later version)\n\n"
        "Alternatively under the GNU General Public License Version 2 or later.\n\n"
        "track1_enhanced is derived from track1 and is licensed under the GNU General Public License Version 2 or later.\n"
    )  # fmt: skip
    (games / "nexuiz/data").mkdir(parents=True)
    with zipfile.ZipFile(games / "nexuiz/data/music.pk3", "w") as archive:
        for seed, name in enumerate(["one", "two", "three", "four"]):
            scratch = base / f"{name}.ogg"
            soundfile.write(str(scratch), music_like(6.0, 44_100, 2, 30 + seed), 44_100, format="OGG", subtype="VORBIS")
            archive.write(scratch, f"sound/cdtracks/{name}.ogg")
    for package in ("wesnoth-1.16-music", "warzone2100-music", "nexuiz-music"):
        (doc / package).mkdir(parents=True)
        (doc / package / "copyright").write_text(GPL)
    return {"games_root": games, "doc_root": doc}


@pytest.fixture(scope="module")
def music(music_trees, tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("music")
    return out, build_music(out, seconds=2.0, max_clips_per_track=3, workers=2, progress=False, **music_trees)


def test_music_clips_are_44k_stereo_of_the_chosen_length(music):
    rows = read_manifest(music[0])
    assert rows and all(row["sample_rate"] == 44_100 and row["channels"] == 2 and row["seconds"] == 2.0 for row in rows)
    info = soundfile.info(str(music[0] / rows[0]["path"]))
    assert (info.samplerate, info.channels, info.frames) == (44_100, 2, 88_200)
    assert {row["original_rate"] for row in rows if row["package"] == "warzone2100-music"} == {48_000}  # resampled once


def test_music_caps_the_clips_of_each_track(music):
    rows = read_manifest(music[0])
    per_track = {row["track"]: sum(other["track"] == row["track"] for other in rows) for row in rows}
    assert max(per_track.values()) == 3  # a 9 s track holds four 2 s windows
    starts = sorted(row["start_seconds"] for row in rows if row["track"] == "wesnoth/alpha")
    assert starts == [0.0, 4.0, 6.0]  # three of the four windows, spread over the track


def test_music_held_out_tracks_share_no_work_with_train(music):
    rows = read_manifest(music[0])
    works = {
        split: {(row["package"], row["work"]) for row in rows if row["split"] == split}
        for split in ("train", "valid", "test")
    }
    assert (
        not works["train"] & works["test"]
        and not works["train"] & works["valid"]
        and not works["valid"] & works["test"]
    )
    split_of = {row["track"]: row["split"] for row in rows}
    assert split_of["wesnoth/beta"] == split_of["wesnoth/beta-old"]
    assert split_of["warzone2100/first/track1"] == split_of["warzone2100/second/track1_enhanced"]
    for split in ("train", "valid", "test"):  # every package in every split
        assert {row["label"] for row in rows if row["split"] == split} == {"wesnoth", "warzone2100", "nexuiz"}


def test_music_rows_carry_provenance(music):
    rows = read_manifest(music[0])
    for row in rows:
        assert {
            "package",
            "package_version",
            "original_path",
            "licence",
            "original_rate",
            "original_channels",
            "track",
            "album",
        } <= set(row)
        assert row["original_channels"] == 2 and row["label"] in {"wesnoth", "warzone2100", "nexuiz"}
    licence = {row["track"]: row["licence"] for row in rows}
    assert licence["wesnoth/alpha"] == "GPL-2+" and licence["warzone2100/first/track1"] == "GPL-2+"
    assert licence["warzone2100/second/track4"] == "CC-BY-SA-3.0+ or GPL-2+"
    assert licence["warzone2100/second/track1_enhanced"] == "GPL-2+"  # its own paragraph
    nexuiz = next(row for row in rows if row["label"] == "nexuiz")
    assert nexuiz["original_path"].endswith("music.pk3:sound/cdtracks/" + nexuiz["track"].split("/")[-1] + ".ogg")
    track4 = next(row for row in rows if row["track"] == "warzone2100/second/track4")
    assert (
        track4["title"] == "Track4"
        and track4["artist"] == "Someone"
        and track4["text"] == "game music from Warzone 2100 (Album second): Track4, by Someone"
    )


def test_music_bad_tracks_are_skipped_and_counted_by_reason(music):
    skipped = music[1].skipped
    assert skipped.pop("silent clip", 0) >= 0  # the synthetic tracks have no silent window, but fades might
    assert skipped == {
        "silent": 1,
        "not full-band (nothing above 11 kHz)": 1,
        "format differs from its name (a .ogg holding flac/flac)": 1,
        "unreadable audio": 1,
        "tracker module (not a recording)": 1,
        "missing file": 1,
    }
    info = json.loads((music[0] / "info.json").read_text())
    assert info["tracks"]["wesnoth/dull"]["bandwidth_hz"] < 11_000 and "skipped" in info["tracks"]["wesnoth/dull"]


def test_music_same_packages_give_the_same_manifest(music, music_trees, tmp_path):
    build_music(tmp_path, seconds=2.0, max_clips_per_track=3, workers=1, progress=False, **music_trees)
    assert (tmp_path / "manifest.jsonl").read_bytes() == (music[0] / "manifest.jsonl").read_bytes()
    row = read_manifest(tmp_path)[-1]
    assert (tmp_path / row["path"]).read_bytes() == (music[0] / row["path"]).read_bytes()
    assert (tmp_path / "balance.png").stat().st_size > 0


def test_music_missing_package_is_one_line_naming_it(music_trees, tmp_path):
    with pytest.raises(MissingToolError) as error:
        build_music(
            tmp_path / "out",
            packages=["nexuiz-music"],
            progress=False,
            games_root=tmp_path,
            doc_root=music_trees["doc_root"],
        )
    message = str(error.value)
    assert "\n" not in message and "nexuiz-music" in message and "apt-get install nexuiz-music" in message


def test_variants_of_a_track_are_one_work():
    stems = {"track1", "track3", "track12", "track3_enhanced", "frantic", "frantic-old", "defeat", "defeat2",
             "sixtyfour_", "sixtyfour_revisited", "menu_enhanced", "track2"}  # fmt: skip
    assert work_of("track3_enhanced", stems) == work_of("track3", stems) == "track3"
    assert work_of("frantic-old", stems) == "frantic" and work_of("defeat2", stems) == "defeat"
    assert work_of("sixtyfour_revisited", stems) == work_of("sixtyfour_", stems) == "sixtyfour"
    assert work_of("track12", stems) == "track12" and work_of("track2", stems) == "track2"
    assert work_of("menu_enhanced", stems) == "menu_enhanced"  # the original is not in the package


def test_licences_are_read_from_free_form_text():
    assert licence_in_text(GPL) == "GPL-2+"
    assert (
        licence_in_text(
            "under the GNU Lesser General Public License as published; either version 2 of the License, or (at your option) any later"
        )
        == "LGPL-2+"
    )
    assert licence_in_text("no licence here") is None
