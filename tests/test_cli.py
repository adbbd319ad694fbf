"""The command line end to end: make data, train a tiny model, generate wavs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile
import yaml

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=None, env=None, check=True):
    result = subprocess.run(
        [sys.executable, "-m", "audiodiff", *map(str, args)],
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"audiodiff {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")
    return result


def tiny_recipe(path: Path, data: Path, out: Path, **train) -> Path:
    config = yaml.safe_load((ROOT / "recipes" / "quickstart" / "config.yaml").read_text())
    config["data"]["path"] = str(data)
    config["model"] = {
        "dims": 2,
        "channels": 16,
        "channel_mults": [1, 2],
        "num_res_blocks": 1,
        "attention_levels": [1],
        "head_channels": 16,
    }
    config["train"].update(
        {
            "out_dir": str(out),
            "steps": 4,
            "batch_size": 4,
            "ckpt_every": 2,
            "preview_every": 0,
            "precision": "fp32",
            **train,
        }
    )
    config["sampling"]["griffin_lim_iters"] = 4
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    run_cli("data", "synth", "--out", root / "data", "--per-class", 4)
    recipe = tiny_recipe(root / "config.yaml", root / "data", root / "run")
    result = run_cli("train", "--config", recipe, "--no-progress", "train.steps=4")
    assert "checkpoint:" in result.stdout
    return root


def test_train_writes_a_loadable_checkpoint(trained):
    checkpoint = trained / "run" / "checkpoints" / "step_00000004"
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["kind"] == "diffusion" and config["conditioning"]["labels"] == ["chirp", "high", "low", "noise"]
    assert (checkpoint / "model.safetensors").is_file()


def test_generate_writes_wavs_of_the_training_length(trained):
    out = trained / "gen"
    run_cli(
        "generate",
        "--checkpoint",
        trained / "run",
        "--label",
        "high",
        "--n",
        "2",
        "--steps",
        "3",
        "--out",
        out,
        "--plot",
    )
    for index in range(2):
        info = soundfile.info(str(out / f"sample_{index}.wav"))
        assert info.samplerate == 16000 and info.frames == 16000 // 256 * 256
        assert (out / f"sample_{index}.png").is_file()


def test_generate_single_file(trained):
    run_cli(
        "generate", "--checkpoint", trained / "run", "--steps", "2", "--duration", "0.5", "--out", trained / "one.wav"
    )
    assert soundfile.info(str(trained / "one.wav")).frames == 8000 // 256 * 256


def test_generate_takes_a_precision(trained):
    run_cli(
        "generate",
        "--checkpoint",
        trained / "run",
        "--steps",
        "2",
        "--precision",
        "fp32",
        "--out",
        trained / "fp32.wav",
    )
    assert soundfile.info(str(trained / "fp32.wav")).frames == 16000 // 256 * 256
    result = run_cli(
        "generate", "--checkpoint", trained / "run", "--precision", "fp64", "--out", trained / "x.wav", check=False
    )
    assert result.returncode != 0 and "fp32" in result.stderr


def test_generate_guide_names_conditions_the_call_asks_for(trained):
    run_cli(
        "generate",
        "--checkpoint",
        trained / "run",
        "--label",
        "high",
        "--guide",
        "label",
        "--steps",
        "2",
        "--out",
        trained / "guided.wav",
    )
    assert soundfile.info(str(trained / "guided.wav")).frames == 16000 // 256 * 256
    result = run_cli(
        "generate",
        "--checkpoint",
        trained / "run",
        "--label",
        "high",
        "--guide",
        "pitch",
        "--out",
        trained / "x.wav",
        check=False,
    )
    assert result.returncode == 2 and "guide=['pitch']" in result.stderr
    run_cli(
        "generate",
        "--checkpoint",
        trained / "run",
        "--label",
        "high",
        "--guide",
        "all",
        "--steps",
        "2",
        "--out",
        trained / "plain.wav",
    )
    assert soundfile.info(str(trained / "plain.wav")).frames == 16000 // 256 * 256
    result = run_cli(
        "generate",
        "--checkpoint",
        trained / "run",
        "--label",
        "high",
        "--guidance-interval",
        "0.9",
        "0.1",
        "--out",
        trained / "x.wav",
        check=False,
    )
    assert result.returncode == 2 and "guidance_interval=" in result.stderr and not (trained / "x.wav").exists()


def test_unknown_label_lists_the_known_ones(trained):
    result = run_cli(
        "generate", "--checkpoint", trained / "run", "--label", "seven", "--out", trained / "x.wav", check=False
    )
    assert result.returncode == 2
    assert "unknown label 'seven'" in result.stderr and "'chirp', 'high', 'low', 'noise'" in result.stderr


def test_unknown_config_key_lists_valid_keys(trained):
    result = run_cli("train", "--config", trained / "config.yaml", "train.stepz=3", check=False)
    assert result.returncode == 2 and "unknown key(s) ['stepz']" in result.stderr and "'steps'" in result.stderr


def test_wrong_type_names_the_key(trained):
    result = run_cli("train", "--config", trained / "config.yaml", "train.steps=many", check=False)
    assert result.returncode == 2 and "train.steps: expected an integer, got 'many'" in result.stderr


def test_resume_continues_from_the_newest_checkpoint(trained):
    result = run_cli("train", "--config", trained / "config.yaml", "--resume", "--no-progress", "train.steps=6")
    assert "resumed from" in result.stderr and "step_00000004" in result.stderr
    assert (trained / "run" / "checkpoints" / "step_00000006").is_dir()


def test_torchrun_two_processes_keep_identical_weights(tmp_path, trained):
    recipe = tiny_recipe(
        tmp_path / "config.yaml", trained / "data", tmp_path / "run", steps=3, ckpt_every=3, batch_size=2
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "audiodiff",
            "train",
            "--config",
            str(recipe),
            "--no-progress",
        ],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    meta = json.loads((tmp_path / "run" / "checkpoints" / "step_00000003" / "training_state.json").read_text())
    assert meta["world_size"] == 2
    assert len(meta["rank_digests"]) == 2 and meta["rank_digests"][0] == meta["rank_digests"][1]


def test_edit_commands_write_wavs(trained):
    source = trained / "source.wav"
    run_cli("generate", "--checkpoint", trained / "run", "--label", "low", "--steps", "2", "--out", source)
    base = soundfile.info(str(source)).frames
    run_cli(
        "vary", "--checkpoint", trained / "run", source, "--strength", "0.3", "--steps", "3", "--out", trained / "v.wav"
    )
    run_cli(
        "inpaint",
        "--checkpoint",
        trained / "run",
        source,
        "--start",
        "0.2",
        "--end",
        "0.4",
        "--steps",
        "2",
        "--out",
        trained / "i.wav",
    )
    run_cli(
        "continue",
        "--checkpoint",
        trained / "run",
        source,
        "--seconds",
        "0.5",
        "--steps",
        "2",
        "--out",
        trained / "c.wav",
    )
    run_cli(
        "vary", "--checkpoint", trained / "run", source, "--strength", "0.3", "--mode", "inversion", "--steps", "3",
        "--out", trained / "vi.wav",
    )  # fmt: skip
    run_cli(
        "edit", "--checkpoint", trained / "run", source, "--source", "label=low", "--label", "high", "--strength",
        "0.8", "--away-from-source", "--steps", "3", "--out", trained / "e.wav",
    )  # fmt: skip
    sidecar = json.loads((trained / "e.json").read_text())
    assert sidecar["edit"] == {"source": {"label": "low"}, "target": {"label": "high"}, "strength": 0.8,
                               "away_from_source": True}  # fmt: skip
    assert sidecar["settings"]["negatives"] == {"label": "low"} and sidecar["settings"]["steps"] == 3
    assert json.loads((trained / "vi.json").read_text())["edit"]["mode"] == "inversion"
    for name in ("v.wav", "vi.wav", "e.wav"):
        assert soundfile.info(str(trained / name)).frames == base
    assert soundfile.info(str(trained / "i.wav")).frames == base
    assert abs(soundfile.info(str(trained / "c.wav")).frames - (base + 8000)) <= 256


@pytest.mark.parametrize(
    "command, extra", [("inpaint", ["--start", "0.2", "--end", "0.6"]), ("continue", ["--seconds", "0.5"])]
)
def test_edit_commands_honour_sampler_and_negatives(trained, command, extra):
    source = trained / "source-flags.wav"
    if not source.exists():
        run_cli("generate", "--checkpoint", trained / "run", "--label", "low", "--steps", "2", "--out", source)
    outputs = {}
    for name, flags in {
        "ddim": ["--sampler", "ddim"],
        "euler": ["--sampler", "euler"],
        "negative": ["--sampler", "ddim", "--negative-label", "high", "--guidance", "3"],
    }.items():
        out = trained / f"{command}-{name}.wav"
        run_cli(
            command,
            "--checkpoint",
            trained / "run",
            source,
            *extra,
            "--label",
            "low",
            "--steps",
            "3",
            "--seed",
            "4",
            *flags,
            "--out",
            out,
        )
        outputs[name] = soundfile.read(str(out))[0]
    assert not (outputs["ddim"] == outputs["euler"]).all(), f"{command} --sampler was ignored"
    assert not (outputs["ddim"] == outputs["negative"]).all(), f"{command} --negative-label was ignored"


@pytest.mark.parametrize(
    "command",
    [
        ["generate", "--model", "digits", "--out", "x.wav"],
        ["vocode", "--vocoder", "griffin_lim", "in.wav", "out.wav"],
        ["eval", "--checkpoint", "digits", "--reference", "ref", "--out", "o"],
    ],
)
def test_every_model_command_takes_a_device_and_refuses_one_that_is_not_here(tmp_path, command, capsys):
    import torch

    from audiodiff.cli import main

    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    assert main([*command, "--device", "cuda:7"]) == 2
    assert "--device cuda:7" in capsys.readouterr().err
