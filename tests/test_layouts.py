"""Known dataset layouts, each read from a tiny fake copy, and the `data scan` / `data shard` commands."""

import json

import pytest

from audiodiff.cli import main
from audiodiff.config import DataConfig
from audiodiff.data.dataset import DatasetError, scan_items
from audiodiff.data.layouts import LAYOUTS, Layout
from tests.util import tone, write_clip


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIODIFF_CACHE_DIR", str(tmp_path / "user-cache"))


def clip(folder, name, freq=300.0, seconds=0.3, sample_rate=16000):
    return write_clip(folder, name, tone(freq, seconds, sample_rate), sample_rate)


def scan(path, **options):
    return scan_items(DataConfig(path=str(path), **{"split": None, **options}))


def by_name(items):
    return {item.path.name: item for item in items}


# --------------------------------------------------------------------------------------------
# Tiny fakes of each layout


def fake_speech_commands(root):
    for word in ("yes", "zero", "one"):
        for index in range(3):
            clip(root / word, f"spk{index}_nohash_0.wav", 200 + 100 * index)
    clip(root / "_background_noise_", "white_noise.wav", seconds=1.0)
    (root / "validation_list.txt").write_text("yes/spk1_nohash_0.wav\nzero/spk1_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("yes/spk2_nohash_0.wav\none/spk2_nohash_0.wav\n")
    (root / "LICENSE").write_text("CC-BY 4.0")
    return root


def fake_ljspeech(root):
    clip(root / "wavs", "LJ001-0001.wav")
    clip(root / "wavs", "LJ001-0002.wav", 400)
    (root / "metadata.csv").write_text(
        "LJ001-0001|Printing, in the 1st sense|Printing, in the first sense\n"
        'LJ001-0002|He said "in 1830"|He said "in eighteen thirty"\n'
        "this line has no separator\n"
        "LJ001-0003|a row whose wav is missing|a row whose wav is missing\n"
    )
    return root


NSYNTH_NOTE = {
    "note": 1,
    "instrument_family_str": "bass",
    "instrument_source_str": "electronic",
    "pitch": 60,
    "velocity": 100,
    "qualities_str": ["bright", "distortion"],
    "sample_rate": 16000,
}


def fake_nsynth(root):
    for split in ("train", "valid"):
        folder = root / f"nsynth-{split}"
        examples = {
            f"bass_electronic_000-060-100-{split}": NSYNTH_NOTE,
            f"guitar_acoustic_001-040-025-{split}": {
                **NSYNTH_NOTE,
                "instrument_family_str": "guitar",
                "instrument_source_str": "acoustic",
                "pitch": 40,
                "velocity": 25,
                "qualities_str": [],
            },
            f"broken-{split}": {"pitch": 50},
        }
        for name in examples:
            clip(folder / "audio", f"{name}.wav")
        (folder / "examples.json").write_text(json.dumps(examples))
    return root


def fake_wavegan_sc09(root):
    for split, count in (("train", 2), ("valid", 1), ("test", 1)):
        for word in ("Zero", "Seven"):
            for index in range(count):
                clip(root / split, f"{word}_{index:04x}_nohash_0.wav")
    return root


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, layout",
    [
        (fake_speech_commands, "speech_commands"),
        (fake_ljspeech, "ljspeech"),
        (fake_nsynth, "nsynth"),
        (fake_wavegan_sc09, "sc09"),
    ],
)
def test_auto_detects_the_layout(tmp_path, make, layout):
    _, report = scan(make(tmp_path / "data"))
    assert report.layout == layout


def test_folder_labels_come_from_parent_folders_and_captions_from_sidecars(tmp_path):
    clip(tmp_path / "dogs", "bark.wav")
    (tmp_path / "dogs" / "bark.txt").write_text("a dog barks twice\n")
    clip(tmp_path / "cats", "meow.flac", 500)
    clip(tmp_path / ".trash", "old.wav")
    (tmp_path / "notes.md").write_text("not audio, not an audio name: ignored")
    items, report = scan(tmp_path, label_from_folder=True)
    assert report.layout == "folder" and report.kept == 2
    assert {(i.path.name, i.label, i.text) for i in items} == {
        ("bark.wav", "dogs", "a dog barks twice"),
        ("meow.flac", "cats", None),
    }
    unlabelled, _ = scan(tmp_path)
    assert {item.label for item in unlabelled} == {None}


def test_jsonl_manifest_gives_label_text_numbers_and_split(tmp_path):
    clip(tmp_path / "audio", "a.wav")
    outside = clip(tmp_path / "elsewhere", "b.wav", 500)
    rows = [
        {"path": "audio/a.wav", "label": "low", "caption": "a low hum", "pitch": 48, "velocity": 90, "split": "train"},
        {"path": str(outside), "label": "high", "text": "a whistle", "split": "valid"},
    ]
    (tmp_path / "audio" / "list.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (tmp_path / "audio" / "list.jsonl").rename(tmp_path / "list.jsonl")
    items, report = scan(tmp_path / "list.jsonl")
    assert report.layout == "manifest"
    named = by_name(items)
    assert (named["a.wav"].label, named["a.wav"].text, named["a.wav"].split) == ("low", "a low hum", "train")
    assert named["a.wav"].numbers == {"pitch": 48.0, "velocity": 90.0}
    assert (named["b.wav"].label, named["b.wav"].split) == ("high", "valid")  # absolute paths are allowed
    train_only, _ = scan_items(DataConfig(path=str(tmp_path / "list.jsonl")))
    assert [item.path.name for item in train_only] == ["a.wav"]


def test_csv_manifest_reads_the_number_fields(tmp_path):
    clip(tmp_path, "a.wav")
    (tmp_path / "manifest.csv").write_text('path,label,text,pitch,split\na.wav,low,"a low, soft hum",48,train\n')
    items, report = scan(tmp_path, number_fields=["pitch"])
    assert report.layout == "manifest"
    assert (items[0].label, items[0].text, items[0].numbers, items[0].split) == (
        "low",
        "a low, soft hum",
        {"pitch": 48.0},
        "train",
    )


def test_speech_commands_splits_follow_the_official_lists(tmp_path):
    items, report = scan(fake_speech_commands(tmp_path))
    assert report.kept == 9  # _background_noise_ left out
    splits = {f"{item.label}/{item.path.name}": item.split for item in items}
    assert splits["yes/spk1_nohash_0.wav"] == "valid" and splits["zero/spk1_nohash_0.wav"] == "valid"
    assert splits["yes/spk2_nohash_0.wav"] == "test" and splits["one/spk2_nohash_0.wav"] == "test"
    assert sum(split == "train" for split in splits.values()) == 5
    train, _ = scan_items(DataConfig(path=str(tmp_path)))
    assert len(train) == 5 and {item.split for item in train} == {"train"}


def test_sc09_keeps_only_the_ten_digit_words(tmp_path):
    fake_speech_commands(tmp_path)
    items, report = scan(tmp_path, layout="sc09")
    assert report.layout == "sc09" and {item.label for item in items} == {"zero", "one"} and len(items) == 6
    subset, _ = scan(tmp_path, labels_subset=["yes"])
    assert {item.label for item in subset} == {"yes"}


def test_wavegan_sc09_folders_give_labels_and_splits(tmp_path):
    items, _ = scan(fake_wavegan_sc09(tmp_path))
    assert sorted({(item.label, item.split) for item in items}) == [
        ("seven", "test"),
        ("seven", "train"),
        ("seven", "valid"),
        ("zero", "test"),
        ("zero", "train"),
        ("zero", "valid"),
    ]


def test_ljspeech_text_is_the_normalized_text(tmp_path):
    items, report = scan(fake_ljspeech(tmp_path))
    assert [item.text for item in items] == ["Printing, in the first sense", 'He said "in eighteen thirty"']
    assert report.skipped == {"malformed metadata.csv line": 1, "missing file": 1}


def test_nsynth_label_is_the_family_with_pitch_and_velocity(tmp_path):
    items, report = scan(fake_nsynth(tmp_path))
    assert report.kept == 4 and report.skipped == {"malformed examples.json entry": 2}
    bass = by_name(items)["bass_electronic_000-060-100-valid.wav"]
    assert (bass.label, bass.numbers, bass.split) == ("bass", {"pitch": 60.0, "velocity": 100.0}, "valid")
    assert bass.text == "an electronic bass note, C4, played loud, bright, distortion"
    one_split, _ = scan(tmp_path / "nsynth-train")
    assert {item.split for item in one_split} == {"train"} and len(one_split) == 2


def test_unknown_layout_lists_the_valid_ones(tmp_path):
    clip(tmp_path, "a.wav")
    with pytest.raises(DatasetError, match="valid layouts are .*ljspeech"):
        scan(tmp_path, layout="librispeech")


def test_a_named_layout_that_does_not_match_says_what_is_missing(tmp_path):
    clip(tmp_path, "a.wav")
    with pytest.raises(DatasetError, match="no metadata.csv"):
        scan(tmp_path, layout="ljspeech")


# --------------------------------------------------------------------------------------------
# The commands


def test_the_layout_option_lists_every_registered_layout(monkeypatch, capsys):
    monkeypatch.setitem(LAYOUTS, "my_corpus", Layout("my_corpus", lambda path: False, lambda path, cfg, report: []))
    with pytest.raises(SystemExit):
        main(["data", "scan", "--help"])
    assert ", ".join(["auto", *LAYOUTS]) in " ".join(capsys.readouterr().out.split())


def test_scan_command_writes_a_manifest_that_reads_back_the_same(tmp_path, capsys):
    fake_nsynth(tmp_path / "nsynth")
    (tmp_path / "nsynth" / "nsynth-train" / "audio" / "junk.wav").write_text("not audio")
    out = tmp_path / "nsynth" / "manifest.jsonl"
    assert main(["data", "scan", str(tmp_path / "nsynth"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "(nsynth layout): 4 usable" in printed and f"manifest: {out} (4 rows)" in printed
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["path"].startswith("nsynth-") and {
        "label",
        "text",
        "pitch",
        "velocity",
        "split",
        "seconds",
        "sample_rate",
        "channels",
    } <= set(rows[0])
    original, _ = scan(tmp_path / "nsynth", layout="nsynth")
    again, report = scan(out, number_fields=["pitch", "velocity"])
    assert report.layout == "manifest"
    key = lambda item: (
        item.path.resolve(),
        item.label,
        item.text,
        item.split,
        item.numbers["pitch"],
        item.numbers["velocity"],
    )
    assert sorted(map(key, again)) == sorted(map(key, original))


def test_scan_command_reports_bad_files_and_fails_on_nothing_usable(tmp_path, capsys):
    clip(tmp_path / "data", "good.wav")
    (tmp_path / "data" / "bad.wav").write_bytes(b"RIFF....WAVE")
    assert main(["data", "scan", str(tmp_path / "data"), "--out", str(tmp_path / "m.jsonl")]) == 0
    assert "1 x unreadable or not audio (e.g." in capsys.readouterr().out
    (tmp_path / "data" / "good.wav").unlink()
    assert main(["data", "scan", str(tmp_path / "data"), "--layout", "folder", "--out", str(tmp_path / "m.jsonl")]) == 2
    assert "no usable audio" in capsys.readouterr().err


def test_shard_command_writes_shards_that_train_reads(tmp_path, capsys):
    fake_speech_commands(tmp_path / "sc")
    assert (
        main(
            [
                "data",
                "shard",
                str(tmp_path / "sc"),
                "--out",
                str(tmp_path / "shards"),
                "--shard-size",
                "4",
                "--split",
                "train",
            ]
        )
        == 0
    )
    assert "shards: 2" in capsys.readouterr().out
    items, report = scan(tmp_path / "shards")
    assert report.layout == "shards" and len(items) == 5 and {item.split for item in items} == {"train"}
    assert main(["data", "shard", str(tmp_path / "sc"), "--out", str(tmp_path / "shards")]) == 2  # no overwrite
