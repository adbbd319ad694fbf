"""Hostile checkpoints: files that would run code when unpickled, configs with unknown fields,
wrong types or absurd sizes, tensors of the wrong shape. Each is refused with a message that
names the file and the problem, nothing from it runs, and no absurd allocation happens (sizes
are checked on the meta device before anything is built)."""

from __future__ import annotations

import json
import pickle
import re
import shutil
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from audiodiff.checkpoint import CONFIG, STATE, WEIGHTS, CheckpointError
from audiodiff.cli import main
from audiodiff.pipeline import Pipeline
from audiodiff.train.diffusion import DiffusionTask
from audiodiff.train.trainer import Trainer
from audiodiff.vocoder import Vocoder
from tests.reliability.helpers import record
from tests.util import tiny_config

ROOT = Path(__file__).resolve().parents[2]


class RunsCode:
    """Unpickling this creates the file `marker`: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.fixture(scope="module")
def run(tmp_path_factory, synth_dir):
    out = tmp_path_factory.mktemp("hostile") / "run"
    config = tiny_config(synth_dir, out, conditioning={"labels": "auto"}, train={"steps": 2, "ckpt_every": 2})
    trainer = Trainer(DiffusionTask(config, verbose=False), config.train, progress=False)
    return trainer.fit()


@pytest.fixture(scope="module")
def vocoder_dir(tmp_path_factory):
    from audiodiff.audio import MelSpec
    from audiodiff.vocoder.gan import GANVocoder
    from audiodiff.vocoder.generators import build_generator

    out = tmp_path_factory.mktemp("hostile-vocoder") / "vocoder"
    spec = MelSpec()
    GANVocoder(build_generator("istft", spec, dim=16, intermediate_dim=32, num_layers=1)).save_pretrained(out)
    return out


def copy(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "checkpoint"
    shutil.copytree(source, target)
    return target


def edit_config(folder: Path, change) -> None:
    data = json.loads((folder / CONFIG).read_text())
    change(data)
    (folder / CONFIG).write_text(json.dumps(data))


def refused(load, folder: Path, *patterns: str) -> str:
    with pytest.raises(CheckpointError) as caught:
        load(folder)
    message = str(caught.value)
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in: {message}"
    return message


PICKLES = {
    "pickle": lambda marker, path: path.write_bytes(pickle.dumps({"weight": RunsCode(marker)})),
    "torch.save": lambda marker, path: torch.save({"weight": RunsCode(marker)}, path),
}


@pytest.mark.parametrize("kind", sorted(PICKLES))
@pytest.mark.parametrize("file", [WEIGHTS, STATE])
def test_a_pickle_in_place_of_safetensors_is_refused_and_never_run(run, tmp_path, kind, file):
    folder = copy(run, tmp_path)
    marker = tmp_path / "code-ran"
    PICKLES[kind](marker, folder / file)
    if file == WEIGHTS:
        message = refused(
            Pipeline.from_pretrained, folder, re.escape(str(folder / WEIGHTS)), "pickle", "never unpickles"
        )
    else:  # the training state is read on --resume
        resume_dir = tmp_path / "resume"
        (resume_dir / "checkpoints").mkdir(parents=True)
        shutil.copytree(folder, resume_dir / "checkpoints" / run.name)
        data = json.loads((run / CONFIG).read_text())["data"]["path"]
        config = tiny_config(data, resume_dir, conditioning={"labels": "auto"}, train={"steps": 4})
        with pytest.raises(CheckpointError) as caught:
            Trainer(DiffusionTask(config, verbose=False), config.train, resume=True, progress=False).fit()
        message = str(caught.value)
        assert "pickle" in message and STATE in message
    assert not marker.exists(), "the pickle's code ran"
    record(
        "hostile_checkpoint", case=f"{kind} as {file}", refused=True, code_ran=marker.exists(), message=message[:160]
    )


def test_the_cli_refuses_a_pickled_checkpoint_with_a_message(run, tmp_path, capsys):
    folder = copy(run, tmp_path)
    marker = tmp_path / "code-ran"
    PICKLES["torch.save"](marker, folder / WEIGHTS)
    code = main(["generate", "--checkpoint", str(folder), "--out", str(tmp_path / "x.wav"), "--steps", "2"])
    error = capsys.readouterr().err
    assert code != 0 and "pickle" in error and "Traceback" not in error
    assert not marker.exists() and not (tmp_path / "x.wav").exists()


CONFIG_CASES = {
    "unknown field": (lambda c: c["model"].update(evil_hook="os.system('rm -rf /')"), [r"evil_hook"]),
    "wrong type": (lambda c: c["model"].update(channels="lots"), [r"channels"]),
    "list for number": (lambda c: c["model"].update(num_res_blocks=[1, 2]), [r"num_res_blocks"]),
    "terabyte model": (
        lambda c: c["model"].update(channels=1_000_000, channel_mults=[1, 2, 4, 8]),
        [r"parameters", r"corrupt"],
    ),
    "a billion blocks": (lambda c: c["model"].update(num_res_blocks=10**9), [r"blocks"]),
    "ten thousand levels": (lambda c: c["model"].update(channel_mults=[1] * 10_000), [r"levels"]),
    "negative width": (lambda c: c["model"].update(channels=-16), [r"channels"]),
    "absurd mel": (lambda c: c["mel"].update(n_fft=2**40), [r"n_fft"]),
    "absurd sample rate": (lambda c: c["mel"].update(sample_rate=10**12), [r"sample_rate"]),
    "huge text model": (lambda c: c["conditioning"].update(text={"dim": 64, "layers": 10**8}), [r"layers"]),
    "not a diffusion model": (lambda c: c.update(kind="evil"), [r"kind"]),
    "a top-level typo": (
        lambda c: c.update(samplng=c["sampling"]),
        [r"unknown top-level key\(s\) \['samplng'\]", r"'sampling'"],
    ),
    "vocoder outside the folder": (lambda c: c["sampling"].update(vocoder="../../../etc"), [r"vocoder"]),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_a_hostile_config_is_refused_with_a_message(run, tmp_path, case):
    change, patterns = CONFIG_CASES[case]
    folder = copy(run, tmp_path)
    edit_config(folder, change)
    message = refused(Pipeline.from_pretrained, folder, re.escape(str(folder / CONFIG)), *patterns)
    record("hostile_checkpoint", case=f"config.json: {case}", refused=True, message=message[:160])


@pytest.mark.parametrize(
    "content, pattern",
    [
        (b"[1, 2, 3]", "JSON object"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b'{"kind": "diffusion", "model": ' * 1 + b" " * (17 * 1024 * 1024) + b"}", "too large"),
    ],
    ids=["array", "broken", "binary", "17 MB"],
)
def test_an_unreadable_config_is_refused(run, tmp_path, content, pattern):
    folder = copy(run, tmp_path)
    (folder / CONFIG).write_bytes(content)
    refused(Pipeline.from_pretrained, folder, pattern)
    record("hostile_checkpoint", case=f"config.json: {pattern}", refused=True)


def test_weights_of_the_wrong_shape_are_refused_naming_the_tensor(run, tmp_path):
    folder = copy(run, tmp_path)
    tensors = load_file(folder / WEIGHTS)
    name = sorted(k for k, v in tensors.items() if v.dim() == 4)[0]
    tensors[name] = torch.zeros(*tensors[name].shape[:-1], tensors[name].shape[-1] + 1)
    save_file(tensors, folder / WEIGHTS)
    refused(Pipeline.from_pretrained, folder, re.escape(name), "shape")
    record("hostile_checkpoint", case="safetensors: a tensor of the wrong shape", refused=True)


def test_missing_and_extra_tensors_are_refused(run, tmp_path):
    folder = copy(run, tmp_path)
    tensors = load_file(folder / WEIGHTS)
    dropped = sorted(tensors)[0]
    del tensors[dropped]
    tensors["backdoor.weight"] = torch.zeros(3)
    save_file(tensors, folder / WEIGHTS)
    refused(Pipeline.from_pretrained, folder, re.escape(dropped))
    record("hostile_checkpoint", case="safetensors: missing and unexpected tensors", refused=True)


def _forged_header(header: dict) -> bytes:
    blob = json.dumps(header).encode()
    return struct.pack("<Q", len(blob)) + blob


@pytest.mark.parametrize(
    "content",
    [
        _forged_header({"w": {"dtype": "F32", "shape": [2**31, 2**31], "data_offsets": [0, 2**64 - 1]}}),
        struct.pack("<Q", 2**62) + b"{}",
        _forged_header({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}),  # data missing
        b"",
    ],
    ids=["exabyte tensor", "huge header length", "truncated", "empty"],
)
def test_a_forged_safetensors_header_is_refused_without_allocating(run, tmp_path, content):
    folder = copy(run, tmp_path)
    (folder / WEIGHTS).write_bytes(content)
    refused(Pipeline.from_pretrained, folder, re.escape(str(folder / WEIGHTS)), "safetensors")
    record("hostile_checkpoint", case="safetensors: forged header", refused=True)


VOCODER_CASES = {
    "pickle weights": (lambda folder, marker: PICKLES["pickle"](marker, folder / WEIGHTS), ["pickle"]),
    "unknown generator": (
        lambda folder, marker: edit_config(folder, lambda c: c.update(generator="os.system")),
        ["generator"],
    ),
    "absurd generator": (
        lambda folder, marker: edit_config(
            folder, lambda c: c["generator_config"].update(dim=10**6, intermediate_dim=10**6)
        ),
        ["parameters"],
    ),
    "a million layers": (
        lambda folder, marker: edit_config(folder, lambda c: c["generator_config"].update(num_layers=10**6)),
        ["num_layers"],
    ),
    "not a vocoder": (
        lambda folder, marker: edit_config(folder, lambda c: c.update(kind="diffusion")),
        ["not a vocoder"],
    ),
    "a top-level typo": (
        lambda folder, marker: edit_config(folder, lambda c: c.update(generatr=c["generator"])),
        [r"unknown top-level key\(s\) \['generatr'\]", r"'generator'"],
    ),
}


@pytest.mark.parametrize("case", sorted(VOCODER_CASES))
def test_a_hostile_vocoder_checkpoint_is_refused(vocoder_dir, tmp_path, case):
    change, patterns = VOCODER_CASES[case]
    folder = copy(vocoder_dir, tmp_path)
    marker = tmp_path / "code-ran"
    change(folder, marker)
    refused(Vocoder.from_pretrained, folder, *patterns)
    assert not marker.exists()
    record("hostile_checkpoint", case=f"vocoder: {case}", refused=True)


def test_no_loading_code_can_unpickle():
    """Every torch.load in the package passes weights_only=True, and nothing calls pickle."""
    offenders = []
    for path in sorted((ROOT / "audiodiff").rglob("*.py")):
        text = path.read_text()
        for match in re.finditer(r"torch\.load\(([^)]*)\)", text):
            if "weights_only=True" not in match.group(1):
                offenders.append(f"{path.name}: {match.group(0)}")
        if re.search(r"\bimport pickle\b|\bpickle\.loads?\(|\bdill\b|\bjoblib\.load\b", text):
            offenders.append(f"{path.name}: pickle")
    assert not offenders, offenders
