"""Datasets: bad files skipped and counted, conversion on load, the scan and feature caches,
DataLoader workers, and tar shards (round trip, streaming order, exact resume)."""

import json
import math

import numpy as np
import pytest
import soundfile
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader

import audiodiff.data.checks as checks
import audiodiff.data.features as features
from audiodiff.audio import MelSpec
from audiodiff.config import DataConfig
from audiodiff.data.dataset import AudioDataset, DatasetError, ShardStream, collate, make_dataset, scan_items
from audiodiff.data.shards import write_shards
from audiodiff.train.diffusion import DiffusionTask
from audiodiff.train.trainer import Trainer
from tests.util import tiny_config, tone, write_clip


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Scan caches go to the test's folder, not the user's."""
    monkeypatch.setenv("AUDIODIFF_CACHE_DIR", str(tmp_path / "user-cache"))


def write_bad_files(folder):
    write_clip(folder, "good.wav", tone(200, 0.5))
    write_clip(folder, "silent.wav", torch.zeros(1, 8000))
    write_clip(folder, "short.wav", tone(200, 0.01))
    (folder / "text.wav").write_text("not audio")
    (folder / "empty.wav").write_bytes(b"")
    soundfile.write(folder / "nan.wav", np.full(8000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    write_clip(folder, "corrupt.flac", tone(300, 0.5))
    data = bytearray((folder / "corrupt.flac").read_bytes())
    data[200:] = bytes((byte * 7 + 13) % 256 for byte in data[200:])  # header intact, frames garbled
    (folder / "corrupt.flac").write_bytes(bytes(data))


def test_bad_files_are_skipped_and_counted_by_reason(tmp_path):
    write_bad_files(tmp_path)
    items, report = scan_items(DataConfig(path=str(tmp_path), min_seconds=0.05))
    assert [item.path.name for item in items] == ["good.wav"]
    assert report.kept == 1
    assert dict(report.skipped) == {
        "silent": 1,
        "shorter than data.min_seconds=0.05": 1,
        "unreadable or not audio": 1,
        "empty file (0 bytes)": 1,
        "NaN or Inf samples": 1,
        "corrupt (decoding failed)": 1,
    }
    assert "silent.wav" in str(report) and "corrupt.flac" in str(report)


def test_unreadable_file_is_skipped(tmp_path, monkeypatch):
    write_clip(tmp_path, "good.wav", tone(200, 0.5))
    locked = write_clip(tmp_path, "locked.wav", tone(200, 0.5))
    real_open = type(locked).open

    def open_(self, *args, **kwargs):
        if self.name == "locked.wav":
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(type(locked), "open", open_)
    items, report = scan_items(DataConfig(path=str(tmp_path)))
    assert [item.path.name for item in items] == ["good.wav"]
    assert report.skipped == {"unreadable (permission or I/O error)": 1}


def test_nothing_usable_is_an_error_up_front(tmp_path):
    (tmp_path / "a.wav").write_text("nope")
    with pytest.raises(DatasetError, match="no usable audio"):
        scan_items(DataConfig(path=str(tmp_path)))


def test_missing_data_path_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="no such file or folder"):
        scan_items(DataConfig(path=str(tmp_path / "nowhere")))


def test_manifest_rows_missing_files_and_malformed_lines(tmp_path):
    write_clip(tmp_path, "a.wav", tone(200, 0.5))
    lines = [
        json.dumps({"path": "a.wav", "label": "x", "text": "a tone", "pitch": 55, "split": "train"}),
        "{not json",
        json.dumps(["a list"]),
        json.dumps({"label": "no path"}),
        json.dumps({"path": "missing.wav", "label": "y", "split": "train"}),
        json.dumps({"path": "../escape.wav", "split": "train"}),
        json.dumps({"path": "a.wav", "split": "test"}),
    ]
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines))
    items, report = scan_items(DataConfig(path=str(tmp_path), number_fields=["pitch"]))
    assert len(items) == 1 and items[0].label == "x" and items[0].numbers == {"pitch": 55.0}
    assert report.skipped == {
        "malformed manifest line": 2,
        "manifest row without a path": 1,
        "missing file": 1,
        "path outside the manifest's folder (use an absolute path)": 1,
    }


def test_malformed_csv_lines_are_skipped_and_counted(tmp_path):
    write_clip(tmp_path, "a.wav", tone(200, 0.5))
    write_clip(tmp_path, "b.wav", tone(300, 0.5))
    (tmp_path / "list.csv").write_text(
        "path,label,pitch\n"
        "a.wav,low,48\n"
        "b.wav,high\n"  # a cell short
        "b.wav,high,60,extra\n"  # a cell too many
        ",nolabel,1\n"
        "b.wav,high,sixty\n"  # not a number: a null condition, not a skip
    )
    items, report = scan_items(DataConfig(path=str(tmp_path / "list.csv"), number_fields=["pitch"]))
    assert [(item.path.name, item.label, item.numbers["pitch"]) for item in items[:1]] == [("a.wav", "low", 48.0)]
    assert math.isnan(items[1].numbers["pitch"])
    assert report.skipped == {"malformed manifest line": 2, "manifest row without a path": 1}


def test_mixed_rates_and_channels_are_converted_on_load(tmp_path):
    write_clip(tmp_path, "mono8k.wav", tone(200, 0.5, sample_rate=8000), sample_rate=8000)
    write_clip(tmp_path, "stereo44k.wav", torch.cat([tone(200, 0.5, 44100), tone(300, 0.5, 44100)]), sample_rate=44100)
    write_clip(tmp_path, "mono16k.wav", tone(200, 0.5))
    cfg = DataConfig(path=str(tmp_path), representation="wave", segment_seconds=0.25, normalize="none")
    items, report = scan_items(cfg)
    assert report.converted == {
        "resampled 8000 Hz -> 16000 Hz": 1,
        "resampled 44100 Hz -> 16000 Hz": 1,
        "2 channels mixed down to mono": 1,
    }
    assert "converted on load" in str(report)
    dataset = AudioDataset(items, cfg, None)
    assert all(dataset[(i, 0)]["x"].shape == (1, 4000) for i in range(3))
    stereo = AudioDataset(
        items, DataConfig(path=str(tmp_path), representation="wave", channels=2, segment_seconds=0.25), None
    )
    assert all(stereo[(i, 0)]["x"].shape == (2, 4000) for i in range(3))


def test_items_are_fixed_length_mels_with_conditions(tmp_path):
    write_clip(tmp_path, "low/a.wav", tone(200, 0.7))
    write_clip(tmp_path, "high/b.wav", tone(2000, 0.3))
    cfg = DataConfig(path=str(tmp_path), label_from_folder=True, segment_seconds=0.5)
    items, _ = scan_items(cfg)
    dataset = AudioDataset(items, cfg, MelSpec(), labels=["low", "high"])
    batch = collate([dataset[(0, 1)], dataset[(1, 2)]])
    assert batch["x"].shape == (2, 1, 80, 31)
    assert sorted(batch["label"].tolist()) == [0, 1]


def test_random_crop_is_fixed_by_the_item_seed(tmp_path):
    write_clip(tmp_path, "a.wav", torch.randn(1, 16000) * 0.3)
    cfg = DataConfig(path=str(tmp_path), representation="wave", segment_seconds=0.25, normalize="none")
    items, _ = scan_items(cfg)
    dataset = AudioDataset(items, cfg, None)
    assert torch.equal(dataset[(0, 3)]["x"], dataset[(0, 3)]["x"])
    assert not torch.equal(dataset[(0, 3)]["x"], dataset[(0, 4)]["x"])


def test_peak_normalisation_is_one_gain_for_the_whole_file(tmp_path):
    """A crop of a quiet tail stays quiet: the gain comes from the whole file, not the crop."""
    write_clip(tmp_path, "a.wav", torch.cat([tone(200, 0.5, amplitude=0.5), tone(200, 0.5, amplitude=0.05)], dim=1))
    cfg = DataConfig(path=str(tmp_path), representation="wave", segment_seconds=0.25, normalize="peak")
    items, _ = scan_items(cfg)
    whole = AudioDataset(items, cfg, None).loader.full(items[0])["x"]
    assert whole[..., :8000].abs().max() == pytest.approx(0.95, abs=1e-3)
    assert whole[..., 8000:].abs().max() == pytest.approx(0.095, abs=2e-3)


# --------------------------------------------------------------------------------------------
# The scan cache


def count_decodes(monkeypatch) -> list:
    calls = []
    original = checks._content_error

    def counted(path):
        calls.append(path.name)
        return original(path)

    monkeypatch.setattr(checks, "_content_error", counted)
    return calls


def test_scan_cache_skips_decoding_on_a_second_scan(tmp_path, monkeypatch):
    write_bad_files(tmp_path / "data")
    cfg = DataConfig(path=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))
    decodes = count_decodes(monkeypatch)
    first_items, first = scan_items(cfg)
    assert len(decodes) == 4  # good, silent, nan, corrupt; the others fail before decoding
    second_items, second = scan_items(cfg)
    assert len(decodes) == 4
    assert [i.path for i in first_items] == [i.path for i in second_items] and second.skipped == first.skipped
    assert second_items[0].seconds == first_items[0].seconds == 0.5
    assert list((tmp_path / "cache" / "scan").glob("data-*.json"))


def test_scan_cache_checks_a_changed_file_again(tmp_path, monkeypatch):
    write_clip(tmp_path / "data", "a.wav", tone(200, 0.5))
    write_clip(tmp_path / "data", "b.wav", tone(300, 0.5))
    cfg = DataConfig(path=str(tmp_path / "data"))
    scan_items(cfg)
    write_clip(tmp_path / "data", "b.wav", torch.zeros(1, 9000))  # new size, new mtime
    decodes = count_decodes(monkeypatch)
    items, report = scan_items(cfg)
    assert decodes == ["b.wav"] and report.skipped == {"silent": 1}


def test_scan_cache_applies_the_current_limits(tmp_path):
    write_clip(tmp_path / "data", "a.wav", tone(200, 0.5))
    write_clip(tmp_path / "data", "b.wav", tone(300, 0.2))
    scan_items(DataConfig(path=str(tmp_path / "data")))
    _, report = scan_items(DataConfig(path=str(tmp_path / "data"), min_seconds=0.3))
    assert report.kept == 1 and report.skipped == {"shorter than data.min_seconds=0.3": 1}


# --------------------------------------------------------------------------------------------
# The feature cache


@pytest.mark.parametrize("representation", ["mel", "wave"])
def test_feature_cache_hit_gives_the_same_tensors_as_a_fresh_computation(tmp_path, monkeypatch, representation):
    write_clip(tmp_path / "data", "long.wav", torch.randn(1, 30000) * 0.2, sample_rate=22050)  # resampled on load
    write_clip(tmp_path / "data", "short.wav", tone(440, 0.3))  # padded to the segment
    cfg = DataConfig(path=str(tmp_path / "data"), representation=representation, segment_seconds=0.5)
    items, _ = scan_items(cfg)
    fresh = AudioDataset(items, cfg, MelSpec())
    cached_cfg = DataConfig(**{**cfg.__dict__, "cache_dir": str(tmp_path / "cache")})
    cached = AudioDataset(items, cached_cfg, MelSpec())
    first = [cached[(i, 7)]["x"] for i in range(2)]  # computes and writes
    computed = []
    original = features.ItemLoader.compute
    monkeypatch.setattr(features.ItemLoader, "compute", lambda self, *a: computed.append(1) or original(self, *a))
    again = [cached[(i, 7)]["x"] for i in range(2)]  # reads
    assert computed == []
    for index in range(2):
        assert torch.equal(first[index], fresh[(index, 7)]["x"])
        assert torch.equal(again[index], fresh[(index, 7)]["x"])
    stored = list((tmp_path / "cache").rglob("*.safetensors"))
    assert len(stored) == 2
    shapes = sorted(load_file(path)["x"].shape[-1] for path in stored)
    assert shapes == ([31, 85] if representation == "mel" else [4800, 21769])  # whole files; crops come later


def test_feature_cache_folder_follows_the_mel_spec(tmp_path):
    cfg = DataConfig(path="x", cache_dir=str(tmp_path))
    one = features.ItemLoader(cfg, MelSpec()).cache.folder
    other = features.ItemLoader(cfg, MelSpec(n_mels=64)).cache.folder
    assert one != other and one.parent == other.parent == tmp_path


# --------------------------------------------------------------------------------------------
# DataLoader workers


def run(config, **fit):
    trainer = Trainer(
        DiffusionTask(config, verbose=False), config.train, resume=fit.pop("resume", False), progress=False
    )
    return trainer.fit(**fit)


def same_weights(a_path, b_path) -> bool:
    a, b = load_file(a_path / "training_state.safetensors"), load_file(b_path / "training_state.safetensors")
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def test_workers_give_the_batches_of_the_main_process(synth_dir):
    cfg = DataConfig(path=str(synth_dir), split=None, segment_seconds=0.25)
    items, _ = scan_items(cfg)
    dataset = AudioDataset(items, cfg, MelSpec())
    plan = [[(i, 100 + i) for i in range(j, j + 3)] for j in range(0, 12, 3)]
    inline = [batch["x"] for batch in DataLoader(dataset, batch_sampler=plan, collate_fn=collate)]
    workers = [batch["x"] for batch in DataLoader(dataset, batch_sampler=plan, collate_fn=collate, num_workers=2)]
    assert all(torch.equal(a, b) for a, b in zip(inline, workers)) and len(workers) == 4


def test_resume_with_workers_is_exact(tmp_path, synth_dir):
    sections = dict(
        data={"num_workers": 1}, train={"steps": 4, "ckpt_every": 2, "batch_size": 3}, conditioning={"labels": "auto"}
    )
    full = run(tiny_config(synth_dir, tmp_path / "full", **sections))
    split = tiny_config(synth_dir, tmp_path / "split", **sections)
    run(split, stop_at=2)
    resumed = run(split, resume=True)
    assert same_weights(full, resumed)


# --------------------------------------------------------------------------------------------
# Shards


@pytest.fixture
def shards(tmp_path, synth_dir):
    cfg = DataConfig(path=str(synth_dir), split=None, number_fields=["pitch"])
    items, _ = scan_items(cfg)
    index = write_shards(items, tmp_path / "shards", shard_size=5, source=synth_dir, progress=False)
    return index.parent, items


def stream_for(folder, batch_size=2, workers=0, **data):
    cfg = DataConfig(path=str(folder), split=None, segment_seconds=0.25, number_fields=["pitch"], **data)
    items, report = scan_items(cfg)
    dataset = make_dataset(items, cfg, MelSpec(), labels=["chirp", "high", "low", "noise"])
    dataset.configure(batch_size, seed=0, num_workers=workers)
    return dataset, report


def facts(item) -> tuple:
    pitch = item.numbers.get("pitch", math.nan)
    return item.label, item.text, None if math.isnan(pitch) else pitch


def test_shard_round_trip_keeps_rows_and_audio(shards):
    folder, originals = shards
    assert sorted(p.name for p in folder.iterdir()) == ["index.json", *[f"shard-{i:05d}.tar" for i in range(5)]]
    dataset, report = stream_for(folder)
    assert isinstance(dataset, ShardStream) and report.layout == "shards" and report.kept == 24
    position = {item.path.name: i for i, item in enumerate(originals)}
    rows = json.loads((folder / "index.json").read_text())["items"]
    source = [position[row["path"].split("/")[-1]] for row in rows]  # shard item -> original item
    assert sorted(source) == list(range(24))
    for item, original in zip(dataset.items, source):
        assert facts(item) == facts(originals[original])
    reference = AudioDataset(originals, dataset.examples.cfg, MelSpec(), labels=["chirp", "high", "low", "noise"])
    batch = next(iter(dataset))
    for row, (item_index, seed) in zip(batch, dataset.epoch_plan(0)[0][:2]):
        twin = reference[(source[item_index], seed)]
        assert torch.equal(row["x"], twin["x"]) and row["label"] == twin["label"] and row["text"] == twin["text"]


def test_shard_stream_reads_every_item_once_per_epoch(shards):
    folder, _ = shards
    dataset, _ = stream_for(folder, batch_size=4)
    plan = dataset.epoch_plan(0)[0]
    assert sorted(index for index, _ in plan) == list(range(24))
    assert [index for index, _ in dataset.epoch_plan(1)[0]] != [index for index, _ in plan]


@pytest.mark.parametrize("workers", [0, 2])
def test_shard_stream_restarts_mid_epoch_where_it_stopped(shards, workers):
    folder, _ = shards
    dataset, _ = stream_for(folder, batch_size=2, workers=workers)

    def batches(position):
        dataset.start(epoch=1, position=position)
        loader = DataLoader(dataset, batch_size=None, collate_fn=collate, num_workers=workers)
        return [(batch["x"], batch["text"]) for batch in loader]

    everything, rest = batches(0), batches(3)
    assert len(everything) == (12 if workers == 0 else 10) and len(rest) == len(everything) - 3
    assert all(torch.equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(everything[3:], rest))


def test_shards_split_between_workers_and_ranks_cover_the_data(shards):
    folder, _ = shards
    dataset, _ = stream_for(folder, batch_size=2)
    dataset.configure(2, seed=0, rank=0, world_size=2, num_workers=2)
    plans = dataset.epoch_plan(0)
    assert len(plans) == 4 and len({len(plan) for plan in plans}) == 1
    seen = [index for plan in plans for index, _ in plan]
    assert len(seen) == len(set(seen))  # no item read twice in an epoch


def test_missing_shard_is_skipped_and_counted(shards):
    folder, _ = shards
    (folder / "shard-00002.tar").unlink()
    _, report = stream_for(folder)
    assert report.kept == 19 and report.skipped == {"missing shard file": 5}


def test_training_on_shards_resumes_exactly(tmp_path, shards):
    folder, _ = shards
    sections = dict(train={"steps": 4, "ckpt_every": 2, "batch_size": 3}, conditioning={"labels": "auto"})
    full = run(tiny_config(folder, tmp_path / "full", **sections))
    split = tiny_config(folder, tmp_path / "split", **sections)
    run(split, stop_at=2)
    resumed = run(split, resume=True)
    assert same_weights(full, resumed)
