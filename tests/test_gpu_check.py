"""The GPU check script (`python -m benchmarks.gpu`) runs its checks on CPU too, so it cannot rot
on a project whose sessions seldom have a GPU: a recipe trained on its synthetic data, a resume,
a bundled student generating and the vocoder, each recorded in its JSON."""

import json

import pytest

from benchmarks import gpu


def test_gpu_check_runs_on_cpu_and_records_every_check(tmp_path):
    out = tmp_path / "gpu.json"
    assert (
        gpu.main(
            ["--device", "cpu", "--recipes", "quickstart", "--models", "digits-fast", "--steps", "1", "--out", str(out)]
        )
        == 0
    )
    result = json.loads(out.read_text())
    kinds = [(row["kind"], row["name"], row["status"]) for row in result["checks"]]
    assert kinds == [
        ("train", "quickstart", "ok"),
        ("resume", "quickstart", "ok"),
        ("generate", "digits-fast", "ok"),
        ("vocode", "vocoder-16k, 10 s", "ok"),
    ]
    assert result["checks"][1]["step"] == 2 and result["failed"] == 0 and result["machine"]["cpu_model"]


def test_synthetic_data_carries_the_source_models_conditions(tmp_path):
    rows = [
        json.loads(line) for line in (gpu.write_data(tmp_path, "notes") / "manifest.jsonl").read_text().splitlines()
    ]
    from audiodiff.bundled import bundled_path
    from audiodiff.checkpoint import CONFIG, read_json

    conditioning = read_json(bundled_path("notes") / CONFIG)["conditioning"]
    low, high = conditioning["numbers"]["pitch"]
    assert {row["label"] for row in rows} <= set(conditioning["labels"]) and all(
        low <= row["pitch"] <= high for row in rows
    )
    assert all(word in conditioning["text"]["vocab"] for row in rows for word in row["text"].split())


def test_without_cuda_the_check_says_how_to_run_it(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert gpu.main(["--out", "unused.json"]) == 2
    assert "no CUDA device here" in capsys.readouterr().err
