"""The own-data path as a newcomer runs it: scan with the recipe's settings, train with a
wall-clock budget, Ctrl-C, the printed resume command, and a resume that keeps the run's target."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.test_cli import ROOT, run_cli, tiny_recipe
from tests.util import tone, write_clip


@pytest.fixture(scope="module")
def one_shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("one-shots")
    for index in range(4):
        write_clip(folder / "kick", f"k{index}.wav", tone(60 + 5 * index, seconds=0.08, amplitude=0.8))
        write_clip(folder / "hat", f"h{index}.wav", tone(3000 + 100 * index, seconds=0.3))
    return folder


def test_scan_with_the_recipe_reports_what_training_uses(one_shots, tmp_path):
    result = run_cli(
        "data",
        "scan",
        one_shots,
        "--config",
        ROOT / "recipes/folder/config.yaml",
        "--label-from-folder",
        "--out",
        tmp_path / "m.jsonl",
    )
    assert "8 usable, 0 skipped" in result.stdout
    assert "8 x shorter than the 2 s segment, padded with silence" in result.stdout
    rows = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert sorted({row["label"] for row in rows}) == ["hat", "kick"]


@pytest.mark.slow  # 29 s; resuming itself is covered by tests/test_training.py and tests/reliability
def test_resume_keeps_the_target_the_run_started_with(one_shots, tmp_path):
    recipe = tiny_recipe(tmp_path / "config.yaml", one_shots, tmp_path / "run")  # the recipe says 4 steps
    run_cli(
        "train",
        "--config",
        recipe,
        "--no-progress",
        "train.steps=6",
        "train.ckpt_every=3",
        "data.label_from_folder=true",
    )
    (tmp_path / "run" / "checkpoints" / "step_00000006").rename(
        tmp_path / "run" / "checkpoints" / "gone"
    )  # as if killed after step 3
    resumed = run_cli("train", "--config", recipe, "--resume", "--no-progress")
    assert "continues as it started" in resumed.stderr and "to step 6" in resumed.stderr
    assert (tmp_path / "run" / "checkpoints" / "step_00000006").is_dir()
    more = run_cli("train", "--config", recipe, "--resume", "--no-progress", "train.steps=8")
    assert "with train.steps=8 on top" in more.stderr and (tmp_path / "run" / "checkpoints" / "step_00000008").is_dir()
    assert (
        yaml.safe_load((tmp_path / "run" / "run.yaml").read_text())["train"]["steps"] == 8
    )  # the next resume keeps it


def test_ctrl_c_stops_with_a_checkpoint_and_prints_the_command_that_continues(one_shots, tmp_path):
    recipe = tiny_recipe(
        tmp_path / "config.yaml", one_shots, tmp_path / "run", steps=100000, ckpt_every=100000, log_every=1
    )
    command = [
        sys.executable,
        "-m",
        "audiodiff",
        "train",
        "--config",
        str(recipe),
        "--no-progress",
        "train.max_minutes=0.25",
        "data.label_from_folder=true",
    ]
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    log = tmp_path / "run" / "log.jsonl"
    deadline = time.monotonic() + 120
    while (
        not (log.is_file() and log.read_text().count("\n") >= 2)
        and process.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "SIGINT received" in stderr and "Traceback" not in stderr
    again = stderr.split("continue with:")[1].strip().splitlines()[0]
    assert again == f"audiodiff train --config {recipe} --resume"
    saved = [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()]
    logged = json.loads(log.read_text().splitlines()[-1])["step"]
    assert saved == [f"step_{logged:08d}"]  # the checkpoint is the step it stopped at
    resumed = run_cli("train", *again.split()[2:], "--no-progress")  # runs until the 15 s budget
    assert "train.max_minutes=0.25 reached" in resumed.stderr and "train.max_minutes=0.5" in resumed.stderr
    out = run_cli(
        "generate", "--checkpoint", tmp_path / "run", "--n", "1", "--steps", "2", "--out", tmp_path / "gen.wav"
    )
    assert (tmp_path / "gen.wav").is_file(), out.stderr


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.max_minutes=-1", "train.max_minutes=-1"),
        ("train.threads=-2", "train.threads=-2"),
        ("train.ckpt_minutes=nan", "train.ckpt_minutes=nan"),
        ("train.steps=abc", "train.steps: expected an integer"),
        ("train.init_from=no-such-model", "train.init_from='no-such-model'"),
    ],
)
def test_bad_training_settings_are_one_error_line(override, message, capsys):
    from audiodiff.cli import main

    assert (
        main(
            [
                "train",
                "--config",
                str(ROOT / "recipes/folder/finetune.yaml"),
                "data.path=" + str(ROOT / "tests"),
                override,
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
