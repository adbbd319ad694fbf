"""`audiodiff data drums` on small fake package trees made here: labels, velocity layers,
descriptors, provenance, the skips of bad input, splits by recorded kit, the one-line error of a
missing package. The AVL part renders a tiny soundfont written here, so it needs fluidsynth."""

from __future__ import annotations

import json
import math
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audiodiff.cli import main
from audiodiff.data.builders import BuildError, MissingToolError, build_drums
from audiodiff.data.builders.drums import label_for
from audiodiff.data.builders.real import assign_group_splits, describe, read_soundfont

RATE = 44_100
needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None, reason="fluidsynth not installed: the avl source renders through it"
)


def hit(seed: int, seconds: float = 0.4, rate: int = RATE, channels: int = 1, amp: float = 0.5) -> np.ndarray:
    """A decaying tone plus noise, different for every seed (so no two fake samples share a recording)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = np.sin(2 * np.pi * (80 + 53 * seed) * t) + 0.3 * rng.standard_normal(t.size)
    audio = amp * tone / np.abs(tone).max() * np.exp(-t / 0.08)
    return np.stack([audio, 0.8 * audio][:channels], axis=1).astype(np.float32)


def kit_xml(
    name: str, instruments: dict[str, list[tuple[float, float, str]]], licence: str = "", ns: bool = True
) -> str:
    parts = []
    for instrument, layers in instruments.items():
        rows = "".join(f"<layer><filename>{f}</filename><min>{lo}</min><max>{hi}</max></layer>" for lo, hi, f in layers)
        parts.append(f"<instrument><id>0</id><name>{instrument}</name>{rows}</instrument>")
    xmlns = ' xmlns="http://www.hydrogen-music.org/drumkit"' if ns else ""
    return (f'<?xml version="1.0"?><drumkit_info{xmlns}><name>{name}</name><license>{licence}</license>'
            f"<instrumentList>{''.join(parts)}</instrumentList></drumkit_info>")  # fmt: skip


def make_kit(root: Path, folder: str, xml: str, files: dict[str, np.ndarray], rate: int = RATE, **write) -> None:
    (root / folder).mkdir(parents=True)
    (root / folder / "drumkit.xml").write_text(xml)
    for name, audio in files.items():
        soundfile.write(str(root / folder / name), audio, rate, **write)


def fake_packages(root: Path, seed: int = 0) -> dict[str, Path]:
    """Hydrogen kits (one of them The Black Pearl, one broken, one full of bad samples), Sonic Pi
    samples and the Debian copyright files, under `root`."""
    hydrogen, sonicpi, docs = root / "drumkits", root / "samples", root / "doc"
    two_layers = {"Pearl Kick": [(0, 0.5, "kick-soft.wav"), (0.5, 1, "kick-hard.wav")],
                  "Sabian Hat Closed": [(0, 0.5, "hat-soft.wav"), (0.5, 1, "hat-hard.wav")]}  # fmt: skip
    make_kit(hydrogen, "The Black Pearl 1.0", kit_xml("The Black Pearl 1.0", two_layers, "GPL"),
             {f: hit(k + 1, amp=0.2 + 0.2 * k) for k, f in enumerate(["kick-soft.wav", "kick-hard.wav", "hat-soft.wav", "hat-hard.wav"])})  # fmt: skip
    for k, kit in enumerate(["KitA", "KitB", "KitC", "KitD"]):
        xml = kit_xml(kit, {"Snare": [(0, 1, "sn.flac")], "Tom Low": [(0, 1, "tom.flac")]}, ns=k % 2 == 0)
        make_kit(hydrogen, kit, xml, {"sn.flac": hit(10 + 2 * k, channels=2), "tom.flac": hit(11 + 2 * k)}, rate=48_000)
    # KitA's snare again, 6 dB down, as a wav: the same recording, so CopyKit goes where KitA goes
    copy = soundfile.read(str(hydrogen / "KitA" / "sn.flac"), dtype="float32")[0] * 0.5
    make_kit(hydrogen, "CopyKit", kit_xml("CopyKit", {"Snare Rock": [(0, 1, "s.wav")]}), {"s.wav": copy}, rate=48_000)
    bad = {"Crash": [(0, 1, "gone.wav")], "Ride": [(0, 1, "silent.wav")], "Kick": [(0, 1, "square.wav")],
           "Clap": [(0, 1, "really_flac.wav")], "Zorp": [(0, 1, "zorp.wav")]}  # fmt: skip
    t = np.arange(RATE) / RATE
    make_kit(hydrogen, "BadKit", kit_xml("BadKit", bad), {"silent.wav": np.zeros(RATE, np.float32),
             "square.wav": np.clip(10 * np.sin(2 * np.pi * 60 * t), -1, 1), "zorp.wav": hit(40)})  # fmt: skip
    soundfile.write(str(hydrogen / "BadKit" / "really_flac.wav"), hit(41), RATE, format="FLAC")
    (hydrogen / "Broken").mkdir()
    (hydrogen / "Broken" / "drumkit.xml").write_text("<drumkit_info><name>Broken</nam")
    sonicpi.mkdir()
    for k, name in enumerate(["bd_fake", "sn_fake", "drum_snare_soft", "drum_snare_hard", "elec_blip", "ambi_drone"]):
        soundfile.write(str(sonicpi / f"{name}.flac"), hit(20 + k), RATE)
    for package, stanza in (("hydrogen-drumkits", "Files: drumkits/KitA.h2drumkit\nCopyright: A\nLicense: CC0"),
                            ("sonic-pi-samples", "Files: etc/samples/bd_*\nCopyright: B\nLicense: CC0")):  # fmt: skip
        (docs / package).mkdir(parents=True)
        (docs / package / "copyright").write_text(
            f"Format: dep5\n\nFiles: *\nCopyright: X\nLicense: GPL-2+\n\n{stanza}\n"
        )
    return {"hydrogen": hydrogen, "sonicpi": sonicpi, "doc": docs}


def read_rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def drums(tmp_path_factory):
    """One build of the fake trees."""
    root = tmp_path_factory.mktemp("packages")
    trees = fake_packages(root)
    out = root / "out"
    roots = {"hydrogen": trees["hydrogen"], "sonicpi": trees["sonicpi"]}
    build_drums(out, ("hydrogen", "sonicpi"), roots, trees["doc"], workers=1, progress=False)
    return out, read_rows(out), json.loads((out / "info.json").read_text()), trees


def by_name(rows: list[dict], fragment: str) -> dict:
    return next(row for row in rows if fragment in row["original_path"])


# --------------------------------------------------------------------------------------------
# Labels


@pytest.mark.parametrize(
    "name, label",
    [("Pearl Kick", "kick"), ("c3 - bass drum 1", "kick"), ("drum_bass_hard", "kick"), ("bd_808", "kick"),
     ("Pearl Snare Rimshot", "snare"), ("PorkpieSnareEdge", "snare"), ("Pearl Side Stick", "rim"), ("Rim Click (Pearl 14x3.5)", "rim"),
     ("Hi-Hat Semiopen (Paiste 14\")", "hihat_open"), ("SabianRockHatSwis", "hihat_open"), ("Open HH", "hihat_open"),
     ("drum_cymbal_open", "hihat_open"), ("Sabian Hat Pedal", "hihat_closed"), ("drum_cymbal_pedal", "hihat_closed"),
     ("Closed HH", "hihat_closed"), ("Pearl16FloorTom", "tom"), ("SabianAA16Crash", "crash"), ("China (Paiste 18\")", "crash"),
     ("drum_splash_soft", "crash"), ("Crash/Ride Bell", "ride"), ("Paiste Bell", "ride"), ("ZildjianA24RideSh", "ride"),
     ("Hand Clap", "clap"), ("Djembe1 Slap", "percussion"), ("tabla_ghe1", "percussion"), ("Cowbell", "percussion")],
)  # fmt: skip
def test_label_rules_name_the_class(name, label):
    assert label_for(name) == (label, "")


@pytest.mark.parametrize("name", ["Snare Roll", "drum_roll", "Zap 1", "emptySample"])
def test_rolls_and_effects_are_dropped_on_purpose(name):
    label, why = label_for(name)
    assert label is None and "not a one-shot" in why


def test_an_unmatched_name_falls_back_to_the_file_name_then_is_unlabelled():
    assert label_for("redo super opaco", "snare-opaque-shot1") == ("snare", "")
    assert label_for("Zorp", "zorp")[0] is None


def test_every_clip_has_a_class_and_unlabelled_ones_are_counted(drums):
    _, rows, info, _ = drums
    assert {row["label"] for row in rows} == {"kick", "hihat_closed", "snare", "tom"}
    skipped = info["report"]["skipped"]
    assert skipped["unlabelled (no class pattern matches)"] == 2  # BadKit's Zorp, Sonic Pi's elec_blip
    assert not any("ambi_drone" in row["original_path"] for row in rows)  # not a drum prefix: never a candidate


# --------------------------------------------------------------------------------------------
# Clips and rows


def test_layers_carry_their_midi_velocity_ranges(drums):
    _, rows, _, _ = drums
    soft, hard = by_name(rows, "kick-soft.wav"), by_name(rows, "kick-hard.wav")
    assert (soft["layer"], soft["layers"], soft["velocity_min"], soft["velocity_max"]) == (0, 2, 1, 64)
    assert (hard["layer"], hard["velocity_min"], hard["velocity_max"], hard["velocity"]) == (1, 64, 127, 95)
    assert "hit hard" in hard["text"] and "The Black Pearl 1.0" in hard["text"]
    single = by_name(rows, "KitB/tom.flac")
    assert single["layer"] is None and single["velocity"] is None
    assert (by_name(rows, "drum_snare_soft")["layer"], by_name(rows, "drum_snare_hard")["layer"]) == (0, 1)


def test_clips_are_44k1_with_their_channels_and_provenance(drums):
    out, rows, _, trees = drums
    stereo = by_name(rows, "KitA/sn.flac")
    audio, rate = soundfile.read(str(out / stereo["path"]), always_2d=True)
    assert rate == stereo["sample_rate"] == RATE and audio.shape[1] == stereo["channels"] == 2
    assert (stereo["original_rate"], stereo["original_channels"]) == (48_000, 2)
    assert stereo["seconds"] == pytest.approx(audio.shape[0] / RATE, abs=1e-3)
    assert stereo["source"] == "hydrogen-drumkits" and isinstance(stereo["package_version"], str)
    assert Path(stereo["original_path"]) == trees["hydrogen"] / "KitA" / "sn.flac"
    assert stereo["licence"] == stereo["package_licence"] == "CC0"  # KitA names none: Debian's copyright stanza
    assert by_name(rows, "KitB/sn.flac")["licence"] == "GPL-2+"  # the Files: * stanza
    pearl = by_name(rows, "kick-soft.wav")
    assert pearl["licence"] == "GPL" and pearl["package_licence"] == "GPL-2+"  # the kit's own licence first
    assert by_name(rows, "bd_fake")["licence"] == "CC0" and by_name(rows, "sn_fake")["licence"] == "GPL-2+"
    for row in rows:
        assert isinstance(row["peak_db"], float) and row["decay"] > 0 and row["centroid"] > 0
        assert 0 <= row["brightness"] <= 1


def test_leading_silence_is_trimmed_and_long_clips_cut_with_a_fade(tmp_path):
    trees = fake_packages(tmp_path / "packages")
    long = np.concatenate([np.zeros(RATE // 2), np.sin(2 * np.pi * 200 * np.arange(3 * RATE) / RATE) * 0.5])
    soundfile.write(str(trees["sonicpi"] / "bd_long.flac"), long.astype(np.float32), RATE)
    build_drums(
        tmp_path / "out", ("sonicpi",), {"sonicpi": trees["sonicpi"]}, trees["doc"], max_seconds=1.0, progress=False
    )
    row = by_name(read_rows(tmp_path / "out"), "bd_long")
    audio, _ = soundfile.read(str(tmp_path / "out" / row["path"]))
    assert row["cut"] and row["seconds"] == pytest.approx(1.0, abs=1e-3)
    assert abs(audio[0]) < 0.05 and np.abs(audio[:200]).max() > 0.3  # starts at the onset
    assert np.abs(audio[-20:]).max() < 0.01  # faded out


def test_descriptors_of_a_decaying_sine():
    tau, frequency = 0.1, 1000.0
    t = np.arange(int(1.5 * RATE)) / RATE
    audio = (0.5 * np.sin(2 * np.pi * frequency * t) * np.exp(-t / tau))[None].astype(np.float32)
    numbers = describe(audio, RATE)
    assert numbers["peak_db"] == pytest.approx(20 * math.log10(0.5), abs=0.1)
    assert numbers["decay"] == pytest.approx(tau * math.log(100), abs=0.015)  # -40 dB at tau ln 100
    assert numbers["centroid"] == pytest.approx(frequency, rel=0.05)
    assert numbers["brightness"] == pytest.approx(math.log(frequency / 20) / math.log(1000), abs=0.01)


# --------------------------------------------------------------------------------------------
# Bad input


def test_bad_input_is_skipped_and_counted_with_its_reason(drums):
    _, rows, info, _ = drums
    skipped = info["report"]["skipped"]
    assert skipped["malformed drumkit.xml (kit skipped)"] == 1
    assert skipped["missing sample file"] == 1
    assert skipped["silent"] == 1
    assert skipped["clipped for most of its length"] == 1
    assert skipped["format differs from its name (a .wav holding FLAC)"] == 1
    assert not any("BadKit" in row["original_path"] for row in rows)


def test_no_usable_clip_is_an_error(tmp_path):
    make_kit(
        tmp_path / "kits", "Quiet", kit_xml("Quiet", {"Kick": [(0, 1, "k.wav")]}), {"k.wav": np.zeros(RATE, np.float32)}
    )
    with pytest.raises(BuildError, match="no usable drum clip"):
        build_drums(tmp_path / "out", ("hydrogen",), {"hydrogen": tmp_path / "kits"}, progress=False)


def test_a_missing_package_is_one_line_naming_the_install_command(tmp_path):
    with pytest.raises(MissingToolError) as error:
        build_drums(
            tmp_path / "out", ("hydrogen", "sonicpi"), {"hydrogen": tmp_path / "none", "sonicpi": tmp_path / "none"}
        )
    message = str(error.value)
    assert "\n" not in message and "apt-get install hydrogen-drumkits sonic-pi-samples" in message
    assert "scripts/setup.sh" in message
    assert not (tmp_path / "out").exists()  # nothing written before the check


def test_the_command_line_builds_and_prints_the_summary(tmp_path, capsys):
    trees = fake_packages(tmp_path / "packages")
    out = tmp_path / "out"
    argv = ["data", "drums", "--out", str(out), "--sources", "sonicpi", "--sonicpi-root", str(trees["sonicpi"]),
            "--doc-root", str(trees["doc"]), "--max-seconds", "2", "--workers", "1"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "per label: kick 1" in printed and "held out:" in printed and (out / "class_balance.png").is_file()
    assert main([*argv[:4], "--sources", "hydrogen", "--hydrogen-root", str(tmp_path / "none")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "apt-get install hydrogen-drumkits" in error


def test_an_unknown_source_lists_the_valid_ones(tmp_path):
    with pytest.raises(BuildError, match="hydrogen, sonicpi, avl"):
        build_drums(tmp_path / "out", ("hydrogen", "freesound"))


# --------------------------------------------------------------------------------------------
# Splits


def test_held_out_kits_share_nothing_with_train(drums):
    _, rows, info, _ = drums
    split_of_kit = {}
    for row in rows:
        assert split_of_kit.setdefault(row["kit_group"], row["split"]) == row["split"]
    train = {row["kit"] for row in rows if row["split"] == "train"}
    held_out = {row["kit"] for row in rows if row["split"] != "train"}
    assert held_out and not train & held_out
    assert {"valid", "test"} <= {row["split"] for row in rows}
    # CopyKit holds KitA's snare: found by its audio, the two kits are one group
    assert by_name(rows, "CopyKit/")["kit_group"] == by_name(rows, "KitA/")["kit_group"] == "copykit+kita"
    assert info["shared_recordings"][0]["kit"] in ("copykit", "kita")


def test_the_same_packages_give_the_same_build(drums, tmp_path):
    out, rows, _, trees = drums
    again = tmp_path / "again"
    build_drums(again, ("hydrogen", "sonicpi"), {"hydrogen": trees["hydrogen"], "sonicpi": trees["sonicpi"]}, trees["doc"],
                workers=2, progress=False)  # fmt: skip
    assert read_rows(again) == rows
    assert (out / "class_balance.png").stat().st_size > 1000


def test_group_splits_take_whole_groups_by_hash():
    sizes = {f"kit{k}": 10 + k for k in range(20)}
    splits = assign_group_splits(sizes, seed=0)
    assert splits == assign_group_splits(dict(reversed(sizes.items())), seed=0)
    for split in ("valid", "test"):
        held = [group for group, name in splits.items() if name == split]
        assert len(held) >= 2 and 0.1 <= sum(sizes[g] for g in held) / sum(sizes.values()) <= 0.2 + 1e-9
    assert assign_group_splits({"big": 100, "a": 5, "b": 5}, seed=0)["big"] == "train"  # past twice its share


# --------------------------------------------------------------------------------------------
# AVL soundfonts


def tiny_soundfont(
    path: Path, samples: list[np.ndarray], velocity_edges: list[tuple[int, int]], note: int = 36
) -> None:
    """A SoundFont 2 file: one preset (bank 0, program 0) playing `note` with one zone per velocity layer."""

    def chunk(name: bytes, data: bytes) -> bytes:
        return name + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2)

    def listed(kind: bytes, *chunks: bytes) -> bytes:
        return chunk(b"LIST", kind + b"".join(chunks))

    pcm, headers, offset = b"", b"", 0
    for k, sample in enumerate(samples):
        data = (np.clip(sample, -1, 1) * 32767).astype("<i2")
        pcm += data.tobytes() + b"\0" * 92  # 46 zero samples after each, as the format asks
        headers += struct.pack("<20sIIIIIbBHH", f"{note}-Kick-{k + 1}".encode(), offset, offset + data.size,
                               offset, offset + data.size, RATE, 60, 0, 0, 1)  # fmt: skip
        offset += data.size + 46
    headers += struct.pack("<20sIIIIIbBHH", b"EOS", 0, 0, 0, 0, 0, 0, 0, 0, 0)
    key = note | note << 8
    igen = b"".join(struct.pack("<HH", 43, key) + struct.pack("<HH", 44, low | high << 8) + struct.pack("<HH", 53, k)
                    for k, (low, high) in enumerate(velocity_edges)) + struct.pack("<HH", 0, 0)  # fmt: skip
    ibag = b"".join(struct.pack("<HH", 3 * k, 0) for k in range(len(samples) + 1))
    pdta = listed(
        b"pdta",
        chunk(b"phdr", struct.pack("<20sHHHIII", b"Black_Pearl", 0, 0, 0, 0, 0, 0) + struct.pack("<20sHHHIII", b"EOP", 0, 0, 1, 0, 0, 0)),
        chunk(b"pbag", struct.pack("<HH", 0, 0) + struct.pack("<HH", 2, 0)),
        chunk(b"pmod", b"\0" * 10),
        chunk(b"pgen", struct.pack("<HH", 43, key) + struct.pack("<HH", 41, 0) + struct.pack("<HH", 0, 0)),
        chunk(b"inst", struct.pack("<20sH", b"Kick", 0) + struct.pack("<20sH", b"EOI", len(samples))),
        chunk(b"ibag", ibag),
        chunk(b"imod", b"\0" * 10),
        chunk(b"igen", igen),
        chunk(b"shdr", headers),
    )  # fmt: skip
    info = listed(
        b"INFO", chunk(b"ifil", struct.pack("<HH", 2, 1)), chunk(b"isng", b"EMU8000\0"), chunk(b"INAM", b"tiny\0\0")
    )
    body = b"sfbk" + info + listed(b"sdta", chunk(b"smpl", pcm)) + pdta
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_a_soundfont_is_read_note_by_note_and_layer_by_layer(tmp_path):
    path = tmp_path / "Black_Pearl_4_LV2.sf2"
    tiny_soundfont(path, [hit(50)[:, 0], hit(51)[:, 0]], [(1, 63), (64, 127)])
    font = read_soundfont(path)
    assert (font.bank, font.program, font.sample_rate) == (0, 0, RATE)
    assert font.notes == {36: [(1, 63, "36-Kick-1"), (64, 127, "36-Kick-2")]}
    assert font.samples["36-Kick-2"].size == int(0.4 * RATE)


@needs_fluidsynth
def test_avl_renders_each_layer_and_is_the_same_kit_as_hydrogens_black_pearl(tmp_path):
    trees = fake_packages(tmp_path / "packages")
    avl = tmp_path / "sf2"
    avl.mkdir()
    tiny_soundfont(avl / "Black_Pearl_4_LV2.sf2", [hit(50)[:, 0], hit(51)[:, 0]], [(1, 63), (64, 127)])
    roots = {"hydrogen": trees["hydrogen"], "avl": avl}
    build_drums(tmp_path / "out", ("hydrogen", "avl"), roots, trees["doc"], max_seconds=1.0, progress=False)
    rows = read_rows(tmp_path / "out")
    rendered = [row for row in rows if row["source"] == "avldrums.lv2-soundfont"]
    assert [(row["layer"], row["velocity"], row["velocity_min"], row["velocity_max"]) for row in rendered] == [
        (0, 32, 1, 63),
        (1, 95, 64, 127),
    ]
    assert all(row["label"] == "kick" and row["channels"] == row["original_channels"] == 1 for row in rendered)
    assert rendered[0]["peak_db"] < rendered[1]["peak_db"]  # the soft layer sounds softer
    pearl = {row["split"] for row in rows if row["kit"] == "black_pearl"}
    assert {row["source"] for row in rows if row["kit"] == "black_pearl"} == {
        "hydrogen-drumkits",
        "avldrums.lv2-soundfont",
    }
    assert len(pearl) == 1  # one kit under both packages' names, so one split
