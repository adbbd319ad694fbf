"""Dataset scanning: bad files are skipped and counted, never a crash mid-run."""

import json

import pytest
import torch

from audiodiff.audio import MelSpec
from audiodiff.config import DataConfig
from audiodiff.data.dataset import AudioDataset, DatasetError, collate, scan_items
from tests.util import tone, write_clip


def test_bad_files_are_skipped_and_counted(tmp_path):
    write_clip(tmp_path, "good.wav", tone(200, 0.5))
    write_clip(tmp_path, "silent.wav", torch.zeros(1, 8000))
    write_clip(tmp_path, "short.wav", tone(200, 0.01))
    (tmp_path / "text.wav").write_text("not audio")
    (tmp_path / "empty.wav").write_bytes(b"")
    items, report = scan_items(DataConfig(path=str(tmp_path), min_seconds=0.05))
    assert [item.path.name for item in items] == ["good.wav"]
    assert report.kept == 1 and report.num_skipped == 4
    assert report.skipped["silent"] == 1 and report.skipped["unreadable or not audio"] == 2
    assert "shorter than data.min_seconds" in str(report)


def test_nothing_usable_is_an_error_up_front(tmp_path):
    (tmp_path / "a.wav").write_text("nope")
    with pytest.raises(DatasetError, match="no usable audio"):
        scan_items(DataConfig(path=str(tmp_path)))


def test_manifest_rows_missing_files_and_malformed_lines(tmp_path):
    write_clip(tmp_path, "a.wav", tone(200, 0.5))
    lines = [
        json.dumps({"path": "a.wav", "label": "x", "text": "a tone", "pitch": 55, "split": "train"}),
        "{not json",
        json.dumps({"path": "missing.wav", "label": "y", "split": "train"}),
        json.dumps({"path": "../escape.wav", "split": "train"}),
        json.dumps({"path": "a.wav", "split": "test"}),
    ]
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines))
    items, report = scan_items(DataConfig(path=str(tmp_path), number_fields=["pitch"]))
    assert len(items) == 1 and items[0].label == "x" and items[0].numbers == {"pitch": 55.0}
    assert report.skipped == {"malformed manifest line": 1, "missing file": 1, "path outside the dataset folder": 1}


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
